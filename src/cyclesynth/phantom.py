"""Built-in default dataset: synthetic fundus-like images with exact vessel labels.

Nothing is downloaded. Each phantom is drawn from one integer seed:

* geometry: a circular field of view (FOV) on black, an optic disc left or right of the
  centre, a fovea on the other side, and a vessel tree of 2 to 4 trunks that leave the disc
  (two temporal arcades curving around the fovea, up to two nasal trunks), branch
  recursively with daughter radii following Murray's law (``r0**3 = r1**3 + r2**3``) and
  Murray's optimal branching angles, taper, wander (smoothly varying direction) and end at the
  FOV border, after thinning to one pixel, or (thin ones, mostly) just short of a vessel
  they run into. A coarse density map steers branches into empty regions. The tree grows
  thickest vessels first until the vessel fraction inside the FOV reaches a drawn target
  (9 to 14 %; DRIVE has about 12 %).
* label: the exact footprint of the rendered tubes (pixel centres within a vessel's radius
  of its centre line; widths are at least one pixel), clipped to the FOV. The image's
  anti-aliased vessel opacity is >= 0.5 exactly on the label.
* appearance (:class:`PhantomStyle`): background colour with low-frequency texture and a
  per-image amount of fine texture, illumination gradient, vignetting, a darker macula, a
  bright optic disc, vessels darkening mostly green and blue (optional central reflex),
  gamma, blur and Gaussian noise. Noise, fine texture and vessel contrast are drawn from
  ranges measured on DRIVE at the phantom's size (``scripts/phantom_realism.py``, README).

:func:`write_phantom_dataset` writes a dataset in DRIVE's layout and file formats, including
a plausible "second observer" for the test images (:func:`second_observer_label`).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.filters import gaussian

from .images import atomic_path

__all__ = [
    "PhantomStyle",
    "generate_phantom",
    "phantom_style",
    "second_observer_label",
    "image_seed",
    "write_phantom_dataset",
    "MIN_SIZE",
]

#: Smallest height or width the generator accepts.
MIN_SIZE = 32

# Streams of the per-image random generator: geometry, style, appearance noise, 2nd observer,
# fine background texture.
_GEOMETRY, _STYLE, _NOISE, _OBSERVER, _DETAIL = 0, 1, 2, 3, 4

_R_MIN = 0.55  # smallest vessel radius in pixels: width >= 1 px, 8-connected centre lines


# --------------------------------------------------------------------------------------------
# Appearance
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


@dataclass
class _Geometry:
    height: int
    width: int
    centre: tuple[float, float]  # (y, x) of the FOV circle
    fov_radius: float
    disc_centre: tuple[float, float]
    disc_radius: float
    fovea: tuple[float, float]
    trunk_radius: float
    vessels: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (points (n,2), radii (n,))

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Concatenate every vessel's consecutive points into segments (a, b, ra, rb)."""
        a, b, ra, rb = [], [], [], []
        for points, radii in self.vessels:
            if len(points) < 2:
                continue
            a.append(points[:-1])
            b.append(points[1:])
            ra.append(radii[:-1])
            rb.append(radii[1:])
        if not a:
            empty = np.zeros((0, 2))
            return empty, empty, np.zeros(0), np.zeros(0)
        return np.concatenate(a), np.concatenate(b), np.concatenate(ra), np.concatenate(rb)


def _fov_mask(geom: _Geometry, soft: bool = False) -> np.ndarray:
    yy, xx = np.ogrid[: geom.height, : geom.width]
    dist = np.hypot(yy - geom.centre[0], xx - geom.centre[1])
    if soft:  # anti-aliased edge, about one pixel wide
        return np.clip(geom.fov_radius - dist + 0.5, 0.0, 1.0).astype(np.float32)
    return dist <= geom.fov_radius


def _angdiff(target: float, theta: float) -> float:
    return (target - theta + math.pi) % (2.0 * math.pi) - math.pi


