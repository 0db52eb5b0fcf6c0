"""Execution environment for training: device, threads, seeds, resumable checkpoints, numeric
precision and compilation of the training step."""

from __future__ import annotations

import contextlib
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


# ----------------------------------------------------------------------------- precision

PRECISIONS = ("float32", "tf32", "bfloat16", "float16")
COMPILE_MODES = ("none", "reduce-overhead")
_AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass(frozen=True)
class Precision:
    """How a training step computes on its device.

    ``float32``: true float32; on CUDA TF32 is switched off for matrix products and cuDNN
    convolutions (recent cards use TF32 for convolutions by default). ``tf32``: float32
    tensors, TF32 tensor-core arithmetic for products and convolutions (CUDA). ``bfloat16``:
    autocast to bfloat16 for the forward passes, no loss scaling. ``float16``: autocast to
    float16 with a gradient scaler (:meth:`scaler`), which skips a step whose gradients
    overflow and lowers its scale. Losses are computed in float32 in every mode.

    Use :func:`training_precision` to get the precision a setting gives on a device; a
    ``Precision`` built directly is used as given (the tests run the autocast modes on the
    CPU that way).
    """

    name: str
    device_type: str

    def __post_init__(self):
        if self.name not in PRECISIONS:
            raise ValueError(f"unknown precision {self.name!r} (one of {', '.join(PRECISIONS)})")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _AUTOCAST_DTYPES.get(self.name)

    def autocast(self):
        """Context for forward passes: autocast in the bfloat16 and float16 modes."""
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    @contextlib.contextmanager
    def tf32(self):
        """Context for a whole step (forward, backward, optimiser): on CUDA, TF32 on in the
        ``tf32`` mode and off in every other mode; the previous flags are restored after."""
        if self.device_type != "cuda":
            yield
            return
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.name == "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled in the float16 mode only (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "float16")


def training_precision(requested: str, device: torch.device) -> Precision:
    """The precision a training setting gives on ``device``: as requested on CUDA; float32 on
    any other device (TF32 is a CUDA feature, and the CPU path trains in float32 as before)."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r} (one of {', '.join(PRECISIONS)})")
    return Precision(requested if device.type == "cuda" else "float32", device.type)


def compile_for_training(module: torch.nn.Module, mode: str, device: torch.device, *, backend: str | None = None) -> bool:
    """Compile ``module``'s forward in place (``torch.compile``; its state_dict keeps its keys)
    for training on CUDA: ``reduce-overhead`` replays CUDA graphs of the compiled forward and
    backward, so a small step no longer waits on one kernel launch after another. Shapes are
    static (a new batch size compiles once more). Returns whether it compiled: with ``mode``
    ``none`` or on a device other than CUDA nothing changes, unless ``backend`` is given
    (tests: ``aot_eager`` traces and runs the same graphs eagerly on the CPU)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r} (one of {', '.join(COMPILE_MODES)})")
    if backend is not None:
        module.compile(backend=backend, dynamic=False)
        return True
    if mode == "none" or device.type != "cuda":
        return False
    module.compile(mode=mode, dynamic=False)
    return True


def mark_step_begin(compiled: bool) -> None:
    """Tell CUDA-graph trees that a new training step begins (outputs of the previous step's
    graphs may be overwritten from here on)."""
    if compiled:
        torch.compiler.cudagraph_mark_step_begin()
