"""The saved U-Net model file (format ``cyclesynth-unet``, version 1): writing it, rebuilding
the network from it, and the precision and memory layout a saved network predicts in."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cyclesynth import runtime
from cyclesynth.data.images import atomic_path
from cyclesynth.segmentation.settings import IN_CHANNELS, N_CLASSES, UNetSettings
from cyclesynth.segmentation.unet import UNet

MODEL_FORMAT = "cyclesynth-unet"
MODEL_FORMAT_VERSION = 1


def save_model(path: str | os.PathLike, state: dict, settings: UNetSettings) -> None:
    """Write the weights with the settings (architecture included) needed to rebuild the net."""
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "architecture": {
            "in_channels": IN_CHANNELS,
            "n_classes": N_CLASSES,
            "base_channels": settings.base_channels,
            "depth": settings.depth,
            "batch_norm": settings.batch_norm,
        },
        "settings": settings.to_dict(),
        "input_range": [-1.0, 1.0],
        "state": {k: v.detach().cpu() for k, v in state.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _read_payload(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: U-Net model file not found")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a cyclesynth U-Net model file")
    if payload.get("version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"{path}: U-Net model format version {payload.get('version')} is not supported")
    return payload


def load_starting_weights(path: str | os.PathLike, settings: UNetSettings) -> dict:
    """The weights of a saved U-Net (CPU tensors), to start another training from (a
    self-training student from its teacher); its architecture must be the one ``settings``
    builds, else a ValueError names the file and what differs."""
    path = Path(path)
    payload = _read_payload(path)
    arch = payload["architecture"]
    wanted = {"base_channels": settings.base_channels, "depth": settings.depth, "batch_norm": settings.batch_norm}
    differs = [f"{k} {arch.get(k)!r} (this U-Net: {v!r})" for k, v in wanted.items() if arch.get(k) != v]
    if differs:
        raise ValueError(f"{path}: cannot start from this U-Net, its architecture differs: {', '.join(differs)}")
    return payload["state"]


def load_model(path: str | os.PathLike, device: torch.device | str) -> tuple[UNet, UNetSettings]:
    """Rebuild a saved U-Net on ``device`` in eval mode; return it with its settings."""
    path = Path(path)
    payload = _read_payload(path)
    settings = UNetSettings.from_dict(payload["settings"])
    arch = payload["architecture"]
    model = UNet(
        in_channels=arch["in_channels"],
        n_classes=arch["n_classes"],
        base_channels=arch["base_channels"],
        depth=arch["depth"],
        batch_norm=arch["batch_norm"],
    )
    model.load_state_dict(payload["state"])
    model.to(torch.device(device))
    model.eval()
    return model, settings


def prediction_precision(settings: UNetSettings, device: torch.device | str) -> tuple[runtime.Precision, str]:
    """The precision a saved U-Net predicts in: the one its ``precision`` setting gives on
    ``device`` (:func:`runtime.choose_precision`), as in training, and why."""
    return runtime.choose_precision(settings.precision, torch.device(device))


def prediction_layout(
    model: UNet, settings: UNetSettings, precision: runtime.Precision, device: torch.device | str
) -> tuple[bool, str]:
    """Whether ``model`` predicts in channels_last, and why: its ``channels_last`` setting, as in
    training (:func:`runtime.choose_channels_last`; on the CPU ``auto`` uses the layout where
    this machine's kernels agree with the default layout on two seeded batches of tiles of
    ``settings.patch_size``, of one and of four). On a CPU with bfloat16 the layout predicts a
    DRIVE image 1.4x faster (docs/measurements.md); the probabilities differ from the default
    layout's by bfloat16 rounding only."""
    from cyclesynth.segmentation.training import layout_samples  # the batches training checks on

    size = settings.patch_size
    tiles = torch.rand((4, IN_CHANNELS, size, size), generator=torch.Generator().manual_seed(0))
    samples = layout_samples(tiles.to(torch.device(device)))
    return runtime.choose_channels_last(settings.channels_last, model, samples, precision, cpu_default=True)


def prediction_setup(model: UNet, settings: UNetSettings, device: torch.device | str) -> tuple[runtime.Precision, bool, str]:
    """The precision and layout ``model`` predicts in (:func:`prediction_precision`,
    :func:`prediction_layout`) and one sentence for the log saying why."""
    precision, reason = prediction_precision(settings, device)
    channels_last, layout_reason = prediction_layout(model, settings, precision, device)
    return precision, channels_last, f"{reason}; {layout_reason}"
