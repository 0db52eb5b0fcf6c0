"""Background texture and vessel contrast of a fundus image, to compare phantoms with DRIVE.

:func:`background_bands` measures, on the green channel divided by its local mean (so that
illumination and colour drop out), the standard deviation of three spatial-frequency bands of
the background (inside the eroded field of view, away from the dilated vessel label) and the
relative darkening of vessel pixels. Scales are fractions of the FOV radius, so images of
different sizes compare once they show the retina at the same pixel size (resample first,
:func:`at_size`). ``scripts/phantom_realism.py`` prints the table for DRIVE and the phantom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

__all__ = ["BAND_SIGMAS", "BackgroundBands", "background_bands", "at_size"]

#: Band edges as Gaussian sigmas in units of the FOV radius: (fine, mid, coarse).
BAND_SIGMAS = ((0.0, 0.008), (0.008, 0.025), (0.025, 0.06))


@dataclass(frozen=True)
class BackgroundBands:
    """Relative std of the background per band, and the relative darkening of vessels."""

    fine: float  # pixel noise and the finest texture
    mid: float  # texture of a few pixels (choroid, nerve fibres)
    coarse: float  # blotches and slow shading
    vessel_contrast: float  # 1 - mean(vessel) / mean(background), both relative to the local mean

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def background_bands(rgb: np.ndarray, label: np.ndarray, fov: np.ndarray) -> BackgroundBands:
    """Measure one image: ``rgb`` (H, W, 3) floats, ``label`` and ``fov`` boolean (H, W)."""
    fov = np.asarray(fov, dtype=bool)
    label = np.asarray(label, dtype=bool)
    if rgb.ndim != 3 or rgb.shape[:2] != fov.shape or label.shape != fov.shape:
        raise ValueError(f"shapes differ: image {rgb.shape}, label {label.shape}, fov {fov.shape}")
    if fov.sum() < 100:
        raise ValueError("the field of view has fewer than 100 pixels")
    green = rgb[..., 1].astype(np.float64)
    radius = float(np.sqrt(fov.sum() / np.pi))
    inside = ndi.binary_erosion(fov, iterations=max(1, int(0.08 * radius)))
    background = inside & ~ndi.binary_dilation(label, iterations=max(2, int(0.02 * radius)))
    if background.sum() < 50 or not (label & inside).any():
        raise ValueError("too little background or no vessel inside the field of view")
    weight = ndi.gaussian_filter(fov.astype(np.float64), 0.05 * radius)
    local = ndi.gaussian_filter(green * fov, 0.05 * radius) / np.maximum(weight, 1e-6)
    relative = green / np.maximum(local, 1e-3)
    bands = []
    for low, high in BAND_SIGMAS:
        sharp = ndi.gaussian_filter(relative, low * radius) if low else relative
        bands.append(float((sharp - ndi.gaussian_filter(relative, high * radius))[background].std()))
    contrast = 1.0 - relative[label & inside].mean() / relative[background].mean()
    return BackgroundBands(*bands, vessel_contrast=float(contrast))


def at_size(rgb: np.ndarray, label: np.ndarray, fov: np.ndarray, short_side: int):
    """Resample an image, its label and FOV so that the shorter side is ``short_side`` pixels
    (anti-aliased; label and FOV by area fraction >= 0.5)."""
    scale = short_side / min(fov.shape)
    shape = (round(fov.shape[0] * scale), round(fov.shape[1] * scale))
    small = resize(rgb, shape + (rgb.shape[2],), anti_aliasing=True, preserve_range=True)
    as_mask = lambda mask: resize(mask.astype(np.float64), shape, anti_aliasing=True) >= 0.5  # noqa: E731
    return small, as_mask(label), as_mask(fov)
