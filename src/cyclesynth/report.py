"""The report: summary table, the paper's Table 1 beside the measured one, and figures.

Inputs are the tables and images the other stages write (see ``DESIGN.md``):

* ``results/data/index.tsv`` (which image is the reference, which are unlabeled or test),
* ``results/metrics/{experiment}.tsv`` and ``results/metrics/human.tsv`` (one row per
  test image, region and threshold),
* ``results/synthetic/quality.tsv`` (per synthetic image: MSE against the reference, kept?),
* ``results/cyclegan/{image}/history.tsv`` and ``results/unet/{experiment}/history.tsv``,
* ``results/predictions/{experiment}/{test_id}.png``.

Outputs: ``summary.tsv`` (mean and sample standard deviation over test images),
``table1.md`` (Markdown, measured and published side by side) and five PNG figures. Every
file is written through :func:`cyclesynth.images.atomic_path`, so a killed job never leaves
a truncated output under its final name. A configuration without the synthetic experiment
(no quality table, no CycleGAN histories) still gets every output: the figures that have
nothing to show say why.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cyclesynth.datasets import read_index, scored_tests  # noqa: E402
from cyclesynth.images import ImageReadError, atomic_path, read_binary, read_rgb  # noqa: E402
from cyclesynth import segmentation_report  # noqa: E402
from cyclesynth.quality_filter import normalise_quality, read_quality  # noqa: E402

PathLike = str | os.PathLike

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

_GROUP = ["experiment", "region", "threshold_name"]
_DPI = 110


# --------------------------------------------------------------------------------------
# Reading inputs
# --------------------------------------------------------------------------------------


def read_metrics(path: PathLike) -> pd.DataFrame:
    """Read one per-image metrics table (threshold names and image ids stay text)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metrics table not found")
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype={"experiment": str, "image": str, "region": str, "threshold_name": str},
    )
    missing = set(_GROUP) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: metrics table lacks column(s) {sorted(missing)}")
    return frame


