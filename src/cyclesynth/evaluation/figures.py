"""The report's figures (matplotlib, Agg): synthetic examples, rejected synthetic images, the
synthetic images' MSE, segmentations or overlays, and the training loss curves; each is saved
through :func:`cyclesynth.data.images.atomic_path`, and a figure with nothing to show says why.
The ``draw_<name>`` functions at the end draw the entries of
:data:`cyclesynth.evaluation.figure_registry.FIGURES` from one :class:`FigureInputs`."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cyclesynth.data.datasets import scored_tests  # noqa: E402
from cyclesynth.data.images import ImageReadError, atomic_path, read_binary, read_rgb  # noqa: E402
from cyclesynth.evaluation import segmentation_report  # noqa: E402
from cyclesynth.evaluation.inputs import PathLike, _as_index, _as_quality  # noqa: E402

_DPI = 110


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


# ----------------------------------------------------------------------------- the report's figures
# One draw_<name>(inputs, out_path) per entry of cyclesynth.evaluation.figure_registry.FIGURES.


@dataclass(frozen=True)
class FigureInputs:
    """What the report's figures are drawn from, read once by
    :func:`cyclesynth.evaluation.report.write_report`."""

    index: pd.DataFrame
    quality: pd.DataFrame | None
    mse_threshold: float | None
    scored_experiments: list[str]  # their predictions: predictions_dir/<experiment>/<test id>.png
    predictions_dir: PathLike
    segmentations: Mapping[str, pd.DataFrame]  # experiment -> its segmentations.tsv
    cyclegan_histories: Mapping[str, pd.DataFrame]
    unet_histories: Mapping[str, pd.DataFrame]
    pretrain_history: pd.DataFrame | None
    experiment_labels: Mapping[str, str]


def draw_synthetic_examples(inputs: FigureInputs, out_path: PathLike) -> None:
    plot_synthetic_examples(inputs.index, inputs.quality, out_path)


def draw_rejected_synthetic(inputs: FigureInputs, out_path: PathLike) -> None:
    plot_rejected(inputs.index, inputs.quality, out_path, threshold=inputs.mse_threshold)


def draw_synthetic_mse(inputs: FigureInputs, out_path: PathLike) -> None:
    plot_mse(inputs.quality, out_path, inputs.mse_threshold)


def draw_segmentations(inputs: FigureInputs, out_path: PathLike) -> None:
    """Test images with each experiment's prediction; where none is scored, the overlays."""
    if segmentation_report.scored_ids(inputs.index):
        plot_segmentations(inputs.index, inputs.scored_experiments, inputs.predictions_dir, out_path,
                           experiment_labels=inputs.experiment_labels)
    else:
        plot_overlays(inputs.segmentations, out_path, experiment_labels=inputs.experiment_labels)


def draw_loss_curves(inputs: FigureInputs, out_path: PathLike) -> None:
    plot_loss_curves(inputs.cyclegan_histories, inputs.unet_histories, out_path,
                     experiment_labels=inputs.experiment_labels, pretrain_history=inputs.pretrain_history)


def draw_vessel_fractions(inputs: FigureInputs, out_path: PathLike) -> None:
    """The vessel fraction of every segmented image (mask pixels / image pixels) per segmenting
    experiment, and the first observer's where a test image has a label."""
    title = "Vessel fraction of every segmented image (whole image)"
    tables = {experiment: table for experiment, table in inputs.segmentations.items() if len(table)}
    if not tables:
        _placeholder(out_path, title, "No segmentation to show.")
        return
    names = list(dict.fromkeys(str(name) for table in tables.values() for name in table["name"]))
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(min(max(6.0, 2.0 + 0.25 * len(names)), 16.0), 3.8))
    for experiment, table in tables.items():
        fraction = dict(zip(table["name"].astype(str), table["vessel_fraction"].astype(float)))
        ax.plot(x, [fraction.get(name, np.nan) for name in names], "o", alpha=0.8,
                label=inputs.experiment_labels.get(experiment, experiment))
    tests = scored_tests(inputs.index)
    labels = dict(zip(tests["id"].astype(str), tests["label"].astype(str)))
    truth = [_load(labels[name], binary=True) if name in labels else None for name in names]
    if any(mask is not None for mask in truth):
        ax.plot(x, [mask.mean() if mask is not None else np.nan for mask in truth], "kx",
                label="first observer (labeled test images)")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_xlabel("segmented image")
    ax.set_ylabel("vessel fraction")
    top = ax.get_ylim()[1]
    ax.set_ylim(-0.04 * top, top)  # an empty mask's 0 shows whole
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)
