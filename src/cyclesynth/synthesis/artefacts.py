"""Measures of restyling artefacts beside the seam ratio (:func:`blending.seam_ratio`).

:func:`checkerboard_ratio`: the mean absolute response of the grey image to the 2x2 filter
[[1, -1], [-1, 1]] within a region, divided by the same for a reference image (about 1: no
more checkerboard texture than the photograph; the transposed convolutions of the original
generator leave more). :func:`colour_distance`: the Euclidean distance between the mean RGB
colours (in [0, 1]) of two images, each within its own region: how far the restyling moved
the reference's colour towards the image it restyles into.
"""

from __future__ import annotations

import numpy as np

from cyclesynth.synthesis.blending import grey

__all__ = ["checkerboard_response", "checkerboard_ratio", "colour_distance"]


def _region(shape, region) -> np.ndarray:
    return np.ones(shape, dtype=bool) if region is None else np.asarray(region, dtype=bool)


def checkerboard_response(image: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean |a - b - c + d| over the 2x2 blocks (at every offset) inside ``region``."""
    levels = grey(image)
    inside = _region(levels.shape, region)
    response = np.abs(levels[:-1, :-1] - levels[:-1, 1:] - levels[1:, :-1] + levels[1:, 1:])
    both = inside[:-1, :-1] & inside[:-1, 1:] & inside[1:, :-1] & inside[1:, 1:]
    return float(response[both].mean()) if both.any() else float("nan")


def checkerboard_ratio(image: np.ndarray, reference: np.ndarray, region: np.ndarray | None = None) -> float:
    """:func:`checkerboard_response` of ``image`` over that of ``reference`` (same region)."""
    base = checkerboard_response(reference, region)
    return checkerboard_response(image, region) / base if base > 0 else float("nan")


def colour_distance(a: np.ndarray, b: np.ndarray, region_a=None, region_b=None) -> float:
    """Distance between the mean RGB of ``a`` in ``region_a`` and of ``b`` in ``region_b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean_a = a[_region(a.shape[:2], region_a)].mean(axis=0)
    mean_b = b[_region(b.shape[:2], region_b)].mean(axis=0)
    return float(np.linalg.norm(mean_a - mean_b))
