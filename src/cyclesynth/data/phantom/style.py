"""A phantom's appearance (:class:`PhantomStyle`: what differs between cameras and visits) and
the streams of the per-image random generator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


# Streams of the per-image random generator: geometry, style, appearance noise, 2nd observer,
# fine background texture.
_GEOMETRY, _STYLE, _NOISE, _OBSERVER, _DETAIL = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class PhantomStyle:
    """Per-image appearance of a phantom (what differs between cameras and visits).

    Colours are linear values in [0, 1] before gamma. ``vessel_contrast`` is the fraction by
    which a fully dark vessel attenuates each channel (R, G, B); all three are in [0, 1) and
    the green one is positive, so vessels are always darker than their surroundings.
    """

    background_rgb: tuple[float, float, float] = (0.80, 0.42, 0.22)
    vessel_contrast: tuple[float, float, float] = (0.08, 0.32, 0.22)
    gamma: float = 1.0
    illumination_angle: float = 0.0  # radians; direction in which the image gets brighter
    illumination_strength: float = 0.15  # relative brightness change from centre to FOV edge
    vignetting: float = 0.3  # relative darkening at the FOV border
    blur_sigma: float = 0.6  # pixels at DRIVE's size (565 px short side), scaled down for smaller images
    noise_sigma: float = 0.01  # std of additive Gaussian noise at DRIVE's size, scaled down with the pixel count per side
    texture_strength: float = 0.05  # relative amplitude of low-frequency background texture
    optic_disc_brightness: float = 0.5  # blend of the disc towards its pale yellow colour
    macula_darkening: float = 0.12  # relative darkening at the fovea
    central_reflex: float = 0.0  # brightening along the centre of wide vessels
    outside_level: float = 0.02  # grey level outside the FOV (near black)
    detail_texture: float = 0.0  # relative amplitude of fine background texture (a few px at DRIVE's size)

    def __post_init__(self) -> None:
        for name in ("background_rgb", "vessel_contrast"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ValueError(f"PhantomStyle.{name}: expected 3 values, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if not all(0.0 < v <= 1.0 for v in self.background_rgb):
            raise ValueError(f"PhantomStyle.background_rgb must lie in (0, 1], got {self.background_rgb}")
        if not all(0.0 <= v < 1.0 for v in self.vessel_contrast) or self.vessel_contrast[1] <= 0.0:
            raise ValueError(
                "PhantomStyle.vessel_contrast must lie in [0, 1) with a positive green value "
                f"(vessels darker than background), got {self.vessel_contrast}"
            )
        checks = {
            "gamma": self.gamma > 0,
            "illumination_strength": 0 <= self.illumination_strength < 1,
            "vignetting": 0 <= self.vignetting < 1,
            "blur_sigma": self.blur_sigma >= 0,
            "noise_sigma": self.noise_sigma >= 0,
            "texture_strength": 0 <= self.texture_strength < 0.5,
            "optic_disc_brightness": 0 <= self.optic_disc_brightness <= 1,
            "macula_darkening": 0 <= self.macula_darkening < 1,
            "central_reflex": 0 <= self.central_reflex < 1,
            "outside_level": 0 <= self.outside_level <= 0.2,
            "detail_texture": 0 <= self.detail_texture < 0.5,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"PhantomStyle.{name} out of range: {getattr(self, name)!r}")

    @classmethod
    def random(cls, rng: np.random.Generator) -> "PhantomStyle":
        """Draw a style from wide ranges: reddish-orange to yellowish, dim to bright, sharp to
        blurred, clean to noisy; vessel contrast always positive (vessels darker)."""
        red = rng.uniform(0.55, 0.97)
        green = red * rng.uniform(0.32, 0.68)
        blue = green * rng.uniform(0.25, 0.80)
        green_contrast = rng.uniform(0.2, 0.4)
        return cls(
            background_rgb=(red, green, blue),
            vessel_contrast=(green_contrast * rng.uniform(0.15, 0.45), green_contrast, green_contrast * rng.uniform(0.6, 1.0)),
            gamma=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
            illumination_angle=rng.uniform(0.0, 2.0 * np.pi),
            illumination_strength=rng.uniform(0.0, 0.35),
            vignetting=rng.uniform(0.05, 0.45),
            blur_sigma=rng.uniform(0.25, 1.1),
            noise_sigma=rng.uniform(0.002, 0.014),
            texture_strength=rng.uniform(0.02, 0.14),
            optic_disc_brightness=rng.uniform(0.30, 0.80),
            macula_darkening=rng.uniform(0.0, 0.2),
            central_reflex=rng.uniform(0.0, 0.35),
            outside_level=rng.uniform(0.0, 0.035),
            detail_texture=rng.uniform(0.0, 0.025),  # drawn last: the draws above are unchanged
        )

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dictionary of the fields."""
        return {k: (list(v) if isinstance(v, tuple) else float(v)) for k, v in dataclasses.asdict(self).items()}


def phantom_style(seed: int) -> PhantomStyle:
    """The style :func:`generate_phantom` draws for ``seed`` when none is given."""
    return PhantomStyle.random(np.random.default_rng([int(seed), _STYLE]))
