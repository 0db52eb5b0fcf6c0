"""CycleGAN training (Zhu et al.'s recipe, unchanged), resumable, on in-memory patch sets.

Domain A is the labeled reference image's patches, domain B one unlabeled image's patches.
``G_A`` translates A -> B (the reference restyled as the unlabeled image); it is the network
the workflow keeps. Everything else follows the original ``cycle_gan_model.py``:

* least-squares GAN loss (MSE against 1 for real, 0 for fake);
* cycle loss L1, weight ``lambda_cycle`` each way; identity loss L1, weight
  ``lambda_identity * lambda_cycle``;
* a history pool of ``pool_size`` generated images per discriminator (50 % swap rule);
  discriminator loss halved;
* Adam(lr, (beta1, 0.999)) for both generators jointly and for both discriminators jointly;
  learning rate constant for ``epochs`` epochs, then linear decay to 0 over ``epochs_decay``;
* an epoch is ``max(len(A), len(B))`` samples: A in a shuffled order, B drawn at random
  (the original ``unaligned`` dataset).

Data pipeline: ``resize_crop`` is the original default ``resize_and_crop`` (each patch
upsampled bicubically to ``load_size``, then a random ``crop_size`` crop and a random
horizontal flip per sample); ``native`` trains on the patches as they are (flip only). The
patch sets are converted once to device tensors in [-1, 1]; each step only indexes them.

Pretraining and fine-tuning (the paper's proposed future work, not in the original): a
run's result holds all four networks; a later run can start from them (``init``) instead of
the random initialisation, with fresh optimisers and schedule, training every layer or only
the generators' decoders (``train_layers``). Pretraining is an ordinary run whose domain B
pools the patches of several unlabeled images.

Two equivalent-math shortcuts keep a step cheap: a generator's two inputs that do not depend
on each other (``G_A(fake_A)`` for the cycle and ``G_A(real_B)`` for the identity) go through
the network as one batch, and a discriminator sees its real and fake batches in one call.
With instance normalisation (no batch statistics) and no dropout, this gives the same losses
as separate calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from cyclesynth import runtime
from cyclesynth.cyclegan_networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    count_parameters,
    format_parameters,
    init_weights,
)

PREPROCESS_MODES = ("resize_crop", "native")
TRAIN_LAYERS = ("all", "last")
LOSS_NAMES = (
    "loss_G_A",
    "loss_G_B",
    "loss_D_A",
    "loss_D_B",
    "loss_cycle_A",
    "loss_cycle_B",
    "loss_idt_A",
    "loss_idt_B",
)
CHECKPOINT_FORMAT = "cyclesynth-cyclegan-checkpoint/1"
GENERATOR_FORMAT = "cyclesynth-cyclegan-generator/1"
PRETRAINED_FORMAT = "cyclesynth-cyclegan-pretrained/1"
# Settings that fix the networks' shapes: a pretrained file must agree on all of them.
ARCHITECTURE_KEYS = ("ngf", "ndf", "n_blocks", "n_layers_d", "residual")
# Settings that do not change the trained result; left out of the checkpoint fingerprint.
_NOT_FINGERPRINTED = ("checkpoint_every",)


# ----------------------------------------------------------------------------- settings


@dataclass
class CycleGANSettings:
    """All CycleGAN hyper-parameters. Defaults are the paper's (Zhu et al.'s) values."""

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_layers_d: int = 3
    residual: bool = False  # not in the original: output = tanh(atanh(input) + network)
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
    amp: bool = False  # CUDA only: float16 autocast + gradient scaling
    channels_last: bool = False  # CUDA only (see uses_channels_last)
    train_layers: str = "all"  # "last": only the generators' decoders (and the discriminators)

    def __post_init__(self):
        def need(condition: bool, key: str, what: str) -> None:
            if not condition:
                raise ValueError(f"CycleGAN setting '{key}' {what} (got {getattr(self, key)!r})")

        for key in ("ngf", "ndf", "n_layers_d", "load_size", "crop_size", "batch_size"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        for key in ("n_blocks", "epochs", "epochs_decay", "pool_size", "checkpoint_every"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 0, key, "must be an integer >= 0")
        for key in ("flip", "amp", "channels_last", "residual"):
            need(isinstance(getattr(self, key), bool), key, "must be true or false")
        for key in ("lr", "beta1", "lambda_cycle", "lambda_identity", "init_gain"):
            need(_is_number(getattr(self, key)) and getattr(self, key) >= 0, key, "must be a number >= 0")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.beta1 < 1, "beta1", "must be < 1")
        need(self.preprocess in PREPROCESS_MODES, "preprocess", f"must be one of {', '.join(PREPROCESS_MODES)}")
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
        return runtime.settings_from_dict(cls, d, "CycleGAN")

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


# ----------------------------------------------------------------------------- image pool


class ImagePool:
    """History of generated images (Shrivastava et al.), as the original ``ImagePool``.

    Until the pool is full every image is stored and returned. Afterwards, with probability
    0.5 an image is swapped with a random stored one (the stored one is returned), else the
    image itself is returned. ``pool_size == 0`` passes images through. Random decisions come
    from ``rng`` (a NumPy generator), so runs are reproducible and resumable.
    """

    def __init__(self, pool_size: int, rng: np.random.Generator | None = None):
        self.pool_size = int(pool_size)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                return_images.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                random_id = int(self.rng.integers(0, self.pool_size))
                stored = self.images[random_id]
                self.images[random_id] = image.clone()
                return_images.append(stored)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)

    def state(self) -> list[torch.Tensor]:
        return [image.detach().cpu() for image in self.images]

    def load_state(self, images: list[torch.Tensor], device: torch.device) -> None:
        self.images = [image.to(device) for image in images]


# ----------------------------------------------------------------------------- data


def _check_patches(patches, name: str) -> np.ndarray:
    array = np.asarray(patches)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name}: expected patches of shape (N, h, w, 3), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: no patches")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name}: expected float patches in [0, 1], got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def uses_channels_last(settings: CycleGANSettings, device: torch.device) -> bool:
    """Channels-last layout is used on CUDA only. On the CPU (torch 2.13) the input gradient
    of a ConvTranspose2d that follows the residual blocks comes out wrong in channels-last
    (relative error ~1 against the default layout, while each layer alone agrees to 1e-7),
    so the CPU keeps the default layout."""
    return bool(settings.channels_last and device.type == "cuda")


def _to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, h, w, 3) in [0, 1] -> (N, 3, h, w) float32 in [-1, 1] on ``device``."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return (tensor.permute(0, 3, 1, 2) * 2.0 - 1.0).contiguous()


def _resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic for upsampling (clamped to [-1, 1]), area averaging for downsampling."""
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if size[0] <= batch.shape[-2] and size[1] <= batch.shape[-1]:
        return F.interpolate(batch, size=size, mode="area")
    return F.interpolate(batch, size=size, mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)