class _TreeGrower:
    """Grows the vessel tree vessel by vessel, thickest pending vessel first.

    A coarse density grid of the vessels traced so far steers branches towards empty regions
    and stops thin vessels that run into crowded ones, so the tree fills the field of view
    without a mesh of crossings.
    """

    def __init__(self, rng: np.random.Generator, geom: _Geometry, target: float):
        self.rng = rng
        self.g = geom
        R = geom.fov_radius
        self.R = R
        self.target = target
        self.step = float(np.clip(0.012 * R, 0.8, 3.0))
        self.tortuosity = rng.uniform(1.5, 3.5)  # rad per FOV radius, std of the turning rate
        self.corr_length = rng.uniform(0.08, 0.15) * R
        self.branch_spacing = (rng.uniform(0.1, 0.15) * R + 3.0, rng.uniform(0.25, 0.35) * R + 6.0)
        self.taper = rng.uniform(0.03, 0.12)  # relative radius loss per FOV radius of length
        self.heap: list = []
        self.counter = 0
        self.area = 0.0
        self.cell = max(4.0, 0.08 * R)
        shape = (int(geom.height / self.cell) + 3, int(geom.width / self.cell) + 3)
        # vessel area per cell summed over the 3x3 neighbourhood, padded by one cell each side
        self.occupancy = np.zeros(shape)
        self.norm = 1.0 / (9.0 * self.cell * self.cell * target)
        self.lines = np.zeros((geom.height, geom.width), dtype=bool)  # centre lines traced so far

    # -- bookkeeping --------------------------------------------------------------------
    def push(self, point, theta: float, radius: float, kind: str = "branch", arc: dict | None = None) -> None:
        self.counter += 1
        item = (-radius, self.counter, (float(point[0]), float(point[1])), float(theta), float(radius), kind, arc)
        heapq.heappush(self.heap, item)

    def _index(self, y: float, x: float) -> tuple[int, int]:
        i = min(max(int(y / self.cell) + 1, 1), self.occupancy.shape[0] - 2)
        j = min(max(int(x / self.cell) + 1, 1), self.occupancy.shape[1] - 2)
        return i, j

    def density(self, y: float, x: float, walls: bool = False) -> float:
        """Vessel area fraction around (y, x) in units of the target fraction. The fovea, and
        with ``walls`` the outside of the FOV, count as crowded."""
        fy, fx = self.g.fovea
        if math.hypot(y - fy, x - fx) < 0.15 * self.R:
            return 4.0
        if walls:
            cy, cx = self.g.centre
            if math.hypot(y - cy, x - cx) > self.R * 0.97:
                return 4.0
        return float(self.occupancy[self._index(y, x)]) * self.norm

    def hits(self, y: float, x: float, half: int) -> bool:
        """Whether a centre line of an earlier vessel passes within ``half`` px of (y, x)."""
        i, j = int(round(y)), int(round(x))
        window = self.lines[max(i - half, 0) : i + half + 1, max(j - half, 0) : j + half + 1]
        return bool(window.any())

    def _tail_length(self) -> float:
        """Length a vessel runs on once it has thinned to the minimum width."""
        return self.rng.uniform(0.06, 0.3) * self.R + self.rng.uniform(2.0, 6.0)

    def _inside(self, y: float, x: float, margin: float) -> bool:
        cy, cx = self.g.centre
        return math.hypot(y - cy, x - cx) <= self.R + margin

    # -- growth --------------------------------------------------------------------------
    def grow(self, area_budget: float) -> None:
        while self.heap and self.area < area_budget:
            _, _, point, theta, radius, kind, arc = heapq.heappop(self.heap)
            self._trace(point, theta, radius, kind, arc, area_budget)

    def _trace(self, point, theta, radius, kind, arc, area_budget) -> None:
        rng, R, step = self.rng, self.R, self.step
        y, x = point
        points = [(y, x)]
        radii = [radius]
        deposits = []
        omega = 0.0
        rho = math.exp(-step / self.corr_length)
        sigma = self.tortuosity * math.sqrt(1.0 - rho * rho)
        next_branch = rng.uniform(*self.branch_spacing) * (0.6 if kind == "branch" else 0.4)
        since_branch = 0.0
        tail = self._tail_length() if radius <= _R_MIN * 1.01 else None
        length = 0.0
        max_length = 2.5 * R
        dy_od, dx_od = self.g.disc_centre
        fy, fx = self.g.fovea
        swept = 0.0
        prev_phi = math.atan2(y - fy, x - fx)
        probe = 0.1 * R
        heading = theta
        while length < max_length and self.area < area_budget:
            # turning: smooth random wander plus field-dependent steering
            omega = rho * omega + sigma * rng.standard_normal()
            # wide vessels wander less than thin ones
            turn = omega * step / R * (1.0 - 0.5 * min(1.0, radius / self.g.trunk_radius))
            on_arc = kind == "arcade" and swept < arc["sweep"]
            if on_arc:
                # follow an ellipse around the fovea through the disc
                ny, nx = (y - fy) / arc["ay"], (x - fx) / arc["ax"]
                d = math.hypot(ny, nx) + 1e-9
                ty, tx = arc["sign"] * nx * arc["ay"], -arc["sign"] * ny * arc["ax"]
                tn = math.hypot(ty, tx) + 1e-9
                gy, gx = ny / arc["ay"], nx / arc["ax"]
                gn = math.hypot(gy, gx) + 1e-9
                pull = 2.0 * (d - 1.0)
                vy, vx = ty / tn - pull * gy / gn, tx / tn - pull * gx / gn
                turn += 6.0 * _angdiff(math.atan2(vy, vx), theta) * step / R
            elif kind == "arcade":
                # past the fovea: head for the temporal border, away from the horizontal raphe
                drift = _angdiff(theta, arc["exit"])
                turn -= 2.0 * drift * step / R
                if abs(drift) > 1.0:
                    turn -= 4.0 * (drift - math.copysign(1.0, drift)) * step / R
            else:
                # drift away from the optic disc, away from the fovea when close, and
                # towards the less crowded side; never turn far from the initial heading
                away = math.atan2(y - dy_od, x - dx_od)
                turn += 0.6 * _angdiff(away, theta) * step / R
                drift = _angdiff(theta, heading)
                if abs(drift) > 1.0:
                    turn -= 4.0 * (drift - math.copysign(1.0, drift)) * step / R
                dfov = math.hypot(y - fy, x - fx)
                if dfov < 0.25 * R:
                    turn += 4.0 * _angdiff(math.atan2(y - fy, x - fx), theta) * step / R
                if length > 0.05 * R and radius < 2.0:
                    minus = self.density(y + probe * math.sin(theta - 0.6), x + probe * math.cos(theta - 0.6))
                    plus = self.density(y + probe * math.sin(theta + 0.6), x + probe * math.cos(theta + 0.6))
                    turn += 2.5 * max(-1.5, min(1.5, minus - plus)) * step / R
            theta += turn
            y += step * math.sin(theta)
            x += step * math.cos(theta)
            length += step
            since_branch += step
            phi = math.atan2(y - fy, x - fx)
            swept += abs(_angdiff(phi, prev_phi))
            prev_phi = phi
            radius = max(_R_MIN, radius * math.exp(-self.taper * step / R))
            if not self._inside(y, x, margin=2.0 + radius):
                points.append((y, x))
                radii.append(radius)
                break
            if self._inside(y, x, margin=-radius):
                self.area += 2.0 * radius * step
            deposits.append((self._index(y, x), 2.0 * radius * step))
            # thin vessels mostly end just short of a vessel they run into instead of crossing it
            if kind == "branch" and radius < 1.0 and length > 4.0 * self.g.trunk_radius + 3.0:
                ahead = radius + 2.0 + 0.015 * R
                py, px = y + ahead * math.sin(theta), x + ahead * math.cos(theta)
                if self.hits(py, px, int(math.ceil(radius + 0.5 * step + 1.0))) and rng.random() < 0.6:
                    points.append((y, x))
                    radii.append(radius)
                    break
            # thin vessels stop when they run into a crowded region
            if kind == "branch" and radius < 1.2 and length > 0.1 * R and self.density(y, x) > 1.7:
                if rng.random() < 0.25:
                    points.append((y, x))
                    radii.append(radius)
                    break
            # bifurcation (Murray's law for radii and angles)
            if since_branch >= next_branch and radius > _R_MIN * 1.05:
                since_branch = 0.0
                next_branch = rng.uniform(*self.branch_spacing)
                u = rng.random()
                if u < 0.55:  # a small side twig; the parent keeps nearly its width
                    alpha = rng.uniform(0.2, 0.45)
                elif u < 0.85 or on_arc:
                    alpha = rng.uniform(0.5, 0.85)
                else:  # a nearly symmetric bifurcation
                    alpha = rng.uniform(0.85, 1.0)
                r1 = radius / (1.0 + alpha**3) ** (1.0 / 3.0)
                r2 = alpha * r1
                c1 = (radius**4 + r1**4 - r2**4) / (2.0 * radius**2 * r1**2)
                c2 = (radius**4 + r2**4 - r1**4) / (2.0 * radius**2 * r2**2)
                a1 = math.acos(float(np.clip(c1, -1.0, 1.0))) * rng.uniform(0.8, 1.2)
                a2 = math.acos(float(np.clip(c2, -1.0, 1.0))) * rng.uniform(0.8, 1.2)
                a2 = min(max(a2, 0.35), 1.75)
                # daughter to the less crowded side (mostly)
                crowd = [
                    self.density(
                        y + 1.5 * probe * math.sin(theta + s * a2), x + 1.5 * probe * math.cos(theta + s * a2), walls=True
                    )
                    for s in (1.0, -1.0)
                ]
                side = 1.0 if crowd[0] <= crowd[1] else -1.0
                if rng.random() < 0.15:
                    side = -side
                self.push((y, x), theta + side * a2, max(r2, _R_MIN))
                radius = max(r1, _R_MIN)
                if not on_arc:  # an arcade keeps its course
                    theta -= side * a1
            points.append((y, x))
            radii.append(radius)
            if radius <= _R_MIN * 1.01:
                if tail is None:
                    tail = self._tail_length()
                tail -= step
                if tail <= 0:
                    break
        if deposits:
            index = np.asarray([d[0] for d in deposits])
            area = np.asarray([d[1] for d in deposits])
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    np.add.at(self.occupancy, (index[:, 0] + di, index[:, 1] + dj), area)
        line = np.rint(np.asarray(points)).astype(np.int64)
        ok = (line[:, 0] >= 0) & (line[:, 0] < self.g.height) & (line[:, 1] >= 0) & (line[:, 1] < self.g.width)
        self.lines[line[ok, 0], line[ok, 1]] = True
        if len(points) >= 2:
            self.g.vessels.append((np.asarray(points, dtype=np.float64), np.asarray(radii, dtype=np.float64)))

    def sprout(self, count: int) -> None:
        """Start extra thin branches from points of existing vessels, towards empty regions."""
        rng, probe = self.rng, 0.15 * self.R
        vessels = [(p, r) for p, r in self.g.vessels if len(p) >= 3]
        if not vessels or count <= 0:
            return
        points = np.concatenate([p[1:-1] for p, _ in vessels])
        tangents = np.concatenate([p[2:] - p[:-2] for p, _ in vessels])
        radii = np.concatenate([r[1:-1] for _, r in vessels])
        candidates = 8
        pick = rng.integers(len(points), size=(count, candidates))
        theta = np.arctan2(tangents[pick, 0], tangents[pick, 1]) + rng.choice([-1.0, 1.0], size=pick.shape) * rng.uniform(
            0.6, 1.4, size=pick.shape
        )
        scale = rng.uniform(0.4, 0.7, size=count)
        for n in range(count):
            crowd = [
                self.density(
                    points[pick[n, k], 0] + probe * math.sin(theta[n, k]),
                    points[pick[n, k], 1] + probe * math.cos(theta[n, k]),
                    walls=True,
                )
                for k in range(candidates)
            ]
            k = int(np.argmin(crowd))
            self.push(points[pick[n, k]], theta[n, k], max(_R_MIN, radii[pick[n, k]] * scale[n]))


