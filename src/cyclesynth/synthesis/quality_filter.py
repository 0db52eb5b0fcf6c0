"""The failure filter for synthetic images: MSE against the reference, and a decision rule.

The paper identifies failed syntheses (foreground and background swapped) "by calculating the
mean squared error of the synthetic image relative to the reference image" without giving a
threshold. The rule here is explicit:

* The MSE is computed on grey-level images (mean of R, G, B) within the reference's FOV.
* ``highpass_sigma > 0`` (default 8 px) first subtracts each image's local mean (a Gaussian
  of that sigma, normalised within the FOV so the dark surround does not bleed in). What is
  compared is then vessel-scale structure, not illumination and vignetting, which any two
  fundus images share: without it two unrelated phantoms already correlate at r ~ 0.5.
* ``normalize: zscore`` (default) standardises both grey-level images (zero mean, unit
  variance) first. The MSE is then ``2 * (1 - r)`` with ``r`` the Pearson correlation: 0 for a
  perfect restyle, 2 for an unrelated image, 4 for an exact inversion, whatever the colour,
  brightness and contrast the CycleGAN learned. A swapped foreground/background gives
  ``r < 0`` and an MSE above 2.
* ``normalize: none`` compares raw intensities in [0, 1], as the paper literally does; the
  threshold then depends on how far the unlabeled images' style is from the reference.
* An image is kept when its MSE is at most ``max_mse``. A constant or non-finite image is
  rejected whatever its MSE, with its reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from cyclesynth.synthesis.blending import grey as _grey

NORMALIZATIONS = ("zscore", "none")


def degenerate_reason(image: np.ndarray, region: np.ndarray | None = None) -> str:
    """Why an image cannot be a useful synthetic image ('' if it can)."""
    grey = _grey(image)
    if not np.all(np.isfinite(grey)):
        return "non-finite values (NaN or infinity)"
    values = grey if region is None else grey[region]
    if values.size == 0 or float(values.std()) < 1e-4:
        return "constant image"
    return ""


def highpass(grey: np.ndarray, sigma: float, region: np.ndarray | None = None) -> np.ndarray:
    """``grey`` minus its Gaussian local mean, the mean taken over ``region`` pixels only."""
    weight = np.ones_like(grey) if region is None else region.astype(np.float64)
    local = gaussian_filter(grey * weight, sigma) / np.maximum(gaussian_filter(weight, sigma), 1e-6)
    return grey - local


def synthetic_mse(
    synthetic: np.ndarray,
    reference: np.ndarray,
    region: np.ndarray | None = None,
    normalize: str = "zscore",
    highpass_sigma: float = 0.0,
) -> float:
    """MSE between grey-level ``synthetic`` and ``reference`` within ``region``."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation '{normalize}' (config key filter.normalize); use one of {NORMALIZATIONS}")
    if synthetic.shape[:2] != reference.shape[:2]:
        raise ValueError(f"synthetic image {synthetic.shape[:2]} and reference {reference.shape[:2]} differ in size")
    a, b = _grey(synthetic), _grey(reference)
    if highpass_sigma > 0:
        a, b = highpass(a, highpass_sigma, region), highpass(b, highpass_sigma, region)
    if region is not None:
        a, b = a[region], b[region]
    if normalize == "zscore":
        a = (a - a.mean()) / max(a.std(), 1e-12)
        b = (b - b.mean()) / max(b.std(), 1e-12)
    return float(np.mean((a - b) ** 2))


def judge(
    synthetic: np.ndarray,
    reference: np.ndarray,
    region: np.ndarray | None,
    *,
    normalize: str,
    max_mse: float,
    highpass_sigma: float = 0.0,
) -> dict:
    """MSE, verdict and reason for one synthetic image."""
    reason = degenerate_reason(synthetic, region)
    if reason.startswith("non-finite"):
        mse = float("nan")
    else:
        mse = synthetic_mse(synthetic, reference, region, normalize, highpass_sigma)
    if not reason and not mse <= max_mse:
        reason = f"mse {mse:.4f} > max_mse {max_mse:g}"
    return {"mse": mse, "kept": not reason, "reason": reason}


def _to_bool(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return not (isinstance(value, float) and math.isnan(value)) and bool(value)
    return str(value).strip().lower() in {"true", "1", "yes", "y", "t"}


def read_quality(path) -> pd.DataFrame | None:
    """Read ``quality.tsv``; ``None`` when ``path`` is ``None`` or the file does not exist."""
    if path is None or not Path(path).is_file():
        return None
    frame = pd.read_csv(path, sep="\t", dtype={"image": str, "synthetic": str, "reason": str})
    return normalise_quality(frame)


def normalise_quality(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns: image and paths as text, mse as float, kept as bool, reason text."""
    frame = frame.copy()
    missing = {"image", "mse", "kept"} - set(frame.columns)
    if missing:
        raise ValueError(f"synthetic quality table lacks column(s) {sorted(missing)}")
    frame["image"] = frame["image"].astype(str)
    frame["mse"] = pd.to_numeric(frame["mse"], errors="coerce")
    frame["kept"] = frame["kept"].map(_to_bool).astype(bool)
    for column in ("reason", "synthetic"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    return frame
