"""The training loop: one CycleGAN (A = reference patches, B = target patches), resumable
from a checkpoint tied to a fingerprint of the run, optionally starting from pretrained
networks (fine-tuning)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from cyclesynth import runtime
from cyclesynth.synthesis.cyclegan.networks import count_parameters, format_parameters
from cyclesynth.synthesis.cyclegan.data import DomainPatches, _check_patches, epoch_batches
from cyclesynth.synthesis.cyclegan.model import LOSS_NAMES, CycleGANModel
from cyclesynth.synthesis.cyclegan.settings import CycleGANSettings

if TYPE_CHECKING:
    from cyclesynth.synthesis.cyclegan.saved import PretrainedCycleGAN

CHECKPOINT_FORMAT = "cyclesynth-cyclegan-checkpoint/1"
# Settings that do not change the trained result; left out of the checkpoint fingerprint.
_NOT_FINGERPRINTED = ("checkpoint_every",)


@dataclass
class CycleGANResult:
    generator_state: dict  # state_dict of G_A (reference -> target style), on the CPU
    history: pd.DataFrame = field(repr=False)  # one row per epoch
    resumed_from_epoch: int = 0  # 0 for a fresh run
    network_states: dict = field(default_factory=dict, repr=False)  # all four, on the CPU
    fingerprint: str = ""  # of the training run (settings, seed, data, initial weights)


def _content_hash(array: np.ndarray, max_elements: int = 4_000_000) -> str:
    flat = np.ascontiguousarray(array).reshape(-1)
    step = max(1, flat.size // max_elements)
    return hashlib.sha256(flat[::step].tobytes()).hexdigest()[:16]


def training_fingerprint(
    settings: CycleGANSettings,
    seed: int,
    reference_patches: np.ndarray,
    target_patches: np.ndarray,
    init_fingerprint: str | None = None,
    precision: str | None = None,
) -> str:
    """Identifies a training run: settings (except ``checkpoint_every``), seed, patch shapes,
    a content hash of both patch sets, when it starts from pretrained weights their run's
    fingerprint, and the precision ``settings.precision`` gave on this machine (``auto`` is
    bfloat16 on one CPU, float32 on another). A checkpoint with another fingerprint is
    ignored."""
    described = {k: v for k, v in settings.to_dict().items() if k not in _NOT_FINGERPRINTED}
    description = {
        "format": CHECKPOINT_FORMAT,
        "settings": described,
        "seed": int(seed),
        "reference": [list(reference_patches.shape), _content_hash(reference_patches)],
        "target": [list(target_patches.shape), _content_hash(target_patches)],
    }
    if init_fingerprint is not None:
        description["init"] = init_fingerprint
    if precision is not None:
        description["precision"] = precision
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _load_resume_state(checkpoint_path, fingerprint: str, log) -> dict | None:
    if checkpoint_path is None or not Path(checkpoint_path).is_file():
        return None
    try:
        payload = runtime.load_checkpoint(checkpoint_path, fingerprint)
    except Exception as err:  # unreadable checkpoint: start again rather than fail
        log(f"ignoring unreadable checkpoint {checkpoint_path} ({type(err).__name__}: {err})")
        return None
    if payload is None or payload.get("format") != CHECKPOINT_FORMAT:
        log(f"ignoring checkpoint {checkpoint_path}: it was made with other settings, seed or data")
        return None
    return payload


def train_cyclegan(
    reference_patches: np.ndarray,
    target_patches: np.ndarray,
    settings: CycleGANSettings,
    *,
    device: torch.device | str,
    seed: int,
    checkpoint_path: str | os.PathLike | None = None,
    init: "PretrainedCycleGAN | None" = None,
    log: Callable[[str], None] = print,
) -> CycleGANResult:
    """Train one CycleGAN (A = reference patches, B = target patches, both (N, h, w, 3) in
    [0, 1]) and return ``G_A``'s weights and the per-epoch loss history.

    With ``init`` (a :class:`PretrainedCycleGAN` of the same architecture), the four networks
    start from its weights instead of the random initialisation: fine-tuning. Optimisers,
    learning-rate schedule and image pools start fresh; ``settings.train_layers`` chooses
    whether the whole generators or only their decoders are trained.

    With ``checkpoint_path``, the full training state is saved every ``checkpoint_every``
    epochs (and after the last one); a checkpoint there from the same settings, seed and data
    is resumed, giving the same result as an uninterrupted run. The checkpoint is never
    deleted here. Raises :class:`runtime.TrainingDiverged` when an epoch's mean loss is not
    finite.
    """
    device = torch.device(device) if isinstance(device, str) else device
    reference_patches = _check_patches(reference_patches, "reference patches")
    target_patches = _check_patches(target_patches, "target patches")
    if settings.preprocess == "native":
        for name, patches in (("reference", reference_patches), ("target", target_patches)):
            h, w = patches.shape[1:3]
            if h % 4 or w % 4:
                raise ValueError(f"{name} patches are {h}x{w}: native CycleGAN training needs sides divisible by 4")
        if reference_patches.shape[1:3] != target_patches.shape[1:3]:
            raise ValueError(
                f"native CycleGAN training needs patches of one size in both domains "
                f"(reference {reference_patches.shape[1:3]}, target {target_patches.shape[1:3]})"
            )

    side = settings.crop_size if settings.preprocess == "resize_crop" else min(reference_patches.shape[1:3])
    if side // 2**settings.n_layers_d < 3:
        raise ValueError(
            f"training patches of side {side} are too small for a discriminator with n_layers_d="
            f"{settings.n_layers_d}: need at least {3 * 2**settings.n_layers_d} pixels"
        )

    if init is not None:
        init.check_architecture(settings)
    rng = runtime.seed_everything(seed)  # also seeds the global torch RNG used by init_weights
    model = CycleGANModel(settings, device, rng)
    fingerprint = training_fingerprint(
        settings, seed, reference_patches, target_patches, None if init is None else init.fingerprint,
        precision=model.precision.name,
    )
    if init is not None:
        model.load_networks(init.networks)
    model.train()
    data_A = DomainPatches(reference_patches, settings, device, channels_last=model.channels_last)
    data_B = DomainPatches(target_patches, settings, device, channels_last=model.channels_last)
    total = settings.total_epochs
    iterations = -(-max(len(data_A), len(data_B)) // settings.batch_size)

    history: list[dict] = []
    start_epoch = 0
    payload = _load_resume_state(checkpoint_path, fingerprint, log)
    if payload is not None:
        model.load_state(payload["model"])
        runtime.restore_random_state(payload["random_state"])
        rng.bit_generator.state = payload["data_rng"]
        history = list(payload["history"])
        start_epoch = int(payload["epoch"])
        log(f"resuming CycleGAN training from checkpoint {checkpoint_path} after epoch {start_epoch}/{total}")

    log(f"precision {model.precision.name} ({model.precision_reason}); {model.layout_reason}")
    if settings.compile != "none" and not model.compiled:
        log(f"compile {settings.compile} requested but the device is not CUDA: training without compilation")
    if init is not None:
        log(f"starting from pretrained weights ({init.source}); training {settings.train_layers} generator layers")
    log(
        f"CycleGAN on {device}: G {format_parameters(count_parameters(model.netG_A))} x2, "
        f"D {format_parameters(count_parameters(model.netD_A))} x2; {len(data_A)} reference and "
        f"{len(data_B)} target patches, {settings.preprocess} "
        f"{tuple(data_A.data.shape[-2:])}"
        + (f" -> crops {settings.crop_size}" if settings.preprocess == "resize_crop" else "")
        + f"; {iterations} iterations x {total} epochs; {model.precision.name}"
        + (f", compiled ({settings.compile})" if model.compiled else "")
    )

    for epoch in range(start_epoch, total):
        started = time.perf_counter()
        lr = model.lr
        sums = torch.zeros(len(LOSS_NAMES), device=device)
        for index_a, index_b in epoch_batches(len(data_A), len(data_B), settings.batch_size, rng):
            real_A = data_A.batch(index_a, rng)
            real_B = data_B.batch(index_b, rng)
            sums += model.optimize_parameters(real_A, real_B)
        means = dict(zip(LOSS_NAMES, (sums / iterations).tolist()))
        runtime.check_finite(means, epoch + 1, "CycleGAN training")
        model.update_learning_rate()
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch + 1, **means, "lr": lr, "seconds": seconds})

        done = epoch + 1
        if checkpoint_path is not None and settings.checkpoint_every > 0 and (
            done % settings.checkpoint_every == 0 or done == total
        ):
            runtime.save_checkpoint(
                checkpoint_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "fingerprint": fingerprint,
                    "epoch": done,
                    "settings": settings.to_dict(),
                    "seed": int(seed),
                    "model": model.state(),
                    "random_state": runtime.random_state(),
                    "data_rng": rng.bit_generator.state,
                    "history": history,
                },
            )
        log(
            f"epoch {done}/{total} lr {lr:.3g} {seconds:.1f}s: "
            + " ".join(f"{name[5:]}={value:.4f}" for name, value in means.items())
        )

    network_states = {
        name: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        for name, net in model.networks().items()
    }
    columns = ["epoch", *LOSS_NAMES, "lr", "seconds"]
    return CycleGANResult(
        generator_state=network_states["netG_A"],
        history=pd.DataFrame(history, columns=columns),
        resumed_from_epoch=start_epoch,
        network_states=network_states,
        fingerprint=fingerprint,
    )
