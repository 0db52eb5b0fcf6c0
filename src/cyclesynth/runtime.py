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

from cyclesynth.data.images import atomic_path
from cyclesynth.errors import TrainingDiverged  # noqa: F401  (raised here; importable from here)


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

MODES = ("float32", "tf32", "bfloat16", "float16")  # what a step computes in
PRECISIONS = ("auto",) + MODES  # what a setting may ask for
COMPILE_MODES = ("none", "reduce-overhead")
LAYOUTS = ("auto", True, False)  # channels_last settings
_AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
NATIVE_BF16_FEATURES = ("amx_bf16", "avx512_bf16")  # CPU features torch uses for bfloat16 matrix work
# CYCLESYNTH_NATIVE_BF16=0 (or off, false, no): ``auto`` takes the CPU as one without native
# bfloat16 and trains in float32, without a config change (a float32 run to compare against)
NATIVE_BF16_SWITCH = "CYCLESYNTH_NATIVE_BF16"


@dataclasses.dataclass(frozen=True)
class Precision:
    """How a training step computes on its device.

    ``float32``: true float32; on CUDA TF32 is switched off for matrix products and cuDNN
    convolutions (recent cards use TF32 for convolutions by default). ``tf32``: float32
    tensors, TF32 tensor-core arithmetic for products and convolutions (CUDA). ``bfloat16``:
    autocast to bfloat16 for the forward passes, no loss scaling, on CUDA and on the CPU.
    ``float16``: autocast to float16 with a gradient scaler (:meth:`scaler`), which skips a
    step whose gradients overflow and lowers its scale (CUDA). Losses are computed in float32
    in every mode.

    Use :func:`choose_precision` to get the precision a setting gives on a device; a
    ``Precision`` built directly is used as given (the tests run every autocast mode on the
    CPU that way).
    """

    name: str
    device_type: str

    def __post_init__(self):
        if self.name not in MODES:
            raise ValueError(f"unknown precision {self.name!r} (one of {', '.join(MODES)})")

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


def native_bf16_switched_off() -> bool:
    """Whether the environment variable :data:`NATIVE_BF16_SWITCH` turns native bfloat16 off."""
    return os.environ.get(NATIVE_BF16_SWITCH, "").strip().lower() in ("0", "off", "false", "no")


