"""Execution environment for training: device, threads, seeds, resumable checkpoints."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import torch

from cyclesynth.images import atomic_path


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


def settings_from_dict(cls, values: dict, what: str):
    """Build the settings dataclass ``cls`` from a dict, naming any unknown key."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**values)


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available")
    return device


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads (the rule's ``threads:``)."""
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy generator for data order and sampling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def random_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, fingerprint: str | None = None) -> dict | None:
    """Load a checkpoint if present and made with the same settings (``fingerprint``).

    A checkpoint from other settings is ignored (training starts again), never mixed in.
    """
    path = Path(path)
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if fingerprint is not None and payload.get("fingerprint") != fingerprint:
        return None
    return payload


def check_finite(losses: dict[str, float], epoch: int, where: str) -> None:
    """Raise :class:`TrainingDiverged` naming the epoch and the loss that is not finite."""
    for name, value in losses.items():
        if not np.isfinite(value):
            raise TrainingDiverged(
                f"{where}: loss '{name}' became {value} at epoch {epoch}; "
                "lower the learning rate or check the input images"
            )
