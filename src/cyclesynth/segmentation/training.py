"""Training the U-Net on image/label pairs (:func:`train_unet`): the loop, checkpoints and resuming.

What the network sees
    RGB images in [0, 1] are scaled to [-1, 1] (``x * 2 - 1``,
    :func:`cyclesynth.segmentation.settings.normalise`) before they enter the network, in
    training and in :func:`cyclesynth.segmentation.inference.predict_probabilities` alike.
    Augmentation (:func:`cyclesynth.segmentation.augmentation.augment_batch`) works on the
    [0, 1] values, before that scaling.

Training (:func:`train_unet`, the paper's setup)
    Every image is cut once into ``patch_size`` patches at ``patch_stride`` on the regular grid of
    :mod:`cyclesynth.data.patches`; the patches are held as tensors on the training device. One epoch
    is one pass over all patches in a shuffled order, in mini-batches of ``batch_size`` (the last,
    smaller batch is kept). Loss: cross-entropy with class weights [1, vessel_weight], i.e. the
    weighted mean ``sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i]`` over all pixels of the batch
    (PyTorch's definition) but those labeled :data:`IGNORE_INDEX` (255: the pseudo-labels' band
    of doubt, :mod:`cyclesynth.segmentation.pseudo_labels`), which are left out of both sums; a patch with no
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

Starting weights
    ``init_state`` starts the network from given weights (a self-training student from its
    teacher's, ``pseudo_labels.init: teacher``) instead of the seed's initialisation; the
    optimiser, the learning-rate schedule and the epochs start afresh. The weights are part
    of the checkpoint fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from cyclesynth import runtime
from cyclesynth.data.patches import extract_patches
from cyclesynth.runtime import (
    check_finite,
    load_checkpoint,
    random_state,
    restore_random_state,
    save_checkpoint,
    seed_everything,
)
from cyclesynth.segmentation.augmentation import GEOMETRIC_MODES, augment_batch
from cyclesynth.segmentation.loss import IGNORE_INDEX, weighted_cross_entropy
from cyclesynth.segmentation.settings import IN_CHANNELS, N_CLASSES, UNetSettings, learning_rate, normalise
from cyclesynth.segmentation.unet import UNet

# Settings that do not change what training computes (left out of the checkpoint fingerprint).
_NOT_IN_FINGERPRINT = ("checkpoint_every",)


@dataclass
class UNetResult:
    state: dict  # state_dict with CPU tensors
    history: pd.DataFrame  # one row per epoch: epoch, loss, seconds
    resumed_from_epoch: int  # 0 when training started from scratch
    n_patches: int = 0  # training patches per epoch
    settings: UNetSettings = field(default_factory=UNetSettings)


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


def state_fingerprint(state: dict | None) -> str | None:
    """Identifies a set of starting weights (a state_dict): the hash of its names, shapes and
    values; None for none (a network initialised from the seed)."""
    if state is None:
        return None
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name].detach().to("cpu")
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def training_fingerprint(
    images, labels, fovs, settings: UNetSettings, seed: int, *, precision: str | None = None,
    init: str | None = None,
) -> str:
    """Identifies a training run: settings (except checkpoint frequency, and the geometric
    settings where the augment mode does not use them), seed, data, the precision that
    ``settings.precision`` gave on this machine (``auto`` is bfloat16 on one CPU and float32
    on another: a checkpoint from one is not resumed on the other) and the starting weights
    (``init``, :func:`state_fingerprint`; a student fine-tuned from a retrained teacher starts
    again)."""
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
    if init is not None:
        description["init"] = init
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
    init_state: dict | None = None,
    log: Callable[[str], None] = print,
) -> UNetResult:
    """Train a U-Net on ``images`` (float32 (H, W, 3) in [0, 1]) and ``labels`` (bool (H, W), or
    uint8 of 0, 1 and :data:`IGNORE_INDEX` for pixels left out of the loss).

    ``fovs`` (bool (H, W) each, or None) only matter with ``settings.skip_empty_patches``.
    ``init_state`` (a state_dict of the same architecture, e.g. a self-training student's
    teacher): the network starts from these weights instead of the seed's initialisation; the
    optimiser and the learning-rate schedule start afresh.
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
    model = build_model(settings)
    if init_state is not None:
        try:
            model.load_state_dict(init_state)
        except RuntimeError as err:
            raise ValueError(
                f"the starting weights do not fit this U-Net (base_channels {settings.base_channels}, "
                f"depth {settings.depth}, batch_norm {settings.batch_norm}): {err}"
            ) from None
    model = model.to(device)
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
    fingerprint = training_fingerprint(
        images, labels, fovs, settings, seed, precision=precision.name, init=state_fingerprint(init_state)
    )

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
    if init_state is not None:
        log("U-Net: starting from the given weights (fine-tuning), not from the seed's initialisation")
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
