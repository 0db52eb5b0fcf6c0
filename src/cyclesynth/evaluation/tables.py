"""The report's tables: the summary (mean and sample standard deviation over test images) and
Table 1 in Markdown, the measured values beside the paper's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from cyclesynth.data.images import atomic_path

from cyclesynth.evaluation.inputs import _GROUP, PathLike

#: Metrics summarised per (experiment, region, threshold), in table order.
METRICS: tuple[str, ...] = ("sensitivity", "specificity", "accuracy", "f1", "auc")

#: Experiment name the evaluation stage gives the second human observer.
HUMAN_EXPERIMENT = "human (2nd observer)"

#: The paper's Table 1: sensitivity / specificity / accuracy as (mean, std) over the 20
#: DRIVE test images, keyed by the experiment name this workflow uses for that training set.
PAPER_TABLE1: dict[str, dict[str, object]] = {
    "all_labels": {
        "training_set": "20 ground truths",
        "sensitivity": (0.60, 0.10),
        "specificity": (0.98, 0.01),
        "accuracy": (0.94, 0.01),
    },
    "synthetic": {
        "training_set": "1 ground truth + synthetic",
        "sensitivity": (0.62, 0.10),
        "specificity": (0.95, 0.01),
        "accuracy": (0.93, 0.02),
    },
    "reference_only": {
        "training_set": "1 ground truth",
        "sensitivity": (0.86, 0.04),
        "specificity": (0.53, 0.06),
        "accuracy": (0.56, 0.05),
    },
}

REGION_TITLES = {"fov": "within FOV", "image": "whole image"}


def _std(values: pd.Series) -> float:
    values = values.dropna()
    if len(values) == 0:
        return float("nan")
    if len(values) == 1:
        return 0.0
    return float(values.std(ddof=1))


def summarize(metric_tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Mean and sample standard deviation over test images.

    One row per (experiment, region, threshold_name), in the order the groups first appear
    in ``metric_tables``. Columns: experiment, region, threshold_name, threshold, n_images,
    then ``{metric}_mean`` and ``{metric}_std`` for each of :data:`METRICS`. Means and
    standard deviations skip NaN values (the human row has no AUC); the standard deviation
    uses ``ddof=1`` and is 0 for a single value, NaN when there is no value at all.
    """
    tables = [table for table in metric_tables if table is not None and len(table)]
    columns = ["experiment", "region", "threshold_name", "threshold", "n_images"]
    columns += [f"{metric}_{stat}" for metric in METRICS for stat in ("mean", "std")]
    if not tables:
        return pd.DataFrame(columns=columns)
    data = pd.concat(tables, ignore_index=True)
    for column in _GROUP:
        if column not in data.columns:
            raise ValueError(f"metrics lack column {column!r}")
        data[column] = data[column].astype(str)
    rows = []
    for key, group in data.groupby(_GROUP, sort=False):
        row: dict[str, object] = dict(zip(_GROUP, key))
        threshold = pd.to_numeric(group["threshold"], errors="coerce") if "threshold" in group else None
        row["threshold"] = float(threshold.iloc[0]) if threshold is not None else float("nan")
        row["n_images"] = int(group["image"].nunique()) if "image" in group else len(group)
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce") if metric in group else pd.Series(dtype=float)
            row[f"{metric}_mean"] = float(values.mean()) if values.notna().any() else float("nan")
            row[f"{metric}_std"] = _std(values)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def write_summary(summary: pd.DataFrame, path: PathLike) -> None:
    """Write the summary as TSV (atomically)."""
    with atomic_path(path) as tmp:
        summary.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def _fmt(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _paper_cell(experiment: str) -> str:
    entry = PAPER_TABLE1.get(experiment)
    if entry is None:
        return "—"
    return " / ".join(_fmt(*entry[m], digits=2) for m in ("sensitivity", "specificity", "accuracy"))


def _threshold_label(name: str, value: float) -> str:
    if name == "binary":
        return "binary"
    try:
        if float(name) == value or math.isnan(value):
            return name
    except ValueError:
        pass
    if value is None or math.isnan(value):
        return name
    return f"{name} = {value:.3f}"


def _is_human(row: pd.Series) -> bool:
    return str(row["threshold_name"]) == "binary" or str(row["experiment"]).startswith("human")


def _region_table(
    summary: pd.DataFrame,
    region: str,
    experiment_labels: Mapping[str, str],
    *,
    paper_column: bool,
) -> list[str]:
    rows = summary[summary["region"].astype(str) == region]
    header = ["Training set", "Experiment", "Threshold", "n", "Sensitivity", "Specificity", "Accuracy", "AUC", "F1"]
    if paper_column:
        header.append("Paper (Sens / Spec / Acc)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * (len(header) - 3)) + "|"]
    if rows.empty:
        lines.append("| " + " | ".join(["(no rows)"] + [""] * (len(header) - 1)) + " |")
        return lines
    ordered = [r for _, r in rows.iterrows() if not _is_human(r)] + [r for _, r in rows.iterrows() if _is_human(r)]
    for row in ordered:
        experiment = str(row["experiment"])
        human = _is_human(row)
        label = experiment_labels.get(experiment, "second human observer" if human else experiment)
        cells = [
            label,
            f"`{experiment}`",
            _threshold_label(str(row["threshold_name"]), float(row["threshold"])),
            str(int(row["n_images"])),
        ]
        cells += [_fmt(row[f"{m}_mean"], row[f"{m}_std"]) for m in ("sensitivity", "specificity", "accuracy", "auc", "f1")]
        if paper_column:
            cells.append(_paper_cell(experiment))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_table1(
    summary: pd.DataFrame,
    *,
    experiment_labels: Mapping[str, str],
    primary_region: str = "fov",
    prediction: str | None = None,
) -> str:
    """Markdown: the measured Table 1 (primary region, with the paper's numbers beside it),
    the paper's Table 1 as published, then the same measured table for the other region(s).
    ``prediction`` (a sentence, :func:`cyclesynth.segmentation.inference.describe`) follows the
    introduction as its own paragraph."""
    regions = list(dict.fromkeys(summary["region"].astype(str))) if len(summary) else [primary_region]
    if primary_region not in regions:
        regions.insert(0, primary_region)
    others = [r for r in regions if r != primary_region]
    n_values = sorted({int(n) for n in summary["n_images"]}) if len(summary) else []
    n_text = ", ".join(str(n) for n in n_values) if n_values else "no"

    lines = [
        "# Table 1: segmentation accuracy on the test images",
        "",
        "Each U-Net's probability map was binarised at each threshold listed and compared with the",
        f"first observer's manual segmentation of each test image ({n_text} test images). Sensitivity,",
        "specificity, accuracy and F1 come from the per-image pixel counts; AUC (ROC) uses the",
        "probabilities and so does not depend on the threshold. Every cell is the mean ± sample",
        "standard deviation (ddof = 1) over the test images. Threshold `0.5` is the paper's;",
        "`w/(1+w)` (with w the vessel weight of the weighted cross-entropy) undoes the shift the",
        "weighted loss gives the probabilities and is fixed without looking at test labels.",
        "The second human observer's manual segmentation, scored against the first observer's,",
        "is a baseline (it is binary, so it has no AUC).",
        "",
        *([prediction, ""] if prediction else []),
        f"## Measured ({REGION_TITLES.get(primary_region, primary_region)})",
        "",
        "The last column is the paper's Table 1 for the same training set (mean ± std; the paper",
        "reports one threshold and does not say whether it scored within the FOV); `—` marks a",
        "training set the paper does not have.",
        "",
    ]
    lines += _region_table(summary, primary_region, experiment_labels, paper_column=True)
    lines += [
        "",
        "## Paper's Table 1 (as published)",
        "",
        "| Training set | Experiment | Sensitivity | Specificity | Accuracy |",
        "|---|---|--:|--:|--:|",
    ]
    for experiment, entry in PAPER_TABLE1.items():
        cells = [str(entry["training_set"]), f"`{experiment}`"]
        cells += [_fmt(*entry[m], digits=2) for m in ("sensitivity", "specificity", "accuracy")]
        lines.append("| " + " | ".join(cells) + " |")
    for region in others:
        lines += ["", f"## Measured ({REGION_TITLES.get(region, region)})", ""]
        lines += _region_table(summary, region, experiment_labels, paper_column=False)
    lines.append("")
    return "\n".join(lines)


def write_text(text: str, path: PathLike) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


#: The threshold of the front page's F1 (the weight-corrected one, fixed without test labels).
HEADLINE_THRESHOLD = "w/(1+w)"


def _rst_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A reStructuredText simple table."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    rule = "  ".join("=" * width for width in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return [rule, line(header), rule, *(line(row) for row in rows), rule]


def render_headline(
    summary: pd.DataFrame,
    *,
    experiment_labels: Mapping[str, str],
    segmented_by: Mapping | None = None,
    region: str = "fov",
) -> str:
    """reStructuredText for the front page of ``snakemake --report``: per experiment the AUC and
    the F1 at :data:`HEADLINE_THRESHOLD` within ``region`` (mean ± std over the test images;
    an experiment without that threshold, the second observer or Frangi, at its own), then
    which experiments made the segmentations and why (``segmented_by``, as for Table 1)."""
    from cyclesynth.evaluation.segmentation_report import source_line

    lines = ["Results", "=======", ""]
    rows = summary[summary["region"].astype(str) == region] if len(summary) else summary
    if rows.empty:
        lines += ["No test image was scored (none has a label): see table1.md.", ""]
    else:
        n_text = ", ".join(str(n) for n in sorted({int(n) for n in rows["n_images"]}))
        lines += [
            f"Mean ± standard deviation over the {n_text} test images ({REGION_TITLES.get(region, region)}). "
            f"F1 at the threshold {HEADLINE_THRESHOLD} (w the vessel weight of the loss); AUC does not "
            "depend on the threshold.",
            "",
        ]
        table, humans = [], []
        for experiment, group in rows.groupby("experiment", sort=False):
            chosen = group[group["threshold_name"].astype(str) == HEADLINE_THRESHOLD]
            row = (chosen if len(chosen) else group).iloc[0]
            human = _is_human(row)
            f1 = _fmt(row["f1_mean"], row["f1_std"])
            if not len(chosen):
                f1 += " (binary)" if human else f" (threshold {row['threshold_name']})"
            label = experiment_labels.get(str(experiment), "second human observer" if human else str(experiment))
            (humans if human else table).append(
                [label, f"``{experiment}``", _fmt(row["auc_mean"], row["auc_std"]), f1])
        lines += _rst_table(["Training set", "Experiment", "AUC", f"F1 at {HEADLINE_THRESHOLD}"], table + humans)
        lines.append("")
    if segmented_by:
        lines += [source_line(list(segmented_by["experiments"]), str(segmented_by["source"]), code="``"), ""]
    lines += ["Every metric, both regions and thresholds: table1.md and summary.tsv (Metrics).", ""]
    return "\n".join(lines)