def _build_geometry(seed: int, height: int, width: int) -> _Geometry:
    rng = np.random.default_rng([seed, _GEOMETRY])
    short = min(height, width)
    R = short * rng.uniform(0.44, 0.48)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    side = rng.choice([-1.0, 1.0])  # optic disc left (-1) or right (+1) of the centre
    disc = (cy + rng.uniform(-0.12, 0.12) * R, cx + side * rng.uniform(0.55, 0.72) * R)
    disc_radius = rng.uniform(0.12, 0.16) * R
    fovea = (disc[0] + rng.uniform(0.02, 0.12) * R, cx - side * rng.uniform(0.0, 0.12) * R)
    trunk_radius = max(2.0, 0.012 * short) / 2.0 * rng.uniform(0.95, 1.15)
    geom = _Geometry(height, width, (cy, cx), R, disc, disc_radius, fovea, trunk_radius)

    target = rng.uniform(0.09, 0.14)  # vessel fraction inside the FOV
    grower = _TreeGrower(rng, geom, target)
    fy, fx = fovea
    uy, ux = disc[0] - fy, disc[1] - fx
    for superior in (True, False):
        sign = 1.0
        if (ux < 0) != superior:  # tangent (sign*ux, -sign*uy) must point up for the superior arcade
            sign = -1.0
        ty, tx = sign * ux, -sign * uy
        theta = math.atan2(ty, tx) + rng.uniform(-0.3, 0.3)
        arc = {
            "sign": sign,
            "ax": max(abs(ux), 0.3 * R),
            "ay": rng.uniform(0.35, 0.5) * R,
            "sweep": rng.uniform(1.6, 2.2),
            # direction after the sweep: temporal, 10-35 degrees away from the horizontal
            "exit": math.atan2((-1.0 if superior else 1.0) * math.sin(rng.uniform(0.17, 0.6)), -side),
        }
        start = disc
        grower.push(start, theta, trunk_radius * rng.uniform(0.9, 1.0), "arcade", arc)
    for _ in range(int(rng.integers(0, 3))):
        up = rng.choice([-1.0, 1.0])
        angle = rng.uniform(0.9, 1.45)
        theta = math.atan2(up * math.sin(angle), side * math.cos(angle))
        grower.push(disc, theta, trunk_radius * rng.uniform(0.55, 0.8), "nasal")

    fov = _fov_mask(geom)
    fov_area = float(fov.sum())
    budget = target * fov_area
    for _ in range(10):
        grower.grow(budget)
        fraction = float((_render_label(geom) & fov).sum()) / fov_area
        if fraction >= 0.93 * target:
            break
        if not grower.heap:  # the tree is complete: add twigs towards empty regions
            missing = (target - fraction) * fov_area
            grower.sprout(int(np.clip(missing / (0.25 * R), 8, 400)))
        # rendered area per estimated area (< 1: overlaps, clipping)
        efficiency = min(1.0, max(0.3, fraction * fov_area / max(grower.area, 1.0)))
        budget = grower.area + 1.05 * (target - fraction) * fov_area / efficiency
    return geom


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _coverage(geom: _Geometry, radius_scale=None) -> tuple[np.ndarray, np.ndarray]:
    """Signed coverage ``max_s (r_s - d_s)`` over all segments and the radius of the winner.

    A pixel centre lies inside a vessel when the coverage is >= 0. Pixels farther than about
    one pixel from every vessel keep -inf.
    """
    h, w = geom.height, geom.width
    a, b, ra, rb = geom.segments()
    cover = np.full(h * w, -np.inf)
    rmap = np.zeros(h * w)
    if len(a) == 0:
        return cover.reshape(h, w), rmap.reshape(h, w)
    rmax = np.maximum(ra, rb)
    lo = np.floor(np.minimum(a, b) - rmax[:, None] - 1.0).astype(np.int64)
    hi = np.ceil(np.maximum(a, b) + rmax[:, None] + 1.0).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [h - 1, w - 1])
    sizes = np.maximum(hi - lo + 1, 0)
    counts = sizes[:, 0] * sizes[:, 1]
    keep = counts > 0
    a, b, ra, rb, lo, sizes, counts = a[keep], b[keep], ra[keep], rb[keep], lo[keep], sizes[keep], counts[keep]
    seg = np.repeat(np.arange(len(a)), counts)
    offsets = np.cumsum(counts) - counts
    local = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
    bw = sizes[seg, 1]
    py = lo[seg, 0] + local // bw
    px = lo[seg, 1] + local % bw
    ay, ax = a[seg, 0], a[seg, 1]
    vy, vx = b[seg, 0] - ay, b[seg, 1] - ax
    wy, wx = py - ay, px - ax
    vv = vy * vy + vx * vx
    t = np.clip((wy * vy + wx * vx) / np.maximum(vv, 1e-12), 0.0, 1.0)
    dist = np.hypot(wy - t * vy, wx - t * vx)
    r = ra[seg] + t * (rb[seg] - ra[seg])
    value = r - dist
    flat = py * w + px
    np.maximum.at(cover, flat, value)
    winner = value >= cover[flat]
    rmap[flat[winner]] = r[winner]
    return cover.reshape(h, w), rmap.reshape(h, w)