def read_history(path: PathLike) -> pd.DataFrame | None:
    """Read a training history TSV; ``None`` when it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return None
    return frame if len(frame) else None


def _as_index(index: pd.DataFrame | PathLike) -> pd.DataFrame:
    if isinstance(index, pd.DataFrame):
        frame = index.copy()
        for column in ("id", "split", "image", "label", "fov", "label2", "role"):
            if column not in frame.columns:
                frame[column] = ""
            frame[column] = frame[column].fillna("").astype(str)
        return frame
    return read_index(index)


def _as_quality(quality: pd.DataFrame | PathLike | None) -> pd.DataFrame | None:
    if quality is None:
        return None
    if isinstance(quality, pd.DataFrame):
        return normalise_quality(quality)
    return read_quality(quality)


# --------------------------------------------------------------------------------------
# Summary and Table 1
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _save(fig: plt.Figure, out_path: PathLike) -> None:
    try:
        with atomic_path(out_path) as tmp:
            fig.savefig(tmp, format="png", dpi=_DPI)
    finally:
        plt.close(fig)


def _placeholder(out_path: PathLike, title: str, message: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.set_axis_off()
    ax.set_title(title, fontsize=12)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, transform=ax.transAxes)
    _save(fig, out_path)


def _aspect(shape: tuple[int, ...]) -> float:
    return shape[0] / shape[1] if shape and shape[1] else 1.0


def _load(path: str, *, binary: bool = False) -> np.ndarray | None:
    if not path:
        return None
    try:
        return read_binary(path, strict=False) if binary else read_rgb(path)
    except ImageReadError:
        return None


def _show(ax, image: np.ndarray | None, title: str | None = None, *, missing: str = "missing") -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.text(0.5, 0.5, missing, ha="center", va="center", transform=ax.transAxes, color="0.4")
        for spine in ax.spines.values():
            spine.set_color("0.8")
    elif image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(image)
    if title:  # long experiment labels wrap instead of running into the next panel
        ax.set_title(textwrap.fill(title, 30), fontsize=9)


def _grid(rows: int, cols: int, aspect: float, *, panel: float = 2.8):
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel * cols, panel * aspect * rows + 0.8), squeeze=False
    )
    return fig, axes


def _reference_path(index: pd.DataFrame) -> str:
    ref = index[index["role"] == "reference"]
    return str(ref["image"].iloc[0]) if len(ref) else ""


def _image_path(index: pd.DataFrame, image_id: str) -> str:
    row = index[index["id"].astype(str) == str(image_id)]
    return str(row["image"].iloc[0]) if len(row) else ""


def _mse_text(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def plot_synthetic_examples(
    index: pd.DataFrame | PathLike,
    quality: pd.DataFrame | PathLike | None,
    out_path: PathLike,
    max_rows: int = 4,
) -> None:
    """Rows of reference | unlabeled image | synthetic image (the paper's Fig. 3).

    Shows kept synthetic images (up to ``max_rows``); when none was kept, any.
    """
    title = "Synthetic images: the reference restyled by each image's CycleGAN"
    index = _as_index(index)
    quality = _as_quality(quality)
    if quality is None or quality.empty:
        _placeholder(out_path, title, "No synthetic images: this configuration has no synthetic experiment\n"
                     "(no synthetic quality table was produced).")
        return
    chosen = quality[quality["kept"]]
    note = ""
    if chosen.empty:
        chosen = quality
        note = " (none was kept; showing rejected ones)"
    chosen = chosen.head(max_rows)
    reference = _load(_reference_path(index))
    shape = reference.shape if reference is not None else (1, 1)
    fig, axes = _grid(len(chosen), 3, _aspect(shape))
    for row, (_, item) in enumerate(chosen.iterrows()):
        status = "kept" if item["kept"] else "rejected"
        _show(axes[row, 0], reference, "reference (labeled)" if row == 0 else None)
        _show(axes[row, 1], _load(_image_path(index, item["image"])),
              f"unlabeled image {item['image']}")
        _show(axes[row, 2], _load(item["synthetic"]),
              f"synthetic ({item['image']}): MSE {_mse_text(item['mse'])}, {status}")
    fig.suptitle(title + note, fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)


def plot_rejected(
    index: pd.DataFrame | PathLike,
    quality: pd.DataFrame | PathLike | None,
    out_path: PathLike,
    max_rows: int = 4,
    *,
    threshold: float | None = None,
) -> None:
    """Rows of reference | rejected synthetic image with its MSE (the paper's Fig. 4).

    With nothing rejected, a figure that says so (and gives the MSE threshold).
    """
    title = "Rejected synthetic images (failure filter: MSE against the reference)"
    index = _as_index(index)
    quality = _as_quality(quality)
    rule = f"MSE > {threshold:g}" if threshold is not None else "no MSE threshold set"
    if quality is None or quality.empty:
        _placeholder(out_path, title, "No synthetic images: this configuration has no synthetic experiment\n"
                     "(no synthetic quality table was produced).")
        return
    rejected = quality[~quality["kept"]]
    if rejected.empty:
        highest = quality["mse"].max()
        _placeholder(
            out_path,
            title,
            f"No synthetic image was rejected (rule: {rule}).\n"
            f"{len(quality)} synthetic image(s) checked; highest MSE {_mse_text(highest)}.",
        )
        return
    rejected = rejected.sort_values("mse", ascending=False, na_position="first").head(max_rows)
    reference = _load(_reference_path(index))
    shape = reference.shape if reference is not None else (1, 1)
    fig, axes = _grid(len(rejected), 2, _aspect(shape), panel=3.2)
    for row, (_, item) in enumerate(rejected.iterrows()):
        _show(axes[row, 0], reference, "(a) reference" if row == 0 else None)
        reason = item["reason"] or "rejected"
        _show(axes[row, 1], _load(item["synthetic"]),
              f"(b) synthetic for {item['image']}: MSE {_mse_text(item['mse'])}\n{reason}")
    fig.suptitle(f"{title}\nrule: {rule}; {len(quality[~quality['kept']])} of {len(quality)} rejected",
                 fontsize=10)
    fig.tight_layout()
    _save(fig, out_path)


def plot_mse(quality: pd.DataFrame | PathLike | None, out_path: PathLike, threshold: float | None) -> None:
    """Per-image MSE of each synthetic image against the reference, coloured kept/rejected."""
    title = "Synthetic image quality: MSE against the reference"
    quality = _as_quality(quality)
    if quality is None or quality.empty:
        _placeholder(out_path, title, "No synthetic images: this configuration has no synthetic experiment\n"
                     "(no synthetic quality table was produced).")
        return
    ids = quality["image"].astype(str).tolist()
    mse = quality["mse"].to_numpy(dtype=float)
    kept = quality["kept"].to_numpy(dtype=bool)
    x = np.arange(len(ids))
    heights = np.nan_to_num(mse, nan=0.0)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(ids) + 2.0), 3.8))
    colours = np.where(kept, "tab:blue", "tab:red")
    ax.bar(x, heights, color=colours, width=0.7)
    for xi in x[np.isnan(mse)]:
        ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color="tab:blue", label=f"kept ({int(kept.sum())})"),
        plt.Rectangle((0, 0), 1, 1, color="tab:red", label=f"rejected ({int((~kept).sum())})"),
    ]
    if threshold is not None:
        handles.append(ax.axhline(threshold, color="k", linestyle="--", linewidth=1,
                                  label=f"threshold {threshold:g}"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xticks(x)
    ax.set_xticklabels(ids, rotation=90 if len(ids) > 12 else 0, fontsize=8)
    ax.set_xlabel("unlabeled image (its CycleGAN's synthetic image)")
    ax.set_ylabel("MSE vs reference")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)


def plot_segmentations(
    index: pd.DataFrame | PathLike,
    experiments: list[str],
    predictions_dir: PathLike,
    out_path: PathLike,
    test_ids: list[str] | None = None,
    *,
    experiment_labels: Mapping[str, str] | None = None,
) -> None:
    """For each chosen test image: image | ground truth | each experiment's prediction
    (the paper's Fig. 5). ``test_ids`` defaults to the first two test images."""
    title = "Segmentations of test images (U-Net output binarised at 0.5)"
    index = _as_index(index)
    labels = dict(experiment_labels or {})
    tests = scored_tests(index)
    if test_ids is None:
        test_ids = tests["id"].astype(str).tolist()[:2]
    test_ids = [str(t) for t in test_ids]
    if not test_ids:
        _placeholder(out_path, title, "No test images in the index.")
        return
    first = _load(_image_path(index, test_ids[0]))
    shape = first.shape if first is not None else (1, 1)
    cols = 2 + len(experiments)
    fig, axes = _grid(len(test_ids), cols, _aspect(shape), panel=2.6)
    for row, test_id in enumerate(test_ids):
        entry = index[index["id"].astype(str) == test_id]
        label_path = str(entry["label"].iloc[0]) if len(entry) else ""
        _show(axes[row, 0], _load(_image_path(index, test_id)), f"test image {test_id}")
        _show(axes[row, 1], _load(label_path, binary=True), "ground truth", missing="no label")
        for col, experiment in enumerate(experiments, start=2):
            prediction = _load(str(Path(predictions_dir) / experiment / f"{test_id}.png"), binary=True)
            _show(axes[row, col], prediction, labels.get(experiment, experiment), missing="no prediction")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)


def plot_overlays(
    tables: Mapping[str, pd.DataFrame],
    out_path: PathLike,
    *,
    experiment_labels: Mapping[str, str] | None = None,
    limit: int = 3,
) -> None:
    """Where no image is scored: the first images with each experiment's overlay."""
    title = "Segmentations (no labeled test image: not scored)"
    panels = segmentation_report.overlay_panels(tables, limit)
    if not panels:
        _placeholder(out_path, title, "No segmentation to show.")
        return
    labels = dict(experiment_labels or {})
    images = list(dict.fromkeys(image for image, _, _ in panels))
    experiments = list(tables)
    first = _load(images[0])
    fig, axes = _grid(len(images), 1 + len(experiments), _aspect(first.shape if first is not None else (1, 1)), panel=2.6)
    overlays = {(image, experiment): overlay for image, experiment, overlay in panels}
    for row, image in enumerate(images):
        _show(axes[row, 0], _load(image), Path(image).name)
        for col, experiment in enumerate(experiments, start=1):
            _show(axes[row, col], _load(overlays.get((image, experiment), "")), labels.get(experiment, experiment),
                  missing="not segmented")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)


def read_segmentations(path: PathLike) -> pd.DataFrame:
    from cyclesynth.segmentation.segment import read_table

    return read_table(path)


_CYCLEGAN_LOSSES = {
    "generator (G_A + G_B)": ("loss_G_A", "loss_G_B"),
    "discriminator (D_A + D_B)": ("loss_D_A", "loss_D_B"),
    "cycle (A + B)": ("loss_cycle_A", "loss_cycle_B"),
}


def plot_loss_curves(
    cyclegan_histories: Mapping[str, pd.DataFrame],
    unet_histories: Mapping[str, pd.DataFrame],
    out_path: PathLike,
    *,
    experiment_labels: Mapping[str, str] | None = None,
    pretrain_history: pd.DataFrame | None = None,
) -> None:
    """Two panels: CycleGAN losses per epoch (one light line per image and loss, bold mean)
    and U-Net training loss per epoch per experiment (log y). With ``pretrain_history``
    (cyclegan.init pretrained), the pretraining's losses come first, dashed, at epochs
    -P+1..0, so that each image's fine-tuning (epochs 1..F) continues them."""
    labels = dict(experiment_labels or {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    cyclegan = {k: v for k, v in cyclegan_histories.items() if v is not None and len(v)}
    colours = ["tab:blue", "tab:red", "tab:green"]
    if cyclegan:
        for colour, (name, columns) in zip(colours, _CYCLEGAN_LOSSES.items()):
            curves = []
            for history in cyclegan.values():
                present = [c for c in columns if c in history.columns]
                if not present:
                    continue
                epochs = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
                values = history[present].sum(axis=1)
                left.plot(epochs, values, color=colour, alpha=0.25, linewidth=0.8)
                curves.append(pd.Series(values.to_numpy(), index=epochs.to_numpy()))
            if curves:
                mean = pd.concat(curves, axis=1).mean(axis=1).sort_index()
                left.plot(mean.index, mean.to_numpy(), color=colour, linewidth=2, label=f"{name}, mean")
        title = f"CycleGAN training losses ({len(cyclegan)} image(s), light: each image)"
        if pretrain_history is not None and len(pretrain_history):
            shift = np.arange(1, len(pretrain_history) + 1) - len(pretrain_history)
            for colour, columns in zip(colours, _CYCLEGAN_LOSSES.values()):
                present = [c for c in columns if c in pretrain_history.columns]
                if present:
                    left.plot(shift, pretrain_history[present].sum(axis=1), color=colour, linestyle="--",
                              linewidth=1.5)
            left.axvline(0.5, color="0.5", linewidth=0.8)
            left.plot([], [], color="0.3", linestyle="--", label="pretraining (epochs of the pooled patches)")
            title = f"CycleGAN: pretraining (dashed, epochs <= 0), then fine-tuning per image ({len(cyclegan)})"
        left.set_title(title, fontsize=10)
        left.legend(fontsize=8)
    else:
        left.text(0.5, 0.5, "No CycleGAN histories\n(this configuration has no synthetic experiment)",
                  ha="center", va="center", transform=left.transAxes, color="0.4")
        left.set_title("CycleGAN training losses", fontsize=10)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")

    unet = {k: v for k, v in unet_histories.items() if v is not None and len(v) and "loss" in v}
    if unet:
        for experiment, history in unet.items():
            epochs = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
            loss = history["loss"].to_numpy(dtype=float)
            positive = loss > 0
            right.plot(np.asarray(epochs)[positive], loss[positive], linewidth=1.5,
                       label=labels.get(experiment, experiment))
        right.set_yscale("log")
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "No U-Net histories", ha="center", va="center",
                   transform=right.transAxes, color="0.4")
    right.set_title("U-Net training loss (weighted cross-entropy)", fontsize=10)
    right.set_xlabel("epoch")
    right.set_ylabel("loss (log scale)" if unet else "loss")
    fig.suptitle("Training curves", fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)


# --------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------

FIGURES = ("synthetic_examples.png", "rejected_synthetic.png", "synthetic_mse.png",
           "segmentations.png", "loss_curves.png")


def write_report(
    *,
    index_tsv: PathLike,
    quality_tsv: PathLike | None,
    metrics_tsvs: Mapping[str, PathLike],
    human_tsv: PathLike | None,
    cyclegan_histories: Mapping[str, PathLike],
    unet_histories: Mapping[str, PathLike],
    predictions_dir: PathLike,
    pretrain_history: PathLike | None = None,
    experiment_labels: Mapping[str, str],
    mse_threshold: float | None,
    out_summary: PathLike,
    out_table1: PathLike,
    figures_dir: PathLike,
    segmentation_tables: Mapping[str, PathLike] | None = None,
    paired_tsv: PathLike | None = None,
    validation_tsvs: Mapping[str, PathLike] | None = None,
    validation_paired_tsv: PathLike | None = None,
    prediction: Mapping | None = None,
    self_training: Mapping | None = None,
    pseudo_label_tables: Mapping[str, PathLike] | None = None,
    segmented_by: Mapping | None = None,
) -> dict[str, Path]:
    """Read every input, write ``summary.tsv``, ``table1.md`` and the five figures.

    ``quality_tsv``, ``human_tsv`` and history files may be missing (``None`` or absent
    file): the outputs are still written, with placeholder figures saying why they are
    empty. A missing index or metrics table is an error naming the file. ``prediction``
    (``patch_size``, ``stride``, ``tta``: how the U-Nets predicted, the workflow's
    prediction settings) puts a sentence saying so under Table 1's introduction (or under
    its place when nothing is scored). ``self_training`` (``students``: name -> pseudo_labels
    settings, ``transductive``) with the teachers' ``pseudo_label_tables`` adds the
    Self-training section (:func:`cyclesynth.segmentation.pseudo_labels.render_markdown`);
    ``segmented_by`` (``experiments``, ``source``) says which experiments made the
    segmentations and why. Returns the paths written, keyed by a short name.
    """
    index = read_index(index_tsv)
    tables = [read_metrics(path) for path in metrics_tsvs.values()]
    if human_tsv is not None and Path(human_tsv).is_file():
        tables.append(read_metrics(human_tsv))
    summary = summarize(tables)
    write_summary(summary, out_summary)
    segmentations = {
        experiment: read_segmentations(path) for experiment, path in (segmentation_tables or {}).items()
    }
    scored = segmentation_report.scored_ids(index)
    method = None
    if prediction is not None:
        from cyclesynth.segmentation.inference import describe

        method = describe(int(prediction["patch_size"]), prediction["stride"], bool(prediction["tta"]))
    if scored:
        text = render_table1(summary, experiment_labels=experiment_labels, prediction=method)
        if paired_tsv is not None and Path(paired_tsv).is_file():  # the paired comparison (cyclesynth.paired)
            from cyclesynth.paired import render_markdown

            text += "\n" + render_markdown(pd.read_csv(paired_tsv, sep="\t", dtype={"a": str, "b": str}),
                                           experiment_labels)
        text += "\n" + segmentation_report.render_not_scored(index)
    else:
        text = segmentation_report.render_unscored_table1(index)
        if method:
            text += "\n" + method + "\n"
    if validation_tsvs:
        from cyclesynth.validation_report import render_validation

        text += "\n" + render_validation(
            index, [read_metrics(path) for path in validation_tsvs.values()], validation_paired_tsv, experiment_labels
        )
    if self_training and self_training.get("students"):
        from cyclesynth.segmentation.pseudo_labels import read_table, render_markdown

        text += "\n" + render_markdown(
            self_training["students"],
            {teacher: read_table(path) for teacher, path in (pseudo_label_tables or {}).items()},
            experiment_labels,
            transductive=bool(self_training.get("transductive")),
        )
    warnings = segmentation_report.render_input_warnings(index)
    if warnings:
        text += "\n" + warnings
    text += "\n" + segmentation_report.render_segmentations(
        index, segmentations, experiment_labels, segmented_by=segmented_by
    )
    write_text(text, out_table1)

    quality = read_quality(quality_tsv)
    figures_dir = Path(figures_dir)
    paths = {name.removesuffix(".png"): figures_dir / name for name in FIGURES}
    plot_synthetic_examples(index, quality, paths["synthetic_examples"])
    plot_rejected(index, quality, paths["rejected_synthetic"], threshold=mse_threshold)
    plot_mse(quality, paths["synthetic_mse"], mse_threshold)
    if scored:
        plot_segmentations(index, list(metrics_tsvs), predictions_dir, paths["segmentations"],
                           experiment_labels=experiment_labels)
    else:
        plot_overlays(segmentations, paths["segmentations"], experiment_labels=experiment_labels)
    plot_loss_curves(
        {image: read_history(path) for image, path in cyclegan_histories.items()},
        {experiment: read_history(path) for experiment, path in unet_histories.items()},
        paths["loss_curves"],
        experiment_labels=experiment_labels,
        pretrain_history=read_history(pretrain_history) if pretrain_history is not None else None,
    )
    return {"summary": Path(out_summary), "table1": Path(out_table1), **paths}