class DomainPatches:
    """One domain's patches as a device tensor, with the original's per-sample augmentation.

    ``resize_crop``: the whole set is upsampled once to ``load_size``; :meth:`batch` takes a
    random ``crop_size`` crop and (if ``flip``) a random horizontal flip per sample.
    ``native``: patches as they are, random flip only.
    """

    def __init__(self, patches: np.ndarray, settings: CycleGANSettings, device: torch.device, chunk: int = 64):
        self.settings = settings
        self.resize_crop = settings.preprocess == "resize_crop"
        if self.resize_crop:
            size = (settings.load_size, settings.load_size)
            data = torch.empty((len(patches), 3) + size, dtype=torch.float32, device=device)
            for start in range(0, len(patches), chunk):
                part = _to_tensor(patches[start : start + chunk], device)
                data[start : start + chunk] = _resize(part, size)
            self.data = data
        else:
            self.data = _to_tensor(patches, device)
        self.channels_last = uses_channels_last(settings, torch.device(device))
        if self.channels_last:
            self.data = self.data.contiguous(memory_format=torch.channels_last)
        # One batch buffer, filled in place each step (the step is done with a batch before
        # the next one is drawn); the last, shorter batch of an epoch uses its first rows.
        side = (settings.crop_size,) * 2 if self.resize_crop else tuple(self.data.shape[-2:])
        self._buffer = torch.empty((settings.batch_size, 3) + side, dtype=torch.float32, device=device)
        if self.channels_last:
            self._buffer = self._buffer.contiguous(memory_format=torch.channels_last)

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, indices: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """The samples at ``indices``, cropped and flipped at random, in the shared buffer."""
        n = len(indices)
        if n > self._buffer.shape[0]:
            raise ValueError(f"batch of {n} samples exceeds batch_size {self._buffer.shape[0]}")
        if self.resize_crop:
            c = self.settings.crop_size
            offsets = rng.integers(0, self.settings.load_size - c + 1, size=(n, 2))
        flips = rng.random(n) < 0.5 if self.settings.flip else np.zeros(n, dtype=bool)
        out = self._buffer[:n]
        for k, index in enumerate(indices):
            sample = self.data[int(index)]
            if self.resize_crop:
                y, x = int(offsets[k, 0]), int(offsets[k, 1])
                sample = sample[:, y : y + c, x : x + c]
            out[k].copy_(sample.flip(-1) if flips[k] else sample)
        return out


