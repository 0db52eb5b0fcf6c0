"""Rendering a phantom: the exact vessel label, the image (background, illumination, optic disc,
vessels, noise), :func:`generate_phantom`, and a plausible second observer's label."""

from __future__ import annotations

import math

import numpy as np
from skimage.filters import gaussian

from cyclesynth.data.phantom.style import _DETAIL, _NOISE, _OBSERVER, _STYLE, PhantomStyle
from cyclesynth.data.phantom.vessels import _R_MIN, _build_geometry, _coverage, _fov_mask, _Geometry, _render_label

#: Smallest height or width the generator accepts.
MIN_SIZE = 32


def _smooth_weights(n: int, cells: int) -> np.ndarray:
    """(n, cells) matrix interpolating ``cells`` control values smoothly onto ``n`` pixels."""
    u = np.linspace(0.0, cells - 1.0, n)[:, None]
    weights = np.exp(-0.5 * ((u - np.arange(cells)[None, :]) / 0.7) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], channels: int) -> np.ndarray:
    """Low-frequency noise (two octaves), roughly zero mean and unit std, shape (H, W, C)."""
    h, w = shape
    total = np.zeros((h, w, channels), dtype=np.float32)
    for cells, weight in ((6, 1.0), (12, 0.5)):
        grid = rng.standard_normal((channels, cells, cells)).astype(np.float32)
        wy, wx = _smooth_weights(h, cells), _smooth_weights(w, cells)
        field_ = np.einsum("hi,cij,wj->hwc", wy, grid, wx, optimize=True)
        total += weight * field_ / max(float(field_.std()), 1e-6)
    return total / np.float32(1.1)