def cpu_bf16_features() -> list[str]:
    """The CPU features among :data:`NATIVE_BF16_FEATURES` that torch reports for this
    machine (``torch.cpu.get_capabilities()``); empty where the CPU has neither, and bfloat16
    would be emulated in float32 instructions (slower than float32 itself)."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # a torch without the query: assume no native bf16
        return []
    return [name for name in NATIVE_BF16_FEATURES if capabilities.get(name)]


def choose_precision(requested: str, device: torch.device) -> tuple[Precision, str]:
    """The precision a training setting gives on ``device``, and why, in words for the log.

    ``auto``: on the CPU bfloat16 where the CPU does bfloat16 natively (AMX-BF16 or
    AVX512-BF16, :func:`cpu_bf16_features`) unless :data:`NATIVE_BF16_SWITCH` is ``0``,
    float32 elsewhere; on CUDA float32 (the documented CUDA modes are set explicitly, as
    config/drive-gpu.yaml does). ``bfloat16`` is taken as given on either device (on a CPU
    without native bf16 it is emulated and slow).
    ``tf32`` and ``float16`` are CUDA modes: float32 on the CPU. ``float32`` is float32.
    """
    device = torch.device(device)
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r} (one of {', '.join(PRECISIONS)})")
    if device.type == "cuda":
        if requested == "auto":
            return Precision("float32", "cuda"), "auto on CUDA: float32 (set bfloat16, tf32 or float16 to use the tensor cores)"
        return Precision(requested, "cuda"), f"{requested} as set"
    if requested == "auto":
        if native_bf16_switched_off():
            return Precision("float32", device.type), f"auto: native bfloat16 switched off ({NATIVE_BF16_SWITCH}=0)"
        features = cpu_bf16_features()
        if features:
            return Precision("bfloat16", device.type), f"auto: the CPU does bfloat16 natively ({', '.join(features)})"
        return Precision("float32", device.type), "auto: the CPU has no native bfloat16 (neither amx_bf16 nor avx512_bf16)"
    if requested == "bfloat16":
        native = cpu_bf16_features()
        return Precision("bfloat16", device.type), "bfloat16 as set" + (
            "" if native else " (this CPU has no native bfloat16: emulated, slower than float32)")
    if requested in ("tf32", "float16"):
        return Precision("float32", device.type), f"{requested} is a CUDA mode: float32 on the {device.type.upper()}"
    return Precision("float32", device.type), "float32 as set"


def training_precision(requested: str, device: torch.device) -> Precision:
    """The precision a training setting gives on ``device`` (:func:`choose_precision`)."""
    return choose_precision(requested, device)[0]


def check_layout(value, what: str):
    """A channels_last setting: ``auto``, true or false."""
    if value not in LAYOUTS or (value in (0, 1) and not isinstance(value, bool)):
        raise ValueError(f"{what} must be auto, true or false (got {value!r})")
    return value


def _gradients(net: torch.nn.Module, x: torch.Tensor, precision: Precision, channels_last: bool) -> list[torch.Tensor]:
    """Output, input gradient and weight gradients (concatenated) of ``net`` on ``x`` for the
    loss mean(y^2), as float64 vectors (a copy of the net; the original is untouched)."""
    import copy

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = copy.deepcopy(net).to(memory_format=fmt)
    net.train()
    x = x.detach().clone().contiguous(memory_format=fmt).requires_grad_(True)
    with precision.autocast():
        y = net(x)
    y = y.float()
    (y**2).mean().backward()
    weights = [p.grad.flatten() for p in net.parameters() if p.grad is not None]
    return [part.detach().double() for part in (y.flatten(), x.grad.flatten(), torch.cat(weights))]


def layout_error(net: torch.nn.Module, samples, precision: Precision) -> float:
    """How much further channels_last moves ``net`` from exact float32 than the default
    layout does, in ``precision``: for the output, the input gradient and the weight
    gradients, the relative difference (2-norm) from the float32 default-layout values in
    channels_last minus that in the default layout; the largest over the parts and over
    ``samples`` (a tensor or several; include a batch of one, where the CPU kernels take other
    paths). Rounding gives ~1e-6 in float32 and below ~1e-2 in bfloat16 (whose own error is
    discounted); a layout bug gives ~1 (torch 2.13 on the CPU: the CycleGAN generator's
    gradients for a batch of one, 0.84 against bfloat16's own 0.12)."""
    samples = [samples] if isinstance(samples, torch.Tensor) else list(samples)
    exact = Precision("float32", precision.device_type)
    worst = 0.0
    for x in samples:
        reference = _gradients(net, x, exact, False)
        default = reference if precision.name == "float32" else _gradients(net, x, precision, False)
        other = _gradients(net, x, precision, True)
        for r, a, b in zip(reference, default, other):
            scale = r.norm().clamp_min(1e-30)
            worst = max(worst, float((b - r).norm() / scale) - float((a - r).norm() / scale))
    return max(worst, 0.0)


LAYOUT_TOLERANCE = 0.05  # above float32 and bfloat16 rounding, far below a wrong kernel's ~1


def choose_channels_last(
    requested, net: torch.nn.Module, samples, precision: Precision, *, cpu_default: bool
) -> tuple[bool, str]:
    """Whether to train ``net`` in channels_last, and why, for the log.

    ``false``: never. On CUDA: ``true`` uses it, ``auto`` does not (unmeasured on a card). On
    the CPU, ``true`` and ``auto`` (when ``cpu_default``, i.e. the layout is faster for this
    network) first check this machine's kernels: the net in both layouts on ``samples``
    (small batches, one of them of one sample; well under a second) must agree within
    :data:`LAYOUT_TOLERANCE` (:func:`layout_error`); otherwise the default layout is kept.
    """
    check_layout(requested, "channels_last")
    if requested is False:
        return False, "default layout (channels_last false)"
    samples = [samples] if isinstance(samples, torch.Tensor) else list(samples)
    if samples[0].device.type == "cuda":
        if requested is True:
            return True, "channels_last as set"
        return False, "default layout (channels_last auto: unmeasured on CUDA)"
    if requested == "auto" and not cpu_default:
        return False, "default layout (channels_last auto: not faster for this network on the CPU)"
    error = layout_error(net, samples, precision)
    if error <= LAYOUT_TOLERANCE:
        return True, f"channels_last (checked on this CPU: gradients as in the default layout, rel. error {error:.1e} beyond it)"
    return False, (
        f"default layout (channels_last gives wrong gradients on this CPU: rel. error {error:.2g} "
        f"beyond the default layout's, tolerance {LAYOUT_TOLERANCE})"
    )


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
