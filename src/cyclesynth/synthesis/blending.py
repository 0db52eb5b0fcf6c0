"""Blended stitching of overlapping tiles, and a measure of seams at tile borders.

The paper restyles the reference tile by tile on the plain 64/64 grid and stitches the tiles
side by side; each tile is translated on its own, so its colour and texture can jump at the
tile borders (seams). With ``synthesis.stride`` smaller than the patch size the tiles
overlap, and :func:`blend_patches` weights each tile by a smooth window that is largest at
the tile's centre and falls towards its border (a separable Hann window with a floor, so
that border pixels keep a small weight and pixels covered by one tile only are defined),
then divides by the summed weights. At every pixel the tiles' normalised weights sum to one,
so a constant image stays constant. With stride = size every pixel lies in exactly one tile
and :func:`blend_patches` gives back :func:`cyclesynth.data.patches.stitch_patches` bit for bit.

:func:`seam_ratio` measures seams: the mean absolute grey-level difference between
neighbouring pixels across tile borders, divided by the same mean over all other neighbours.
About 1 means no seams (the borders look like anywhere else); a stitched image with jumps at
the borders scores above 1.
"""

from __future__ import annotations

import numpy as np

from cyclesynth.data.patches import PatchGrid, stitch_patches

#: Smallest window weight relative to the centre's (the tile's outermost pixels).
WINDOW_FLOOR = 0.01


def window_1d(size: int, floor: float = WINDOW_FLOOR) -> np.ndarray:
    """Hann window over ``size`` pixel centres, scaled to [floor, 1] (float64)."""
    if size < 1:
        raise ValueError(f"window size must be positive, got {size}")
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"window floor must lie in (0, 1], got {floor}")
    hann = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return floor + (1.0 - floor) * hann


def window_2d(size: int, floor: float = WINDOW_FLOOR) -> np.ndarray:
    """Separable window (size, size): the outer product of two :func:`window_1d`."""
    w = window_1d(size, floor)
    return np.outer(w, w)


def weight_sum(grid: PatchGrid, floor: float = WINDOW_FLOOR) -> np.ndarray:
    """Summed window weights of every tile over the padded grid, shape ``grid.padded_shape``."""
    total = np.zeros(grid.padded_shape, dtype=np.float64)
    window = window_2d(grid.size, floor)
    s = grid.size
    for r, c in grid.origins():
        total[r : r + s, c : c + s] += window
    return total


def blend_patches(patches: np.ndarray, grid: PatchGrid, floor: float = WINDOW_FLOOR) -> np.ndarray:
    """Stitch (N, size, size[, C]) tiles into the image, blending overlaps with the window.

    stride = size: :func:`stitch_patches` itself (no overlap, so no weights are needed, and
    the result is today's grid image bit for bit).
    """
    if grid.stride >= grid.size:
        return stitch_patches(patches, grid)
    if len(patches) != len(grid):
        raise ValueError(f"expected {len(grid)} patches for the grid, got {len(patches)}")
    trailing = patches.shape[3:]
    window = window_2d(grid.size, floor).reshape((grid.size, grid.size) + (1,) * len(trailing))
    total = np.zeros(grid.padded_shape + trailing, dtype=np.float64)
    s = grid.size
    for patch, (r, c) in zip(patches, grid.origins()):
        total[r : r + s, c : c + s] += window * patch
    weights = weight_sum(grid, floor).reshape(grid.padded_shape + (1,) * len(trailing))
    out = (total / weights)[: grid.height, : grid.width]
    dtype = patches.dtype if np.issubdtype(patches.dtype, np.floating) else np.float32
    return out.astype(dtype)


def tile_borders(length: int, size: int, stride: int) -> np.ndarray:
    """Positions p (0 < p < length) where a tile of the grid starts or ends along one axis:
    the difference between pixels p - 1 and p crosses a tile border."""
    starts = np.arange(PatchGrid._steps(length, size, stride)) * stride  # the grid's own rule
    edges = np.concatenate([starts, starts + size])
    return np.unique(edges[(edges > 0) & (edges < length)])


def grey(image: np.ndarray) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) as float64 grey levels (the mean over its channels)."""
    image = np.asarray(image, dtype=np.float64)
    return image.mean(axis=2) if image.ndim == 3 else image


def seam_ratio(
    image: np.ndarray, size: int, stride: int, region: np.ndarray | None = None
) -> float:
    """Mean |grey-level difference| of neighbours across tile borders / that elsewhere.

    ``image`` (H, W) or (H, W, C); grey = mean over channels. Differences are taken between
    horizontal and vertical neighbours; with ``region`` only pairs with both pixels in it
    count. The borders are those of the grid of ``size`` tiles at ``stride`` from the top
    left (:func:`tile_borders`). NaN when either set of differences is empty or the
    elsewhere mean is 0.
    """
    levels = grey(image)
    h, w = levels.shape
    inside = np.ones((h, w), dtype=bool) if region is None else np.asarray(region, dtype=bool)
    across, elsewhere = [], []
    for axis, length in ((0, h), (1, w)):
        diff = np.abs(np.diff(levels, axis=axis))
        both = inside[1:, :] & inside[:-1, :] if axis == 0 else inside[:, 1:] & inside[:, :-1]
        at_border = np.zeros(length - 1, dtype=bool)
        at_border[tile_borders(length, size, stride) - 1] = True
        border = at_border[:, None] if axis == 0 else at_border[None, :]
        border = np.broadcast_to(border, diff.shape)
        across.append(diff[border & both])
        elsewhere.append(diff[~border & both])
    across_values, elsewhere_values = np.concatenate(across), np.concatenate(elsewhere)
    if across_values.size == 0 or elsewhere_values.size == 0:
        return float("nan")
    reference = float(elsewhere_values.mean())
    return float(across_values.mean() / reference) if reference > 0 else float("nan")
