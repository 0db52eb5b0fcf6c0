"""Training the U-Net on image/label pairs, saving it, and predicting vessel probabilities.

What the network sees
    RGB images in [0, 1] are scaled to [-1, 1] (``x * 2 - 1``, :func:`normalise`) before they
    enter the network, in training and in :func:`predict_probabilities` alike. Augmentation
    (:func:`augment_batch`) works on the [0, 1] values, before that scaling.

Training (:func:`train_unet`, the paper's setup)
    Every image is cut once into ``patch_size`` patches at ``patch_stride`` on the regular grid of
    :mod:`cyclesynth.patches`; the patches are held as tensors on the training device. One epoch
    is one pass over all patches in a shuffled order, in mini-batches of ``batch_size`` (the last,
    smaller batch is kept). Loss: cross-entropy with class weights [1, vessel_weight], i.e. the
    weighted mean ``sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i]`` over all pixels of the batch
    (PyTorch's definition) but those labeled :data:`IGNORE_INDEX` (255: the pseudo-labels' band
    of doubt, :mod:`cyclesynth.pseudo_labels`), which are left out of both sums; a patch with no
    other pixel is not trained on. Optimiser: Adam at ``lr``, constant (the paper's) or decayed by a
    cosine to 0 over all steps (``lr_schedule``; see :func:`learning_rate`). The reported epoch loss is the mean of the
    batch losses weighted by the number of patches in each batch.

Precision, layout and compilation
    ``precision`` auto, float32 (TF32 off), tf32, bfloat16 (autocast) or float16 (autocast
    with a gradient scaler), as :func:`runtime.choose_precision` resolves it on the device:
    ``auto`` is bfloat16 on a CPU with native bf16 and float32 elsewhere; the loss is
    computed in float32. ``channels_last`` (auto, true, false) trains in the channels-last
    memory layout where :func:`runtime.choose_channels_last` finds this machine's kernels
    correct (on the CPU it is ~1.2x faster for the U-Net). ``compile: reduce-overhead``
    compiles the network (``torch.compile`` with CUDA graphs; CUDA only); augmentation, the
    optimiser and the learning-rate schedule stay outside, as they are. The log says which
    mode and layout a job used, and why.

Determinism and resuming
    The seed fixes the weight initialisation (through :func:`runtime.seed_everything`); each
    epoch's shuffling and augmentation draw from a generator seeded with (seed, epoch), so an epoch
    does the same thing whether the run was interrupted before it or not. Every
    ``checkpoint_every`` epochs (and after the last) the model, optimiser, random states and history
    are written to ``checkpoint_path``; a new run with the same settings, seed and data resumes from
    it and ends with the same weights as an uninterrupted run (bit-identical on the CPU; on CUDA as
    far as its kernels are deterministic).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cyclesynth import runtime
from cyclesynth.geometric_augmentation import GeometricSettings, geometric_augment
from cyclesynth.images import atomic_path
from cyclesynth.patches import extract_patches, grid_for, stitch_patches
from cyclesynth.runtime import (
    settings_from_dict,
    check_finite,
    load_checkpoint,
    random_state,
    restore_random_state,
    save_checkpoint,
    seed_everything,
)
from cyclesynth.unet import UNet, check_input_size

AUGMENT_MODES = ("none", "flips", "photometric", "geometric", "photometric_geometric")
# Modes that use the geometric settings (unet.geometric, :mod:`cyclesynth.geometric_augmentation`).
GEOMETRIC_MODES = ("geometric", "photometric_geometric")
LR_SCHEDULES = ("constant", "cosine")
MODEL_FORMAT = "cyclesynth-unet"
MODEL_FORMAT_VERSION = 1
IN_CHANNELS = 3
N_CLASSES = 2  # background, vessel
#: Label value left out of the loss (an ignored pseudo-label pixel); labels are 0, 1 or this.
IGNORE_INDEX = 255

# Settings that do not change what training computes (left out of the checkpoint fingerprint).
_NOT_IN_FINGERPRINT = ("checkpoint_every",)


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


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


@dataclass
class UNetResult:
    state: dict  # state_dict with CPU tensors
    history: pd.DataFrame  # one row per epoch: epoch, loss, seconds
    resumed_from_epoch: int  # 0 when training started from scratch
    n_patches: int = 0  # training patches per epoch
    settings: UNetSettings = field(default_factory=UNetSettings)


# --------------------------------------------------------------------------------------------
# Loss, normalisation, augmentation
# --------------------------------------------------------------------------------------------


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


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, vessel_weight: float) -> torch.Tensor:
    """Cross-entropy with class weights [1, vessel_weight], weighted mean over all pixels but
    the ignored ones.

    ``logits`` (N, 2, H, W), ``labels`` (N, H, W) with 0 = background, 1 = vessel and
    :data:`IGNORE_INDEX` (255) = left out of the loss (numerator and denominator alike).
    """
    weight = torch.tensor([1.0, float(vessel_weight)], dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, labels.long(), weight=weight, ignore_index=IGNORE_INDEX)


def _uniform(generator: torch.Generator, shape, low: float, high: float, device) -> torch.Tensor:
    values = torch.rand(shape, generator=generator, device=generator.device)
    return (low + (high - low) * values).to(device)


def _dihedral(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
    """Random horizontal/vertical flips and 90-degree rotations, the same for image and label."""
    n, _, h, w = images.shape
    device = images.device
    hflip = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(device)
    vflip = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(device)
    # quarter turns only for square patches (a rotated non-square patch would change shape)
    turns = torch.randint(0, 4 if h == w else 1, (n,), generator=generator, device=generator.device).to(device)

    images = torch.where(hflip[:, None, None, None], images.flip(-1), images)
    labels = torch.where(hflip[:, None, None], labels.flip(-1), labels)
    images = torch.where(vflip[:, None, None, None], images.flip(-2), images)
    labels = torch.where(vflip[:, None, None], labels.flip(-2), labels)
    if h == w:
        images, labels = images.clone(), labels.clone()
        for k in (1, 2, 3):
            chosen = turns == k
            if bool(chosen.any()):
                images[chosen] = torch.rot90(images[chosen], k, dims=(-2, -1))
                labels[chosen] = torch.rot90(labels[chosen], k, dims=(-2, -1))
    return images, labels


# Ranges of the photometric augmentation (per sample; gain per channel).
PHOTOMETRIC = {
    "gain": (0.6, 1.4),
    "gamma": (0.5, 2.0),  # log-uniform
    "contrast": (0.5, 1.5),
    "brightness": (-0.2, 0.2),
    "noise_std": (0.0, 0.05),
    "blur_sigma": (0.5, 1.5),
    "blur_probability": 0.5,
}


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per sample (sigma 0 leaves the sample unchanged)."""
    n, c, h, w = images.shape
    radius = int(np.ceil(3 * PHOTOMETRIC["blur_sigma"][1]))
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    safe = sigma.clamp_min(1e-3)[:, None]
    kernel = torch.exp(-(taps[None, :] ** 2) / (2 * safe**2))
    kernel = torch.where(sigma[:, None] > 0, kernel, (taps == 0).to(images.dtype)[None, :])
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, taps): one kernel per sample and channel
    mode = "reflect" if min(h, w) > radius else "replicate"
    x = images.reshape(1, n * c, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), kernel[:, None, None, :], groups=n * c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode=mode), kernel[:, None, :, None], groups=n * c)
    return x.reshape(n, c, h, w)


