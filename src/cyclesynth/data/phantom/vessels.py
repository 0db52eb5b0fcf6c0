"""A phantom's geometry: the circular field of view, optic disc, fovea and the vessel tree that
grows from the disc (:class:`_TreeGrower`: Murray's law, branching, tapering, wandering), and
the tree's exact footprint (:func:`_render_label`), which also stops the growth."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from cyclesynth.data.phantom.style import _GEOMETRY

_R_MIN = 0.55  # smallest vessel radius in pixels: width >= 1 px, 8-connected centre lines


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