def _detail_noise(rng: np.random.Generator, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Band-pass noise with structures 1-2.5 % of the FOV radius across (2-7 px at DRIVE's size,
    the choroidal and nerve-fibre texture of fundus photographs), unit std, shape (H, W)."""
    white = rng.standard_normal(shape).astype(np.float32)
    fine = gaussian(white, sigma=0.01 * radius, mode="reflect") - gaussian(white, sigma=0.025 * radius, mode="reflect")
    return (fine / max(float(fine.std()), 1e-6)).astype(np.float32)


def _render_image(
    geom: _Geometry, style: PhantomStyle, rng: np.random.Generator, detail_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    h, w = geom.height, geom.width
    drive_scale = min(1.0, min(h, w) / 565.0)  # blur and noise are given at DRIVE's size
    R = geom.fov_radius
    cover, rmap = _coverage(geom)
    label = cover >= 0.0

    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    cy, cx = geom.centre
    radial = np.hypot(yy - cy, xx - cx) / R

    # background with low-frequency texture (mostly luminance, a little chroma)
    noise = _smooth_noise(rng, (h, w), 2)
    lum = 1.0 + style.texture_strength * noise[..., 0]
    chroma = style.texture_strength * 0.4 * noise[..., 1]
    base = np.asarray(style.background_rgb, dtype=np.float32)
    img = base[None, None, :] * lum[..., None]
    img[..., 0] *= 1.0 + chroma
    img[..., 2] *= 1.0 - chroma
    if style.detail_texture > 0:
        img *= (1.0 + style.detail_texture * _detail_noise(detail_rng, (h, w), R))[..., None]

    # illumination gradient and vignetting
    proj = ((xx - cx) * math.cos(style.illumination_angle) + (yy - cy) * math.sin(style.illumination_angle)) / R
    img *= (1.0 + style.illumination_strength * np.clip(proj, -1.2, 1.2))[..., None]
    img *= (1.0 - style.vignetting * np.clip(radial, 0.0, 1.2) ** 3)[..., None]

    # darker macula around the fovea
    fy, fx = geom.fovea
    macula = np.exp(-(((yy - fy) ** 2 + (xx - fx) ** 2) / (0.22 * R) ** 2))
    img *= (1.0 - style.macula_darkening * macula)[..., None]

    # bright optic disc, pale yellow, with a brighter cup
    dy, dx = geom.disc_centre
    rd = geom.disc_radius
    ddist = np.hypot(yy - dy, xx - dx)
    disc = 1.0 / (1.0 + np.exp((ddist - rd) / (0.12 * rd)))
    cup = np.exp(-((ddist / (0.5 * rd)) ** 2))
    disc_colour = np.array([1.0, 0.93, 0.72], dtype=np.float32)
    blend = (style.optic_disc_brightness * (0.8 * disc + 0.2 * cup))[..., None]
    img = img + blend * (disc_colour - img)

    # vessels: attenuation mostly in green and blue; thin vessels fainter
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.clip(cover + 0.5, 0.0, 1.0)
        rel = np.where(label, np.clip(1.0 - cover / np.maximum(rmap, 1e-6), 0.0, 1.0), 1.0)
    profile = alpha * (0.7 + 0.3 * np.sqrt(np.clip(1.0 - rel**2, 0.0, 1.0)))
    depth = np.clip(0.7 + 0.3 * rmap / geom.trunk_radius, 0.0, 1.0)
    dark = (profile * depth).astype(np.float32)
    if style.central_reflex > 0:
        wide = np.clip((rmap - 1.5) / 2.0, 0.0, 1.0)
        reflex = style.central_reflex * wide * np.exp(-((rel / 0.3) ** 2)) * (cover >= 0)
        dark = dark * (1.0 - reflex.astype(np.float32))
    contrast = np.asarray(style.vessel_contrast, dtype=np.float32)
    img *= 1.0 - contrast[None, None, :] * dark[..., None]

    # gamma, field of view, blur, noise
    img = np.clip(img, 0.0, 1.0) ** np.float32(style.gamma)
    fov_soft = _fov_mask(geom, soft=True)[..., None]
    img = img * fov_soft + np.float32(style.outside_level) * (1.0 - fov_soft)
    sigma = style.blur_sigma * drive_scale
    if sigma > 0.05:
        img = gaussian(img, sigma=sigma, channel_axis=-1, preserve_range=True, mode="nearest")
    img = img + rng.normal(0.0, style.noise_sigma * drive_scale, size=img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    return img, label


def _check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"phantom size must be integers >= {MIN_SIZE}, got height={height!r} width={width!r}")


def generate_phantom(
    seed: int, height: int, width: int, style: PhantomStyle | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate one fundus-like phantom.

    Returns ``(rgb, label, fov)``: float32 RGB (H, W, 3) in [0, 1], the boolean vessel label
    (H, W) and the boolean circular field of view (H, W). The label lies inside the FOV. With
    ``style=None`` a random style is drawn from the seed (:meth:`PhantomStyle.random`); the
    geometry depends only on ``seed`` and the size, never on the style.
    """
    _check_size(height, width)
    seed = int(seed)
    geom = _build_geometry(seed, int(height), int(width))
    if style is None:
        style = PhantomStyle.random(np.random.default_rng([seed, _STYLE]))
    fov = _fov_mask(geom)
    rgb, label = _render_image(geom, style, np.random.default_rng([seed, _NOISE]), np.random.default_rng([seed, _DETAIL]))
    return rgb, label & fov, fov


def second_observer_label(seed: int, height: int, width: int) -> np.ndarray:
    """A plausible second manual segmentation of the phantom drawn from ``seed``.

    Same vessel tree, annotated differently: some of the thinnest terminal vessels are missed
    or stopped short, and vessel widths differ by about one pixel along stretches of vessels.
    Deterministic in ``seed``.
    """
    _check_size(height, width)
    seed = int(seed)
    geom = _build_geometry(seed, int(height), int(width))
    rng = np.random.default_rng([seed, _OBSERVER])
    stretch = max(4.0, 0.1 * geom.fov_radius)
    thin = max(_R_MIN * 1.01, 0.3 * geom.trunk_radius)
    vessels = []
    for points, radii in geom.vessels:
        # thin ends: often missed entirely or stopped short
        below = np.flatnonzero(radii <= thin)
        if len(below) and rng.random() < 0.45:
            start = int(below[0])
            keep = start + int((len(points) - start) * rng.uniform(0.0, 0.8))
            if keep < 2:
                continue
            points, radii = points[:keep], radii[:keep]
        # widths differ by about a pixel along stretches of the vessel
        seglen = np.r_[0.0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
        chunk = (seglen // stretch).astype(int)
        deltas = rng.choice([-0.5, 0.0, 0.5], size=chunk.max() + 1, p=[0.25, 0.55, 0.2])
        new_radii = np.maximum(_R_MIN, radii + deltas[chunk])
        vessels.append((points, new_radii))
    geom.vessels = vessels
    return _render_label(geom) & _fov_mask(geom)
