"""Paired comparison of experiments over the same test images.

Differences of 0.005 AUC between two experiments' means are within the noise of one run;
what tells them apart is whether one wins on most test images. For each pair (a, b) of
experiments this module takes every test image's AUC within the FOV for both, and reports
the mean per-image difference a - b, on how many images a is better, and the two-sided
Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped) of the
per-image differences. The AUC does not depend on the threshold, so one row per image and
region is used (the first threshold listed).
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

COLUMNS = [
    "a",
    "b",
    "region",
    "metric",
    "n_images",
    "mean_a",
    "mean_b",
    "mean_difference",
    "std_difference",
    "a_better",
    "b_better",
    "wilcoxon_statistic",
    "p_value",
]


def per_image(metrics: pd.DataFrame, metric: str = "auc", region: str = "fov") -> pd.Series:
    """One value per test image (index: image id) from one experiment's metrics table."""
    rows = metrics[metrics["region"].astype(str) == region]
    if rows.empty:
        return pd.Series(dtype=float)
    first = rows["threshold_name"].astype(str).iloc[0]
    rows = rows[rows["threshold_name"].astype(str) == first]
    values = pd.to_numeric(rows[metric], errors="coerce")
    return pd.Series(values.to_numpy(), index=rows["image"].astype(str).to_numpy(), name=metric)


def compare(a: pd.Series, b: pd.Series) -> dict:
    """Paired statistics of a - b over the images both have a finite value for."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    difference = (joined["a"] - joined["b"]).to_numpy(dtype=float)
    n = len(difference)
    result = {
        "n_images": n,
        "mean_a": float(joined["a"].mean()) if n else math.nan,
        "mean_b": float(joined["b"].mean()) if n else math.nan,
        "mean_difference": float(difference.mean()) if n else math.nan,
        "std_difference": float(difference.std(ddof=1)) if n > 1 else math.nan,
        "a_better": int((difference > 0).sum()),
        "b_better": int((difference < 0).sum()),
        "wilcoxon_statistic": math.nan,
        "p_value": math.nan,
    }
    if np.count_nonzero(difference) > 0:
        test = wilcoxon(difference, zero_method="wilcox", alternative="two-sided")
        result["wilcoxon_statistic"] = float(test.statistic)
        result["p_value"] = float(test.pvalue)
    return result


def paired_table(
    metrics: Mapping[str, pd.DataFrame],
    experiments: Iterable[str] | None = None,
    *,
    metric: str = "auc",
    region: str = "fov",
) -> pd.DataFrame:
    """One row per pair (a, b) of ``experiments`` (default: all in ``metrics``), a listed
    before b, with the statistics of :func:`compare`."""
    names = list(metrics) if experiments is None else [e for e in experiments if e in metrics]
    values = {name: per_image(metrics[name], metric, region) for name in names}
    rows = []
    for a, b in itertools.combinations(names, 2):
        rows.append({"a": a, "b": b, "region": region, "metric": metric, **compare(values[a], values[b])})
    return pd.DataFrame(rows, columns=COLUMNS)


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def render_markdown(table: pd.DataFrame, labels: Mapping[str, str] | None = None, *, images: str = "test") -> str:
    """A Markdown section for table1.md: one line per pair (``images``: which images the
    differences are over, test or validation)."""
    labels = dict(labels or {})
    lines = [
        f"## Paired comparison (AUC within the FOV, per {images} image)",
        "",
        "For each pair of one-label experiments (and the zero-label Frangi baseline): the mean",
        f"over {images} images of the per-image AUC difference a - b, on how many images each is",
        "better, and the two-sided Wilcoxon signed-rank p-value of the differences. With few",
        f"{images} images no p-value can be small: with 4 images the smallest possible is 0.125.",
        "",
        "| a | b | n | mean AUC a | mean AUC b | mean difference a - b | a better / b better | Wilcoxon p |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    if table.empty:
        lines.append("| (no pairs) | | | | | | | |")
    for row in table.itertuples():
        lines.append(
            f"| {labels.get(row.a, row.a)} (`{row.a}`) | {labels.get(row.b, row.b)} (`{row.b}`) | {row.n_images} "
            f"| {row.mean_a:.4f} | {row.mean_b:.4f} | {row.mean_difference:+.4f} "
            f"| {row.a_better} / {row.b_better} | {_p(row.p_value)} |"
        )
    lines.append("")
    return "\n".join(lines)