def _photometric(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, c = images.shape[:2]
    dev = images.device
    p = PHOTOMETRIC
    log_gamma = _uniform(generator, (n, 1, 1, 1), np.log(p["gamma"][0]), np.log(p["gamma"][1]), dev)
    gain = _uniform(generator, (n, c, 1, 1), *p["gain"], dev)
    contrast = _uniform(generator, (n, 1, 1, 1), *p["contrast"], dev)
    brightness = _uniform(generator, (n, 1, 1, 1), *p["brightness"], dev)
    blur_on = _uniform(generator, (n,), 0.0, 1.0, dev) < p["blur_probability"]
    blur_sigma = _uniform(generator, (n,), *p["blur_sigma"], dev)
    noise_std = _uniform(generator, (n, 1, 1, 1), *p["noise_std"], dev)
    noise = torch.randn(images.shape, generator=generator, device=generator.device).to(dev)

    x = images.clamp(0.0, 1.0) ** torch.exp(log_gamma)
    x = x * gain
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + brightness
    x = x.clamp(0.0, 1.0)
    x = _gaussian_blur(x, torch.where(blur_on, blur_sigma, torch.zeros_like(blur_sigma)))
    x = x + noise * noise_std
    return x.clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    mode: str,
    generator: torch.Generator,
    geometric: GeometricSettings | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: ``images`` (N, C, H, W) in [0, 1], ``labels`` (N, H, W) (0, 1 and
    :data:`IGNORE_INDEX`, which every mode keeps as it is: flips and turns move it, the
    geometric warp carries it through, :func:`cyclesynth.geometric_augmentation.warp`).

    ``"none"`` returns the inputs; ``"flips"`` applies a random horizontal flip, vertical flip
    and quarter turn per sample, identically to image and label; ``"photometric"`` adds, per
    sample, a random gamma, per-channel gain, contrast, brightness, Gaussian blur (with
    probability 0.5) and Gaussian noise (ranges in :data:`PHOTOMETRIC`), clamped to [0, 1];
    labels are left as they are by the photometric part. ``"geometric"`` adds to the flips a
    rotation by any angle, a scaling and an elastic deformation per sample, moving image and
    label together (``geometric``, default :class:`GeometricSettings`;
    :mod:`cyclesynth.geometric_augmentation`); ``"photometric_geometric"`` does both, the
    geometric part first (so noise and blur are not smoothed by the resampling). Random
    numbers are drawn from ``generator`` (on its own device), so a seeded generator gives a
    reproducible batch.
    """
    if mode not in AUGMENT_MODES:
        raise ValueError(f"unknown augmentation mode {mode!r} (one of {', '.join(AUGMENT_MODES)})")
    if mode == "none":
        return images, labels
    images, labels = _dihedral(images, labels, generator)
    if mode in GEOMETRIC_MODES:
        images, labels = geometric_augment(images, labels, geometric or GeometricSettings(), generator)
    if mode in ("photometric", "photometric_geometric"):
        images = _photometric(images, generator)
    return images, labels


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _check_inputs(images, labels, fovs) -> None:
    if len(images) == 0:
        raise ValueError("U-Net training needs at least one image")
    if len(labels) != len(images):
        raise ValueError(f"U-Net training got {len(images)} images but {len(labels)} labels")
    if fovs is not None and len(fovs) != len(images):
        raise ValueError(f"U-Net training got {len(images)} images but {len(fovs)} FOV masks")
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != IN_CHANNELS:
            raise ValueError(f"training image {i}: expected shape (H, W, 3), got {image.shape}")
        if labels[i].shape != image.shape[:2]:
            raise ValueError(
                f"training image {i}: label shape {labels[i].shape} does not match image {image.shape[:2]}"
            )
        if labels[i].dtype != bool and not np.isin(labels[i], (0, 1, IGNORE_INDEX)).all():
            raise ValueError(
                f"training image {i}: label is not binary (values 0 and 1, or {IGNORE_INDEX} for ignored pixels)"
            )
        if fovs is not None and fovs[i] is not None and fovs[i].shape != image.shape[:2]:
            raise ValueError(
                f"training image {i}: FOV shape {fovs[i].shape} does not match image {image.shape[:2]}"
            )


def _cut_training_patches(images, labels, fovs, settings: UNetSettings):
    """All training patches: images (N, 3, p, p) float32 in [0, 1], labels (N, p, p) uint8 (0, 1,
    :data:`IGNORE_INDEX`). Patches whose every pixel is ignored are left out (no loss to learn
    from)."""
    size, stride = settings.patch_size, settings.patch_stride
    xs, ys = [], []
    for i, image in enumerate(images):
        x, _ = extract_patches(np.asarray(image, dtype=np.float32), size, stride)
        label = np.asarray(labels[i])
        y, _ = extract_patches(label.astype(np.uint8), size, stride)
        keep = (y != IGNORE_INDEX).reshape(len(y), -1).any(axis=1)
        if settings.skip_empty_patches and fovs is not None and fovs[i] is not None:
            f, _ = extract_patches(np.asarray(fovs[i]).astype(bool), size, stride)
            keep &= f.reshape(len(f), -1).any(axis=1)
        if not keep.all():
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs).transpose(0, 3, 1, 2)
    y = np.concatenate(ys).astype(np.uint8)
    if len(x) == 0:
        raise ValueError("no training patches left: every patch lies outside the FOV masks or is all ignored")
    return np.ascontiguousarray(x), y


def _content_hash(arrays: Sequence[np.ndarray | None]) -> str:
    """Cheap hash of shapes, dtypes, a subsample and the sum of each array."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.asarray(array)
        digest.update(f"{array.shape}{array.dtype}{float(array.sum(dtype=np.float64)):.10g}".encode())
        digest.update(np.ascontiguousarray(array[::7, ::5]).tobytes())
    return digest.hexdigest()


def training_fingerprint(images, labels, fovs, settings: UNetSettings, seed: int, *, precision: str | None = None) -> str:
    """Identifies a training run: settings (except checkpoint frequency, and the geometric
    settings where the augment mode does not use them), seed, data, and the precision that
    ``settings.precision`` gave on this machine (``auto`` is bfloat16 on one CPU and float32
    on another: a checkpoint from one is not resumed on the other)."""
    described = {k: v for k, v in settings.to_dict().items() if k not in _NOT_IN_FINGERPRINT}
    if settings.augment not in GEOMETRIC_MODES:
        del described["geometric"]
    description = {
        "settings": described,
        "precision": precision,
        "seed": int(seed),
        "shapes": [list(np.shape(image)) for image in images],
        "images": _content_hash(images),
        "labels": _content_hash(labels),
        "fovs": None if fovs is None else _content_hash(fovs),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Generator for one epoch's order and augmentation, fixed by (seed, epoch)."""
    value = int(np.random.SeedSequence([int(seed) % 2**63, epoch]).generate_state(1, np.uint64)[0])
    generator = torch.Generator(device=device)
    generator.manual_seed(value)
    return generator


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def layout_samples(x_all: torch.Tensor) -> list[torch.Tensor]:
    """Training patches, normalised, on which :func:`runtime.choose_channels_last` checks the
    layouts: one patch (a last batch may be that small) and four."""
    x = normalise(x_all[: min(4, len(x_all))].float())
    return [x[:1], x]


def build_model(settings: UNetSettings) -> UNet:
    return UNet(
        in_channels=IN_CHANNELS,
        n_classes=N_CLASSES,
        base_channels=settings.base_channels,
        depth=settings.depth,
        batch_norm=settings.batch_norm,
        input_size=settings.patch_size,
    )


def training_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_x: torch.Tensor,
    batch_y: torch.Tensor,
    settings: "UNetSettings",
    generator: torch.Generator,
    *,
    precision: runtime.Precision | None = None,
    scaler: torch.amp.GradScaler | None = None,
    compiled: bool = False,
    channels_last: bool = False,
) -> torch.Tensor:
    """One step on a batch of patches ((N, 3, h, w) in [0, 1], labels (N, h, w)): augment,
    forward, weighted cross-entropy, backward, Adam. Returns the detached loss.

    ``precision`` (default float32) sets TF32 for the whole step and autocast for the
    forward pass; the loss is computed in float32. ``scaler`` (float16) scales the loss and
    skips a step whose gradients overflow. ``compiled``: the model was compiled for CUDA
    graphs (:func:`runtime.compile_for_training`). ``channels_last``: the model is in the
    channels-last layout, and the batch is put in it too."""
    precision = precision if precision is not None else runtime.Precision("float32", batch_x.device.type)
    runtime.mark_step_begin(compiled)
    with precision.tf32():
        batch_x, batch_y = augment_batch(batch_x, batch_y, settings.augment, generator, settings.geometric)
        batch_x = normalise(batch_x)
        if channels_last:
            batch_x = batch_x.contiguous(memory_format=torch.channels_last)
        with precision.autocast():
            logits = model(batch_x)
        loss = weighted_cross_entropy(logits.float(), batch_y, settings.vessel_weight)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
    return loss.detach()


def train_unet(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    fovs: Sequence[np.ndarray | None] | None,
    settings: UNetSettings,
    *,
    device: torch.device | str,
    seed: int,
    checkpoint_path: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> UNetResult:
    """Train a U-Net on ``images`` (float32 (H, W, 3) in [0, 1]) and ``labels`` (bool (H, W), or
    uint8 of 0, 1 and :data:`IGNORE_INDEX` for pixels left out of the loss).

    ``fovs`` (bool (H, W) each, or None) only matter with ``settings.skip_empty_patches``.
    See the module docstring for the training procedure, determinism and resuming.
    """
    device = torch.device(device)
    _check_inputs(images, labels, fovs)
    x_np, y_np = _cut_training_patches(images, labels, fovs, settings)
    n_patches = len(x_np)
    x_all = torch.from_numpy(x_np).to(device)
    y_all = torch.from_numpy(y_np).to(device)
    del x_np, y_np

    seed_everything(seed)
    model = build_model(settings).to(device)
    precision, precision_reason = runtime.choose_precision(settings.precision, device)
    channels_last, layout_reason = runtime.choose_channels_last(
        settings.channels_last, model, layout_samples(x_all), precision, cpu_default=True
    )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = precision.scaler()
    compiled = runtime.compile_for_training(model, settings.compile, device)
    steps_per_epoch = math.ceil(n_patches / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    fingerprint = training_fingerprint(images, labels, fovs, settings, seed, precision=precision.name)

    records: list[dict] = []
    resumed_from = 0
    if checkpoint_path is not None:
        payload = load_checkpoint(checkpoint_path, fingerprint)
        if payload is not None:
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scaler"):
                scaler.load_state_dict(payload["scaler"])
            restore_random_state(payload["random_state"])
            records = list(payload["history"])
            resumed_from = int(payload["epoch"])
            log(f"U-Net: resuming from checkpoint {checkpoint_path} after epoch {resumed_from}/{settings.epochs}")
    log(
        f"U-Net: {n_patches} patches of {settings.patch_size}x{settings.patch_size} "
        f"(stride {settings.patch_stride}) from {len(images)} images, batch {settings.batch_size}, "
        f"{settings.epochs} epochs, augment {settings.augment}, device {device}, {precision.name}"
        + (f", compiled ({settings.compile})" if compiled else "")
    )
    log(f"U-Net: precision {precision.name} ({precision_reason}); {layout_reason}")
    if settings.compile != "none" and not compiled:
        log(f"U-Net: compile {settings.compile} requested but the device is not CUDA: training without compilation")

    for epoch in range(resumed_from + 1, settings.epochs + 1):
        started = time.perf_counter()
        model.train()
        generator = _epoch_generator(seed, epoch, device)
        order = torch.randperm(n_patches, generator=generator, device=device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch_number, start in enumerate(range(0, n_patches, settings.batch_size)):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings, (epoch - 1) * steps_per_epoch + batch_number, total_steps)
            index = order[start : start + settings.batch_size]
            loss = training_step(
                model, optimizer, x_all[index], y_all[index], settings, generator,
                precision=precision, scaler=scaler, compiled=compiled, channels_last=channels_last,
            )
            total += loss.double() * len(index)
        epoch_loss = float(total) / n_patches
        check_finite({"weighted_cross_entropy": epoch_loss}, epoch, "U-Net training")
        seconds = time.perf_counter() - started
        records.append({"epoch": epoch, "loss": epoch_loss, "seconds": seconds})

        if checkpoint_path is not None and (epoch % settings.checkpoint_every == 0 or epoch == settings.epochs):
            save_checkpoint(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch,
                    "model": _cpu_state(model),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "random_state": random_state(),
                    "history": records,
                    "settings": settings.to_dict(),
                    "seed": int(seed),
                },
            )
        log(f"U-Net epoch {epoch}/{settings.epochs}: loss {epoch_loss:.5f} ({seconds:.1f} s)")

    history = pd.DataFrame.from_records(records, columns=["epoch", "loss", "seconds"])
    return UNetResult(
        state=_cpu_state(model),
        history=history,
        resumed_from_epoch=resumed_from,
        n_patches=n_patches,
        settings=settings,
    )


# --------------------------------------------------------------------------------------------
# Saving, loading, predicting
# --------------------------------------------------------------------------------------------


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


def load_model(path: str | os.PathLike, device: torch.device | str) -> tuple[UNet, UNetSettings]:
    """Rebuild a saved U-Net on ``device`` in eval mode; return it with its settings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: U-Net model file not found")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a cyclesynth U-Net model file")
    if payload.get("version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"{path}: U-Net model format version {payload.get('version')} is not supported")
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


def predict_probabilities(
    model: UNet,
    image: np.ndarray,
    *,
    patch_size: int,
    stride: int,
    device: torch.device | str,
    batch_size: int = 64,
    precision: runtime.Precision | None = None,
) -> np.ndarray:
    """Vessel probability (softmax channel 1) for a whole (H, W, 3) image in [0, 1], on the
    training grid.

    The image is cut on the same patch grid as in training (padded by reflection at the bottom
    and right if needed), scaled to [-1, 1], predicted in batches under ``torch.inference_mode``
    and stitched back (overlaps averaged); returns float32 (H, W) in [0, 1]. The model is moved
    to ``device`` and evaluated in eval mode (its previous mode is restored afterwards). The
    workflow predicts with :func:`cyclesynth.inference.predict_image` (blended overlapping
    tiles, test-time augmentation), which with stride = patch size and no augmentation gives
    this function's map bit for bit (both predict the tiles with
    :func:`cyclesynth.inference.tile_probabilities`).
    ``precision`` (default float32): the forward passes under its autocast (bfloat16 where the
    model was trained so, :func:`prediction_precision`); the softmax is taken in float32.
    """
    from cyclesynth.inference import evaluating, tile_probabilities

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != model.in_channels:
        raise ValueError(f"expected an image of shape (H, W, {model.in_channels}), got {image.shape}")
    image = image.astype(np.float32, copy=False)
    grid = grid_for(image, patch_size, stride)
    with evaluating(model, torch.device(device)):
        tiles = tile_probabilities(model, image, grid, device=device, batch_size=batch_size, precision=precision)
    probabilities = stitch_patches(tiles, grid)
    return np.clip(probabilities, 0.0, 1.0).astype(np.float32)
