"""Regular patch grid: cutting images into patches and stitching them back.

Rule for sizes not divisible by the patch size: the image is padded at the bottom and right
(by reflection) until the grid of ``size``-sized patches at ``stride`` covers it exactly; the
padding is cropped off again when stitching. With ``stride == size`` (the paper's 64/64) the
patches tile the padded image without overlap and stitching is the exact inverse of cutting;
with a smaller stride, overlapping pixels are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatchGrid:
    """Where the patches of one image lie."""

    height: int
    width: int
    size: int
    stride: int

    def __post_init__(self):
        if self.size <= 0 or self.stride <= 0:
            raise ValueError(f"patch size and stride must be positive (got {self.size}, {self.stride})")
        if self.stride > self.size:
            raise ValueError(f"patch stride {self.stride} exceeds patch size {self.size}: pixels would be skipped")
        if self.size > min(self.height, self.width):
            raise ValueError(
                f"patch size {self.size} is larger than the image ({self.height}x{self.width})"
            )

    @staticmethod
    def _steps(length: int, size: int, stride: int) -> int:
        return int(np.ceil(max(length - size, 0) / stride)) + 1

    @property
    def rows(self) -> int:
        return self._steps(self.height, self.size, self.stride)

    @property
    def cols(self) -> int:
        return self._steps(self.width, self.size, self.stride)

    @property
    def padded_shape(self) -> tuple[int, int]:
        return (
            (self.rows - 1) * self.stride + self.size,
            (self.cols - 1) * self.stride + self.size,
        )

    def __len__(self) -> int:
        return self.rows * self.cols

    def origins(self) -> list[tuple[int, int]]:
        """Top-left corner of every patch, row-major."""
        return [(r * self.stride, c * self.stride) for r in range(self.rows) for c in range(self.cols)]


def grid_for(image: np.ndarray, size: int, stride: int) -> PatchGrid:
    return PatchGrid(image.shape[0], image.shape[1], size, stride)


def pad_to_grid(image: np.ndarray, grid: PatchGrid) -> np.ndarray:
    ph, pw = grid.padded_shape
    pad = [(0, ph - grid.height), (0, pw - grid.width)] + [(0, 0)] * (image.ndim - 2)
    if ph == grid.height and pw == grid.width:
        return image
    mode = "reflect" if min(grid.height, grid.width) > 1 else "edge"
    return np.pad(image, pad, mode=mode)


def extract_patches(image: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, PatchGrid]:
    """Cut ``image`` (H, W) or (H, W, C) into patches, shape (N, size, size[, C])."""
    grid = grid_for(image, size, stride)
    padded = pad_to_grid(image, grid)
    patches = np.stack([padded[r : r + size, c : c + size] for r, c in grid.origins()])
    return patches, grid


def stitch_patches(patches: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Inverse of :func:`extract_patches`: place patches on the grid, average overlaps, crop."""
    if len(patches) != len(grid):
        raise ValueError(f"expected {len(grid)} patches for the grid, got {len(patches)}")
    ph, pw = grid.padded_shape
    trailing = patches.shape[3:]
    total = np.zeros((ph, pw) + trailing, dtype=np.float64)
    count = np.zeros((ph, pw) + (1,) * len(trailing), dtype=np.float64)
    s = grid.size
    for patch, (r, c) in zip(patches, grid.origins()):
        total[r : r + s, c : c + s] += patch
        count[r : r + s, c : c + s] += 1
    out = (total / count)[: grid.height, : grid.width]
    if patches.dtype == bool:
        return out >= 0.5
    return out.astype(patches.dtype if np.issubdtype(patches.dtype, np.floating) else np.float32)