def epoch_batches(n_a: int, n_b: int, batch_size: int, rng: np.random.Generator):
    """Index batches of one epoch, as the original unaligned dataset with shuffling:
    ``max(n_a, n_b)`` samples; A in a shuffled order (index modulo ``n_a``), B at random."""
    order = rng.permutation(max(n_a, n_b))
    for start in range(0, len(order), batch_size):
        index_a = order[start : start + batch_size] % n_a
        index_b = rng.integers(0, n_b, size=len(index_a))
        yield index_a, index_b


# ----------------------------------------------------------------------------- model


def _set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for param in net.parameters():
            param.requires_grad_(requires_grad)


class CycleGANModel:
    """The four networks, their optimisers, schedulers and image pools; one training step."""

    def __init__(self, settings: CycleGANSettings, device: torch.device, rng: np.random.Generator):
        self.settings = s = settings
        self.device = device
        self.netG_A = init_weights(ResnetGenerator(3, 3, s.ngf, s.n_blocks, residual=s.residual), s.init_gain).to(device)
        self.netG_B = init_weights(ResnetGenerator(3, 3, s.ngf, s.n_blocks, residual=s.residual), s.init_gain).to(device)
        self.netD_A = init_weights(NLayerDiscriminator(3, s.ndf, s.n_layers_d), s.init_gain).to(device)
        self.netD_B = init_weights(NLayerDiscriminator(3, s.ndf, s.n_layers_d), s.init_gain).to(device)
        if uses_channels_last(s, device):
            for net in self.networks().values():
                net.to(memory_format=torch.channels_last)

        self.fake_A_pool = ImagePool(s.pool_size, rng)
        self.fake_B_pool = ImagePool(s.pool_size, rng)
        self.criterionGAN = nn.MSELoss()
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()

        betas = (s.beta1, 0.999)
        if s.train_layers == "last":  # fine-tuning: the generators' encoders and blocks stay fixed
            trainable = self.netG_A.decoder_parameters() + self.netG_B.decoder_parameters()
            kept = {id(p) for p in trainable}
            for net in (self.netG_A, self.netG_B):
                for param in net.parameters():
                    param.requires_grad_(id(param) in kept)
        else:
            trainable = list(self.netG_A.parameters()) + list(self.netG_B.parameters())
        self.optimizer_G = torch.optim.Adam(trainable, lr=s.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(
            list(self.netD_A.parameters()) + list(self.netD_B.parameters()), lr=s.lr, betas=betas
        )
        rule = linear_decay_rule(s.epochs, s.epochs_decay)
        self.scheduler_G = torch.optim.lr_scheduler.LambdaLR(self.optimizer_G, lr_lambda=rule)
        self.scheduler_D = torch.optim.lr_scheduler.LambdaLR(self.optimizer_D, lr_lambda=rule)

        self.use_amp = bool(s.amp and device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def networks(self) -> dict[str, nn.Module]:
        return {"netG_A": self.netG_A, "netG_B": self.netG_B, "netD_A": self.netD_A, "netD_B": self.netD_B}

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def load_networks(self, states: dict[str, dict]) -> None:
        """Start from other weights (a pretrained CycleGAN): the four networks only;
        optimisers, schedules and image pools stay fresh."""
        for name, net in self.networks().items():
            net.load_state_dict(states[name])

    def _autocast(self):
        if self.use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _gan_loss(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        prediction = prediction.float()
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return self.criterionGAN(prediction, target)

    def _discriminator_loss(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Original ``backward_D_basic`` (real and fake through ``netD`` in one call)."""
        with self._autocast():
            pred = netD(torch.cat([real, fake.to(real.dtype)], 0))
        pred_real, pred_fake = pred[: real.shape[0]], pred[real.shape[0] :]
        return (self._gan_loss(pred_real, True) + self._gan_loss(pred_fake, False)) * 0.5

    def optimize_parameters(self, real_A: torch.Tensor, real_B: torch.Tensor) -> torch.Tensor:
        """One step (generators, then discriminators); returns the detached losses in
        :data:`LOSS_NAMES` order as one tensor on the device."""
        s = self.settings
        lambda_A = lambda_B = s.lambda_cycle
        lambda_idt = s.lambda_identity
        n_a = real_A.shape[0]
        n_b = real_B.shape[0]

        # forward: fake_B = G_A(A), rec_A = G_B(G_A(A)); fake_A = G_B(B), rec_B = G_A(G_B(B))
        with self._autocast():
            fake_B = self.netG_A(real_A)
            fake_A = self.netG_B(real_B)
            if lambda_idt > 0:  # identity inputs share the pass with the cycle inputs
                out_A = self.netG_A(torch.cat([fake_A, real_B], 0))
                rec_B, idt_A = out_A[:n_b], out_A[n_b:]
                out_B = self.netG_B(torch.cat([fake_B, real_A], 0))
                rec_A, idt_B = out_B[:n_a], out_B[n_a:]
            else:
                rec_B = self.netG_A(fake_A)
                rec_A = self.netG_B(fake_B)

        # generators G_A and G_B (the discriminators need no gradients here)
        _set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        if lambda_idt > 0:
            loss_idt_A = self.criterionIdt(idt_A.float(), real_B) * lambda_B * lambda_idt
            loss_idt_B = self.criterionIdt(idt_B.float(), real_A) * lambda_A * lambda_idt
        else:
            loss_idt_A = loss_idt_B = torch.zeros((), device=real_A.device)
        with self._autocast():
            pred_fake_B = self.netD_A(fake_B)
            pred_fake_A = self.netD_B(fake_A)
        loss_G_A = self._gan_loss(pred_fake_B, True)
        loss_G_B = self._gan_loss(pred_fake_A, True)
        loss_cycle_A = self.criterionCycle(rec_A.float(), real_A) * lambda_A
        loss_cycle_B = self.criterionCycle(rec_B.float(), real_B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.optimizer_G)

        # discriminators D_A (real B vs fake B) and D_B (real A vs fake A)
        _set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        loss_D_A = self._discriminator_loss(self.netD_A, real_B, self.fake_B_pool.query(fake_B.detach().float()))
        loss_D_B = self._discriminator_loss(self.netD_B, real_A, self.fake_A_pool.query(fake_A.detach().float()))
        self.scaler.scale(loss_D_A + loss_D_B).backward()
        self.scaler.step(self.optimizer_D)
        self.scaler.update()

        return torch.stack(
            [loss_G_A, loss_G_B, loss_D_A, loss_D_B, loss_cycle_A, loss_cycle_B, loss_idt_A, loss_idt_B]
        ).detach().float()

    def update_learning_rate(self) -> None:
        self.scheduler_G.step()
        self.scheduler_D.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer_G.param_groups[0]["lr"])

    def state(self) -> dict:
        state = {name: net.state_dict() for name, net in self.networks().items()}
        state.update(
            optimizer_G=self.optimizer_G.state_dict(),
            optimizer_D=self.optimizer_D.state_dict(),
            scheduler_G=self.scheduler_G.state_dict(),
            scheduler_D=self.scheduler_D.state_dict(),
            scaler=self.scaler.state_dict(),
            fake_A_pool=self.fake_A_pool.state(),
            fake_B_pool=self.fake_B_pool.state(),
        )
        return state

    def load_state(self, state: dict) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        self.optimizer_G.load_state_dict(state["optimizer_G"])
        self.optimizer_D.load_state_dict(state["optimizer_D"])
        self.scheduler_G.load_state_dict(state["scheduler_G"])
        self.scheduler_D.load_state_dict(state["scheduler_D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.fake_A_pool.load_state(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state(state["fake_B_pool"], self.device)


# ----------------------------------------------------------------------------- training


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
) -> str:
    """Identifies a training run: settings (except ``checkpoint_every``), seed, patch shapes,
    a content hash of both patch sets and, when it starts from pretrained weights, their
    run's fingerprint. A checkpoint with another fingerprint is ignored."""
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
    fingerprint = training_fingerprint(
        settings, seed, reference_patches, target_patches, None if init is None else init.fingerprint
    )
    rng = runtime.seed_everything(seed)  # also seeds the global torch RNG used by init_weights
    model = CycleGANModel(settings, device, rng)
    if init is not None:
        model.load_networks(init.networks)
    model.train()
    data_A = DomainPatches(reference_patches, settings, device)
    data_B = DomainPatches(target_patches, settings, device)
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

    if settings.amp and not model.use_amp:
        log("amp requested but the device is not CUDA: training in float32")
    if settings.channels_last and not uses_channels_last(settings, device):
        log("channels_last requested but the device is not CUDA: training in the default layout")
    if init is not None:
        log(f"starting from pretrained weights ({init.source}); training {settings.train_layers} generator layers")
    log(
        f"CycleGAN on {device}: G {format_parameters(count_parameters(model.netG_A))} x2, "
        f"D {format_parameters(count_parameters(model.netD_A))} x2; {len(data_A)} reference and "
        f"{len(data_B)} target patches, {settings.preprocess} "
        f"{tuple(data_A.data.shape[-2:])}"
        + (f" -> crops {settings.crop_size}" if settings.preprocess == "resize_crop" else "")
        + f"; {iterations} iterations x {total} epochs"
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


# ----------------------------------------------------------------------------- generator I/O


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
            },
            "settings": settings.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        },
    )


def architecture(settings: CycleGANSettings) -> dict:
    """The settings that fix the networks' shapes (:data:`ARCHITECTURE_KEYS`)."""
    return {key: getattr(settings, key) for key in ARCHITECTURE_KEYS}


@dataclass
class PretrainedCycleGAN:
    """The four networks of a pretrained CycleGAN, the start of every per-image fine-tuning."""

    networks: dict  # name -> state_dict, as CycleGANModel.networks()
    architecture: dict  # ARCHITECTURE_KEYS -> value
    fingerprint: str  # of the pretraining run
    source: str = ""  # where it was loaded from (for messages)

    def check_architecture(self, settings: CycleGANSettings) -> None:
        wanted = architecture(settings)
        differ = [f"{k} {self.architecture.get(k)!r} vs {v!r}" for k, v in wanted.items() if self.architecture.get(k) != v]
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
    settings = CycleGANSettings.from_dict(payload["settings"])
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
