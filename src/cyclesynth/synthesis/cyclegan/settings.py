"""CycleGAN settings: every hyper-parameter of a run (defaults are the paper's, i.e. Zhu et
al.'s), the learning-rate rule, and the settings that fix the networks' shapes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cyclesynth import runtime
from cyclesynth.synthesis.cyclegan.networks import DOWN_PADDING, UPSAMPLING

PREPROCESS_MODES = ("resize_crop", "native")
TRAIN_LAYERS = ("all", "last")
# Settings that fix the networks' shapes: a pretrained file must agree on all of them.
ARCHITECTURE_KEYS = ("ngf", "ndf", "n_blocks", "n_layers_d", "residual", "upsampling", "down_padding")
# What a file written before a key existed had: the original networks.
ARCHITECTURE_BEFORE = {"upsampling": "transpose", "down_padding": "zeros"}
# Settings of earlier versions, with what replaced them.
RETIRED = {
    "amp": "replaced by 'precision': amp true -> precision float16 (autocast with a gradient scaler), "
    "amp false -> precision float32",
}


@dataclass
class CycleGANSettings:
    """All CycleGAN hyper-parameters. Defaults are the paper's (Zhu et al.'s) values."""

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_layers_d: int = 3
    residual: bool = False  # not in the original: output = tanh(atanh(input) + network)
    upsampling: str = "transpose"  # transpose (the original) | resize (nearest x2 + 3x3 conv)
    down_padding: str = "zeros"  # zeros (the original) | reflect (the stride-2 convolutions)
    preprocess: str = "resize_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    epochs: int = 100
    epochs_decay: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    batch_size: int = 1
    init_gain: float = 0.02
    checkpoint_every: int = 10
    precision: str = "float32"  # auto | float32 (TF32 off) | tf32 | bfloat16 | float16 (runtime.choose_precision)
    compile: str = "none"  # none | reduce-overhead (torch.compile with CUDA graphs); CUDA only
    channels_last: bool = False  # CUDA; on the CPU where its kernels check out (CycleGANModel._choose_layout)
    train_layers: str = "all"  # "last": only the generators' decoders (and the discriminators)

    def __post_init__(self):
        def need(condition: bool, key: str, what: str) -> None:
            if not condition:
                raise ValueError(f"CycleGAN setting '{key}' {what} (got {getattr(self, key)!r})")

        for key in ("ngf", "ndf", "n_layers_d", "load_size", "crop_size", "batch_size"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        for key in ("n_blocks", "epochs", "epochs_decay", "pool_size", "checkpoint_every"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 0, key, "must be an integer >= 0")
        for key in ("flip", "channels_last", "residual"):
            need(isinstance(getattr(self, key), bool), key, "must be true or false")
        for key in ("lr", "beta1", "lambda_cycle", "lambda_identity", "init_gain"):
            need(_is_number(getattr(self, key)) and getattr(self, key) >= 0, key, "must be a number >= 0")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.beta1 < 1, "beta1", "must be < 1")
        need(self.preprocess in PREPROCESS_MODES, "preprocess", f"must be one of {', '.join(PREPROCESS_MODES)}")
        need(self.precision in runtime.PRECISIONS, "precision", f"must be one of {', '.join(runtime.PRECISIONS)}")
        need(self.compile in runtime.COMPILE_MODES, "compile", f"must be one of {', '.join(runtime.COMPILE_MODES)}")
        need(self.upsampling in UPSAMPLING, "upsampling", f"must be one of {', '.join(UPSAMPLING)}")
        need(self.down_padding in DOWN_PADDING, "down_padding", f"must be one of {', '.join(DOWN_PADDING)}")
        need(self.train_layers in TRAIN_LAYERS, "train_layers", f"must be one of {', '.join(TRAIN_LAYERS)}")
        need(self.epochs + self.epochs_decay >= 1, "epochs", "plus epochs_decay must be >= 1")
        if self.preprocess == "resize_crop":
            need(self.crop_size <= self.load_size, "crop_size", f"must be <= load_size ({self.load_size})")
            need(self.crop_size % 4 == 0, "crop_size", "must be a multiple of 4 (two stride-2 stages)")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    @classmethod
    def from_dict(cls, d: dict) -> "CycleGANSettings":
        for key, replacement in RETIRED.items():
            if key in d:
                raise ValueError(f"CycleGAN setting '{key}' was {replacement}")
        return runtime.settings_from_dict(cls, d, "CycleGAN")

    @classmethod
    def from_saved(cls, d: dict) -> "CycleGANSettings":
        """Settings stored in a file, also from before ``amp`` became ``precision``."""
        d = dict(d)
        if "amp" in d:
            amp = d.pop("amp")
            d.setdefault("precision", "float16" if amp else "float32")
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def linear_decay_rule(epochs: int, epochs_decay: int) -> Callable[[int], float]:
    """The original ``linear`` policy as a LambdaLR factor for 0-based epoch ``e``:
    ``1 - max(0, e + 1 - epochs) / (epochs_decay + 1)``: 1 for the first ``epochs`` epochs,
    then falling linearly; it reaches 0 after the last epoch."""

    def rule(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)

    return rule


def architecture(settings: CycleGANSettings) -> dict:
    """The settings that fix the networks' shapes (:data:`ARCHITECTURE_KEYS`)."""
    return {key: getattr(settings, key) for key in ARCHITECTURE_KEYS}
