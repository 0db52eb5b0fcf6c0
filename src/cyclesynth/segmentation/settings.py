"""U-Net settings (:class:`UNetSettings`, defaults the paper's), what the network sees, and the
learning-rate rule.

What the network sees
    RGB images in [0, 1] are scaled to [-1, 1] (``x * 2 - 1``, :func:`normalise`) before they
    enter the network, in training and in prediction alike. Augmentation
    (:func:`cyclesynth.segmentation.augmentation.augment_batch`) works on the [0, 1] values,
    before that scaling.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from cyclesynth import runtime
from cyclesynth.runtime import settings_from_dict
from cyclesynth.segmentation.augmentation import AUGMENT_MODES, GeometricSettings
from cyclesynth.segmentation.unet import check_input_size

LR_SCHEDULES = ("constant", "cosine")
IN_CHANNELS = 3
N_CLASSES = 2  # background, vessel


@dataclass
class UNetSettings:
    """U-Net architecture and training settings; defaults are the paper's."""

    base_channels: int = 64
    depth: int = 4
    batch_norm: bool = True
    vessel_weight: float = 10.0
    lr: float = 1e-4
    batch_size: int = 64
    epochs: int = 150
    patch_size: int = 64
    patch_stride: int = 64
    augment: str = "none"  # one of AUGMENT_MODES
    lr_schedule: str = "constant"  # "constant" (the paper's) or "cosine" (to 0 over all steps)
    checkpoint_every: int = 10
    skip_empty_patches: bool = False  # drop training patches without any FOV pixel
    precision: str = "float32"  # auto | float32 (TF32 off) | tf32 | bfloat16 | float16 (runtime.choose_precision)
    channels_last: bool | str = False  # auto | true | false (runtime.choose_channels_last)
    compile: str = "none"  # none | reduce-overhead (torch.compile with CUDA graphs); CUDA only
    geometric: GeometricSettings = field(default_factory=GeometricSettings)  # a dict is converted

    def __post_init__(self):
        for name in ("base_channels", "depth", "batch_size", "epochs", "patch_size", "patch_stride",
                     "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"U-Net setting '{name}' must be an integer (got {value!r})")
            if value < 1:
                raise ValueError(f"U-Net setting '{name}' must be at least 1 (got {value})")
            setattr(self, name, int(value))
        for name in ("vessel_weight", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"U-Net setting '{name}' must be a number (got {value!r})")
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"U-Net setting '{name}' must be positive (got {value})")
            setattr(self, name, float(value))
        for name in ("batch_norm", "skip_empty_patches"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"U-Net setting '{name}' must be true or false (got {getattr(self, name)!r})")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"U-Net setting 'lr_schedule' must be one of {', '.join(LR_SCHEDULES)} (got {self.lr_schedule!r})"
            )
        if self.precision not in runtime.PRECISIONS:
            raise ValueError(
                f"U-Net setting 'precision' must be one of {', '.join(runtime.PRECISIONS)} (got {self.precision!r})"
            )
        try:
            runtime.check_layout(self.channels_last, "U-Net setting 'channels_last'")
        except ValueError as err:
            raise ValueError(str(err)) from None
        if self.compile not in runtime.COMPILE_MODES:
            raise ValueError(
                f"U-Net setting 'compile' must be one of {', '.join(runtime.COMPILE_MODES)} (got {self.compile!r})"
            )
        if self.augment not in AUGMENT_MODES:
            raise ValueError(
                f"U-Net setting 'augment' must be one of {', '.join(AUGMENT_MODES)} (got {self.augment!r})"
            )
        if isinstance(self.geometric, dict):
            self.geometric = GeometricSettings.from_dict(self.geometric)
        elif not isinstance(self.geometric, GeometricSettings):
            raise ValueError(f"U-Net setting 'geometric' must be a mapping of settings (got {self.geometric!r})")
        if self.patch_stride > self.patch_size:
            raise ValueError(
                f"U-Net setting 'patch_stride' ({self.patch_stride}) exceeds 'patch_size' "
                f"({self.patch_size}): pixels would be skipped"
            )
        try:
            check_input_size(self.patch_size, self.patch_size, self.depth)
        except ValueError as err:
            raise ValueError(f"U-Net setting 'patch_size' does not fit 'depth': {err}") from None

    @classmethod
    def from_dict(cls, values: dict) -> "UNetSettings":
        return settings_from_dict(cls, values, "U-Net")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] images to the network's input range [-1, 1]."""
    return images * 2.0 - 1.0


def learning_rate(settings: "UNetSettings", step: int, total_steps: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based) of ``total_steps``: constant, or a
    cosine from ``lr`` down to 0 at the last step. A function of the step alone, so a resumed
    run follows the same schedule."""
    if settings.lr_schedule == "constant" or total_steps <= 1:
        return settings.lr
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * step / (total_steps - 1)))
