"""Segmentation metrics: confusion counts, sensitivity, specificity, accuracy, F1, AUC-ROC.

All functions take boolean ground truth and an optional boolean region (the FOV mask); pixels
outside the region are ignored. AUC is the exact Mann-Whitney statistic (ties count one half),
computed from a histogram of quantised scores, so it is fast on whole images.
"""

from __future__ import annotations

import numpy as np


def confusion(prediction: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> dict:
    """Counts tp, fp, tn, fn of a boolean ``prediction`` against boolean ``truth``."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from truth {truth.shape}")
    if region is None:
        region = np.ones(truth.shape, dtype=bool)
    p, t = prediction[region].astype(bool), truth[region].astype(bool)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(p.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def rates(tp: int, fp: int, tn: int, fn: int) -> dict:
    """Sensitivity (recall), specificity, accuracy and F1 (Dice) from confusion counts."""
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def auc_roc(scores: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None, levels: int = 65536) -> float:
    """Area under the ROC curve of ``scores`` in [0, 1] for boolean ``truth``.

    Scores are quantised to ``levels`` bins (16-bit by default, the resolution the workflow
    stores probabilities at); within a bin, positives and negatives tie.
    """
    if region is None:
        region = np.ones(truth.shape, dtype=bool)
    s = np.clip(np.asarray(scores, dtype=np.float64)[region], 0.0, 1.0)
    t = truth[region].astype(bool)
    bins = np.round(s * (levels - 1)).astype(np.int64)
    positives = np.bincount(bins[t], minlength=levels).astype(np.float64)
    negatives = np.bincount(bins[~t], minlength=levels).astype(np.float64)
    n_pos, n_neg = positives.sum(), negatives.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    negatives_below = np.cumsum(negatives) - negatives
    wins = np.sum(positives * negatives_below) + 0.5 * np.sum(positives * negatives)
    return float(wins / (n_pos * n_neg))


def evaluate_probabilities(
    probability: np.ndarray,
    truth: np.ndarray,
    regions: dict[str, np.ndarray | None],
    thresholds: dict[str, float],
) -> list[dict]:
    """One row per (region, threshold): threshold, confusion counts, rates and AUC."""
    rows = []
    for region_name, region in regions.items():
        auc = auc_roc(probability, truth, region)
        for threshold_name, threshold in thresholds.items():
            counts = confusion(probability >= threshold, truth, region)
            rows.append(
                {
                    "region": region_name,
                    "threshold_name": threshold_name,
                    "threshold": float(threshold),
                    **rates(**counts),
                    "auc": auc,
                    **counts,
                }
            )
    return rows


def evaluate_binary(prediction: np.ndarray, truth: np.ndarray, regions: dict[str, np.ndarray | None]) -> list[dict]:
    """Rows for a binary segmentation (e.g. the second observer): no threshold, no AUC."""
    rows = []
    for region_name, region in regions.items():
        counts = confusion(prediction, truth, region)
        rows.append(
            {
                "region": region_name,
                "threshold_name": "binary",
                "threshold": float("nan"),
                **rates(**counts),
                "auc": float("nan"),
                **counts,
            }
        )
    return rows


def scored_regions(fov: np.ndarray) -> dict:
    """The regions every image is scored in: within its FOV, and the whole image."""
    return {"fov": fov, "image": None}
