"""Saved models: ``G_A`` alone (the generator the workflow keeps, with its architecture and
settings), all four networks of a (pre)training run, and translating patches with a saved
generator."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cyclesynth import runtime
from cyclesynth.synthesis.cyclegan.networks import ResnetGenerator
from cyclesynth.synthesis.cyclegan.data import _check_patches, _resize, _to_tensor
from cyclesynth.synthesis.cyclegan.settings import ARCHITECTURE_BEFORE, CycleGANSettings, architecture
from cyclesynth.synthesis.cyclegan.training import CycleGANResult

GENERATOR_FORMAT = "cyclesynth-cyclegan-generator/1"
PRETRAINED_FORMAT = "cyclesynth-cyclegan-pretrained/1"


def save_generator(path: str | os.PathLike, state_dict: dict, settings: CycleGANSettings) -> None:
    """Save ``G_A``'s weights with its architecture and the training settings (atomically)."""
    runtime.save_checkpoint(
        path,
        {
            "format": GENERATOR_FORMAT,
            "architecture": {
                "input_nc": 3,
                "output_nc": 3,
                "ngf": settings.ngf,
                "n_blocks": settings.n_blocks,
                "residual": settings.residual,
                "upsampling": settings.upsampling,
                "down_padding": settings.down_padding,
            },
            "settings": settings.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        },
    )



@dataclass
class PretrainedCycleGAN:
    """The four networks of a pretrained CycleGAN, the start of every per-image fine-tuning."""

    networks: dict  # name -> state_dict, as CycleGANModel.networks()
    architecture: dict  # ARCHITECTURE_KEYS -> value
    fingerprint: str  # of the pretraining run
    source: str = ""  # where it was loaded from (for messages)

    def check_architecture(self, settings: CycleGANSettings) -> None:
        wanted = architecture(settings)
        had = {**ARCHITECTURE_BEFORE, **self.architecture}
        differ = [f"{k} {had.get(k)!r} vs {v!r}" for k, v in wanted.items() if had.get(k) != v]
        if differ:
            raise ValueError(
                f"{self.source or 'pretrained CycleGAN'}: its networks do not match the CycleGAN settings "
                f"(pretrained vs now: {'; '.join(differ)}); pretrain again with these settings"
            )


def save_pretrained(path: str | os.PathLike, result: CycleGANResult, settings: CycleGANSettings) -> None:
    """Save all four networks of a (pre)training run, atomically."""
    runtime.save_checkpoint(
        path,
        {
            "format": PRETRAINED_FORMAT,
            "architecture": architecture(settings),
            "settings": settings.to_dict(),
            "fingerprint": result.fingerprint,
            "networks": result.network_states,
        },
    )


def load_pretrained(path: str | os.PathLike) -> PretrainedCycleGAN:
    """Load a file written by :func:`save_pretrained` (weights on the CPU)."""
    try:
        payload = runtime.load_checkpoint(path)
    except Exception as err:
        raise ValueError(f"{path}: unreadable pretrained CycleGAN ({type(err).__name__}: {err})") from err
    if payload is None:
        raise FileNotFoundError(f"{path}: pretrained CycleGAN not found")
    if not isinstance(payload, dict) or payload.get("format") != PRETRAINED_FORMAT:
        raise ValueError(f"{path}: not a cyclesynth pretrained CycleGAN file")
    return PretrainedCycleGAN(
        networks=payload["networks"],
        architecture=payload["architecture"],
        fingerprint=payload["fingerprint"],
        source=str(path),
    )


def load_generator(path: str | os.PathLike, device: torch.device | str) -> tuple[ResnetGenerator, CycleGANSettings]:
    """Load a generator saved by :func:`save_generator`; returns it in eval mode on ``device``."""
    device = torch.device(device) if isinstance(device, str) else device
    payload = runtime.load_checkpoint(path)
    if payload is None:
        raise FileNotFoundError(f"{path}: generator file not found")
    if not isinstance(payload, dict) or payload.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{path}: not a cyclesynth CycleGAN generator file")
    settings = CycleGANSettings.from_saved(payload["settings"])
    generator = ResnetGenerator(**payload["architecture"])
    generator.load_state_dict(payload["state_dict"])
    generator.to(device).eval()
    return generator, settings


def translate_patches(
    generator: nn.Module,
    patches: np.ndarray,
    settings: CycleGANSettings,
    *,
    device: torch.device | str,
    batch_size: int = 16,
) -> np.ndarray:
    """Translate (N, h, w, 3) patches in [0, 1]; returns the same shape, float32 in [0, 1].

    ``resize_crop``: each patch is resized to ``crop_size`` (bicubic), the scale the generator
    was trained at, and the output back to (h, w) (area averaging). ``native``: as is (sides
    not divisible by 4 are reflection-padded and cropped back).
    """
    device = torch.device(device) if isinstance(device, str) else device
    array = _check_patches(patches, "patches")
    n, h, w = array.shape[:3]
    out = np.empty((n, h, w, 3), dtype=np.float32)
    generator = generator.to(device)
    was_training = generator.training
    generator.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, max(1, int(batch_size))):
                x = _to_tensor(array[start : start + batch_size], device)
                if settings.preprocess == "resize_crop":
                    size = (settings.crop_size, settings.crop_size)
                    y = _resize(generator(_resize(x, size)), (h, w))
                else:
                    pad_h, pad_w = (-h) % 4, (-w) % 4
                    if pad_h or pad_w:
                        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
                    y = generator(x)[:, :, :h, :w]
                y = ((y.float() + 1.0) / 2.0).clamp_(0.0, 1.0)
                out[start : start + len(y)] = y.permute(0, 2, 3, 1).cpu().numpy()
    finally:
        generator.train(was_training)
    return out