def _render_label(geom: _Geometry) -> np.ndarray:
    cover, _ = _coverage(geom)
    return cover >= 0.0


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


def phantom_style(seed: int) -> PhantomStyle:
    """The style :func:`generate_phantom` draws for ``seed`` when none is given."""
    return PhantomStyle.random(np.random.default_rng([int(seed), _STYLE]))


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


# --------------------------------------------------------------------------------------------
# Dataset in DRIVE's layout
# --------------------------------------------------------------------------------------------


def image_seed(seed: int, image_id: int) -> int:
    """Seed of image ``image_id`` in a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(image_id)]).generate_state(1, dtype=np.uint32)[0])


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_tiff(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(_to_uint8(rgb)).save(tmp, format="TIFF", compression="tiff_lzw")
        os.chmod(tmp, 0o644)


def _write_gif(path: Path, mask: np.ndarray) -> None:
    # optimize=False keeps the full grey palette, so the file decodes as greyscale ("L"),
    # like DRIVE's labels, rather than as a palette image converted to RGB
    with atomic_path(path) as tmp:
        Image.fromarray(_to_uint8(mask)).save(tmp, format="GIF", optimize=False)
        os.chmod(tmp, 0o644)


def write_phantom_image(
    root: str | os.PathLike, split: str, image_id: int, *, height: int, width: int, seed: int
) -> dict:
    """Write one phantom image's files in DRIVE's layout and naming; return its manifest entry.

    The image's own seed is :func:`image_seed` of (``seed``, ``image_id``), so each image is
    the same whichever others are generated beside it (the workflow makes one job per image).
    Test images also get a second observer's label.
    """
    if split not in ("training", "test"):
        raise ValueError(f"split must be 'training' or 'test', got {split!r}")
    _check_size(height, width)
    root = Path(root)
    image_id = int(image_id)
    s = image_seed(seed, image_id)
    style = phantom_style(s)
    rgb, label, fov = generate_phantom(s, height, width, style)
    stem = f"{image_id:02d}"
    entry = {"id": image_id, "split": split, "seed": s, "style": style.to_dict()}
    entry["image"] = f"{split}/images/{stem}_{split}.tif"
    entry["label"] = f"{split}/1st_manual/{stem}_manual1.gif"
    entry["mask"] = f"{split}/mask/{stem}_{split}_mask.gif"
    _write_tiff(root / entry["image"], rgb)
    _write_gif(root / entry["label"], label)
    _write_gif(root / entry["mask"], fov)
    if split == "test":
        entry["second_observer"] = f"{split}/2nd_manual/{stem}_manual2.gif"
        _write_gif(root / entry["second_observer"], second_observer_label(s, height, width))
    entry["vessel_fraction_in_fov"] = round(float(label.sum() / max(fov.sum(), 1)), 5)
    return entry


def write_phantom_dataset(
    root: str | os.PathLike, *, n_training: int, n_test: int, height: int, width: int, seed: int
) -> None:
    """Write a phantom dataset in DRIVE's layout and formats under ``root``.

    Test images get ids 1..n_test, training images n_test+1..n_test+n_training (DRIVE:
    01..20 and 21..40). Images are LZW-compressed 8-bit RGB TIFFs; labels, second-observer
    labels (test only) and FOV masks are single-frame 8-bit GIFs with values 0 and 255. Each
    image has its own seed (:func:`image_seed`) and its own random style. ``manifest.json``
    records the parameters, ids, seeds and styles.
    """
    for name, value in (("n_training", n_training), ("n_test", n_test)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if n_training + n_test == 0:
        raise ValueError("n_training and n_test are both 0: nothing to generate")
    _check_size(height, width)
    root = Path(root)
    plan = [("test", i) for i in range(1, n_test + 1)] + [
        ("training", i) for i in range(n_test + 1, n_test + n_training + 1)
    ]
    images = [write_phantom_image(root, split, image_id, height=height, width=width, seed=seed) for split, image_id in plan]
    manifest = {
        "generator": "cyclesynth.phantom",
        "layout": "DRIVE",
        "parameters": {
            "n_training": int(n_training),
            "n_test": int(n_test),
            "height": int(height),
            "width": int(width),
            "seed": int(seed),
        },
        "images": images,
    }
    with atomic_path(root / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o644)
