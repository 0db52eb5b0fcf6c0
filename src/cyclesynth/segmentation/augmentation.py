"""Augmentation of U-Net training patches: the augment modes (:func:`augment_batch`: flips and
quarter turns, photometric changes) and the geometric part (rotation by any angle, scaling and
elastic deformation, :func:`geometric_augment`), applied to image and label together.

With one labeled image the network sees one vessel geometry; flips and quarter turns
(:func:`augment_batch`) only reorder it. The geometric part makes new
geometry, batched on the training device, one transform per sample:

Transform
    A pixel ``p`` (column, row; pixel centres at integers) of the output samples the input at

        q = c + R(angle) (p - c) / scale + d(p)

    with ``c`` the patch centre, ``R`` a rotation, and ``d`` a smooth random displacement field
    in pixels. ``angle`` is uniform in [-rotation, rotation) degrees (``rotation: 180``: any
    angle); ``scale`` is log-uniform in [scale_min, scale_max] (above 1 the content appears
    larger); each component of ``d`` is white Gaussian noise smoothed by a Gaussian of
    ``elastic_sigma`` pixels and scaled so that its standard deviation is ``elastic_alpha``
    pixels (on a coarse grid, interpolated bicubically; see :func:`elastic_displacement`). With
    probability ``1 - probability`` a sample is left exactly as it is.

Sampling
    One ``torch.nn.functional.grid_sample`` call (``align_corners=False``) samples the image
    channels and the float label together, bilinearly, with ``padding_mode="reflection"``:
    a position outside the patch takes the value mirrored at the patch border, for image and
    label alike, so the label stays the image's. The image is clamped to [0, 1] (bilinear
    weights are convex; the clamp only removes rounding). The bilinear label is thresholded
    at :data:`LABEL_THRESHOLD`.

Ignored pixels
    A label may mark pixels as ignored (:data:`IGNORE`, 255: a pseudo-label's band of doubt,
    left out of the loss). The vessel indicator (label == 1) and an ignore indicator
    (label == 255) are sampled as two channels of the same call; an output pixel is ignored
    where the sampled ignore indicator exceeds :data:`IGNORE_THRESHOLD` (0.5), else vessel or
    background by the vessel indicator as above. A label without ignored pixels gives the
    same output as before (the extra channel is zero).

Label threshold (0.5)
    Chosen by one rule: the threshold at which the augmented labels keep the vessel area of
    the originals under transforms that keep area (rotation by random angles, scale 1, no
    elastic field), counted within the disc that stays inside the patch. Measured on phantom
    labels (64 px patches with vessels, random angles): at 0.5 the vessel area changes by
    -1.4 % (demo phantoms, 192 px, 54 patches x 64 angles) and -0.2 % (DRIVE-size phantoms,
    584 x 565, 124 patches x 32 angles); 0.49 gives +0.4 % / +0.6 %, 0.45 +7.1 % / +4.0 %,
    0.55 -10 % / -4.3 %. At 0.5 a straight label edge stays midway between vessel and
    background pixel centres, where it was.

Randomness
    Every random number comes from the ``torch.Generator`` passed in (on its own device), in a
    fixed order and amount per batch, so a generator seeded alike gives the same batch; the
    training loop seeds it by (seed, epoch), which keeps resumed runs bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

#: Threshold on the bilinearly sampled label (see the module docstring for the rule).
LABEL_THRESHOLD = 0.5
#: Label value of an ignored pixel (as cyclesynth.segmentation.loss.IGNORE_INDEX), and the
#: threshold on the sampled ignore indicator above which an output pixel is ignored.
IGNORE = 255
IGNORE_THRESHOLD = 0.5


@dataclass(frozen=True)
class GeometricSettings:
    """The ``unet.geometric`` settings (used by the augment modes geometric and
    photometric_geometric)."""

    rotation: float = 180.0  # degrees; angle uniform in [-rotation, rotation), 0..180
    scale_min: float = 0.8  # scale log-uniform in [scale_min, scale_max]
    scale_max: float = 1.25
    elastic_alpha: float = 2.0  # standard deviation of the displacement, pixels (0 = none)
    elastic_sigma: float = 10.0  # smoothness (Gaussian sigma) of the displacement, pixels
    probability: float = 0.8  # chance that a sample is transformed (else left as it is)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
                raise ValueError(f"U-Net setting 'geometric.{f.name}' must be a finite number (got {value!r})")
            object.__setattr__(self, f.name, float(value))
        checks = [
            ("rotation", 0.0 <= self.rotation <= 180.0, "between 0 and 180 degrees"),
            ("scale_min", self.scale_min > 0, "positive"),
            ("scale_max", self.scale_max > 0, "positive"),
            ("elastic_alpha", self.elastic_alpha >= 0, "at least 0 pixels"),
            ("elastic_sigma", self.elastic_sigma > 0, "positive (pixels)"),
            ("probability", 0.0 <= self.probability <= 1.0, "between 0 and 1"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"U-Net setting 'geometric.{name}' must be {what} (got {getattr(self, name)})")
        if self.scale_min > self.scale_max:
            raise ValueError(
                f"U-Net setting 'geometric.scale_min' ({self.scale_min}) exceeds 'geometric.scale_max' "
                f"({self.scale_max})"
            )

    @classmethod
    def from_dict(cls, values: dict) -> "GeometricSettings":
        if not isinstance(values, dict):
            raise ValueError(f"U-Net setting 'geometric' must be a mapping of settings (got {values!r})")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"unknown U-Net setting(s): {', '.join('geometric.' + k for k in unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**values)


def _rand(generator: torch.Generator, shape, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _gaussian_taps(sigma: float, device) -> torch.Tensor:
    radius = int(math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def elastic_displacement(
    n: int, height: int, width: int, alpha: float, sigma: float, generator: torch.Generator, device
) -> torch.Tensor:
    """Smooth random displacements (n, 2, height, width) in pixels (x then y), each component
    of standard deviation ``alpha``.

    Gaussian noise is smoothed by a Gaussian of ``sigma`` pixels, on a grid of nodes
    ``step = max(1, floor(sigma / 2))`` pixels apart (the smoothed field varies little over half
    a sigma), then interpolated bicubically to every pixel. The noise covers a margin of
    3 sigma around the patch and is smoothed without padding, so the field is equally strong
    and smooth at the border; its autocorrelation is a Gaussian of ``sigma * sqrt(2)``
    pixels. The coarse grid makes the field about 5x cheaper at sigma 10 than smoothing noise
    at every pixel (16 patches of 64 px, one CPU thread: 1.3 ms instead of 7.1 ms)."""
    step = max(1, int(sigma // 2))
    kernel = _gaussian_taps(sigma / step, device)
    radius = (len(kernel) - 1) // 2
    rows, cols = -(-(height - 1) // step) + 1, -(-(width - 1) // step) + 1  # nodes spanning the patch
    shape = (n * 2, 1, rows + 2 * radius, cols + 2 * radius)
    noise = torch.randn(shape, generator=generator, device=generator.device).to(device)
    field = F.conv2d(noise, kernel[None, None, None, :])
    field = F.conv2d(field, kernel[None, None, :, None])
    # the smoothed unit noise has std sqrt(sum of the 2-D kernel squared) = sum(kernel**2)
    field = field * (alpha / float((kernel**2).sum()))
    if step > 1:
        size = ((rows - 1) * step + 1, (cols - 1) * step + 1)
        field = F.interpolate(field, size=size, mode="bicubic", align_corners=True)[..., :height, :width]
    return field.reshape(n, 2, height, width)


def sampling_grid(
    angles: torch.Tensor, scales: torch.Tensor, displacement: torch.Tensor | None, height: int, width: int
) -> torch.Tensor:
    """The ``grid_sample`` grid (n, height, width, 2) for rotations by ``angles`` (degrees, (n,)),
    ``scales`` ((n,)) about the patch centre and ``displacement`` ((n, 2, h, w) pixels or None),
    in the normalised coordinates of ``align_corners=False``."""
    device = angles.device
    rows = torch.arange(height, device=device, dtype=torch.float32)
    cols = torch.arange(width, device=device, dtype=torch.float32)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    v = (rows - cy)[None, :, None]  # (1, h, 1)
    u = (cols - cx)[None, None, :]  # (1, 1, w)
    radians = angles.float() * (math.pi / 180.0)
    cos = (torch.cos(radians) / scales.float())[:, None, None]
    sin = (torch.sin(radians) / scales.float())[:, None, None]
    x = cx + cos * u - sin * v
    y = cy + sin * u + cos * v
    if displacement is not None:
        x = x + displacement[:, 0]
        y = y + displacement[:, 1]
    # pixel centre i lies at (2 i + 1) / size - 1 with align_corners=False
    return torch.stack(((2 * x + 1) / width - 1, (2 * y + 1) / height - 1), dim=-1)


def warp(images: torch.Tensor, labels: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``images`` (n, c, h, w) in [0, 1] and ``labels`` (n, h, w) at ``grid``: bilinear,
    reflection at the border; the label thresholded at :data:`LABEL_THRESHOLD`, ignored
    (:data:`IGNORE`) where the sampled ignore indicator exceeds :data:`IGNORE_THRESHOLD`
    (bool labels have no ignored pixels)."""
    c = images.shape[1]
    channels = [images, (labels == 1)[:, None].to(images.dtype)]
    can_ignore = labels.dtype != torch.bool
    if can_ignore:
        channels.append((labels == IGNORE)[:, None].to(images.dtype))
    sampled = F.grid_sample(torch.cat(channels, dim=1), grid.to(images.dtype), mode="bilinear",
                            padding_mode="reflection", align_corners=False)
    out_images = sampled[:, :c].clamp(0.0, 1.0)
    out_labels = (sampled[:, c] >= LABEL_THRESHOLD).to(labels.dtype)
    if can_ignore:
        out_labels = torch.where(sampled[:, c + 1] > IGNORE_THRESHOLD, torch.full_like(out_labels, IGNORE), out_labels)
    return out_images, out_labels


