"""The patch pipeline: each domain's patches as one device tensor, the original's per-sample
augmentation (``resize_crop``: upsampled to ``load_size``, random ``crop_size`` crop, flip;
``native``: flip only), and one epoch's index batches (the original unaligned dataset)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cyclesynth.synthesis.cyclegan.settings import CycleGANSettings


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
    """Channels-last layout without a check: on CUDA when set. On the CPU the model decides
    (:meth:`CycleGANModel._choose_layout`): with torch 2.13 on an Intel Xeon the input
    gradient of a ConvTranspose2d that follows the residual blocks came out wrong in
    channels-last (relative error ~1 against the default layout, while each layer alone
    agreed to 1e-7); on an AMD EPYC with AVX512-BF16 it agreed to 1e-6."""
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

    def __init__(self, patches: np.ndarray, settings: CycleGANSettings, device: torch.device, chunk: int = 64,
                 channels_last: bool | None = None):
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
        self.channels_last = (
            uses_channels_last(settings, torch.device(device)) if channels_last is None else bool(channels_last)
        )
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