def geometric_augment(
    images: torch.Tensor, labels: torch.Tensor, settings: GeometricSettings, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate, scale and elastically deform each sample of ``images`` (n, c, h, w) in [0, 1]
    and ``labels`` (n, h, w) alike, as the module docstring says."""
    n, _, h, w = images.shape
    device = images.device
    applied = _rand(generator, (n,), device) < settings.probability
    angles = (_rand(generator, (n,), device) * 2 - 1) * settings.rotation
    log_min, log_max = math.log(settings.scale_min), math.log(settings.scale_max)
    scales = torch.exp(log_min + (log_max - log_min) * _rand(generator, (n,), device))
    displacement = None
    if settings.elastic_alpha > 0:
        displacement = elastic_displacement(
            n, h, w, settings.elastic_alpha, settings.elastic_sigma, generator, device
        )
    out_images, out_labels = warp(images, labels, sampling_grid(angles, scales, displacement, h, w))
    out_images = torch.where(applied[:, None, None, None], out_images, images)
    out_labels = torch.where(applied[:, None, None], out_labels, labels)
    return out_images, out_labels


AUGMENT_MODES = ("none", "flips", "photometric", "geometric", "photometric_geometric")
# Modes that use the geometric settings (unet.geometric, :func:`geometric_augment`).
GEOMETRIC_MODES = ("geometric", "photometric_geometric")


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
    :data:`cyclesynth.segmentation.loss.IGNORE_INDEX`, which every mode keeps as it is: flips and turns move it, the
    geometric warp carries it through, :func:`warp`).

    ``"none"`` returns the inputs; ``"flips"`` applies a random horizontal flip, vertical flip
    and quarter turn per sample, identically to image and label; ``"photometric"`` adds, per
    sample, a random gamma, per-channel gain, contrast, brightness, Gaussian blur (with
    probability 0.5) and Gaussian noise (ranges in :data:`PHOTOMETRIC`), clamped to [0, 1];
    labels are left as they are by the photometric part. ``"geometric"`` adds to the flips a
    rotation by any angle, a scaling and an elastic deformation per sample, moving image and
    label together (``geometric``, default :class:`GeometricSettings`;
    :func:`geometric_augment`); ``"photometric_geometric"`` does both, the
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
