"""Tests for the report (cyclesynth.evaluation: report, tables, figures): summary numbers, Table 1 text,
figures, missing inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import imageio.v3 as iio  # noqa: E402

from cyclesynth.evaluation import figures as report_figures  # noqa: E402
from cyclesynth.evaluation import report, tables  # noqa: E402
from cyclesynth.evaluation.figure_registry import FIGURES
from cyclesynth.data.images import write_png  # noqa: E402
from helpers import expected_table1, measured_table1

H, W = 24, 32  # non-square on purpose: the figures follow the images' aspect
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Per-image numbers for all_labels, fov, threshold 0.5 (3 test images).
SENS = [0.6, 0.7, 0.8]
SPEC = [0.90, 0.95, 1.00]
ACC = [0.91, 0.93, 0.98]
F1 = [0.5, 0.6, 0.4]
AUC = [0.95, 0.97, 0.99]


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((H, W, 3)).astype(np.float32)


def _mask(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((H, W)) > 0.7


def _metric_rows(experiment: str, offset: float = 0.0) -> list[dict]:
    rows = []
    for i, test_id in enumerate(["01", "02", "03"]):
        for region in ("fov", "image"):
            for name, value in (("0.5", 0.5), ("w/(1+w)", 10 / 11)):
                shift = offset + (0.0 if region == "fov" else 0.01) + (0.0 if name == "0.5" else 0.02)
                rows.append(
                    dict(experiment=experiment, image=test_id, region=region, threshold_name=name,
                         threshold=value, sensitivity=SENS[i] - shift, specificity=SPEC[i] - shift,
                         accuracy=ACC[i] - shift, f1=F1[i] - shift, auc=AUC[i] - offset,
                         tp=10, fp=2, tn=100, fn=3)
                )
    return rows


def _human_rows() -> list[dict]:
    rows = []
    for i, test_id in enumerate(["01", "02", "03"]):
        for region in ("fov", "image"):
            rows.append(
                dict(experiment=tables.HUMAN_EXPERIMENT, image=test_id, region=region,
                     threshold_name="binary", threshold=float("nan"), sensitivity=0.77 + 0.01 * i,
                     specificity=0.97, accuracy=0.95, f1=0.79, auc=float("nan"),
                     tp=10, fp=2, tn=100, fn=3)
            )
    return rows


@pytest.fixture()
def inputs(tmp_path: Path) -> dict:
    """A tiny results/ tree: index, images, quality (2 kept, 1 rejected), metrics, histories."""
    data = tmp_path / "data"
    rows = []

    def add(image_id: str, split: str, role: str, seed: int, *, label: bool, label2: bool = False):
        image = data / f"{image_id}_image.png"
        write_png(image, _image(seed))
        entry = dict(id=image_id, split=split, image=str(image), label="", fov="", label2="", role=role)
        if label:
            entry["label"] = str(data / f"{image_id}_label.png")
            write_png(entry["label"], _mask(seed))
            entry["fov"] = str(data / f"{image_id}_fov.png")
            write_png(entry["fov"], np.ones((H, W), bool))
        if label2:
            entry["label2"] = str(data / f"{image_id}_label2.png")
            write_png(entry["label2"], _mask(seed + 100))
        rows.append(entry)

    add("21", "training", "reference", 21, label=True)
    for i in (22, 23, 24):
        add(str(i), "training", "unlabeled", i, label=True)
    add("25", "training", "unused", 25, label=True)
    for i in (1, 2, 3):
        add(f"0{i}", "test", "test", i, label=True, label2=True)
    index_tsv = tmp_path / "results/data/index.tsv"
    index_tsv.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(index_tsv, sep="\t", index=False)

    synth = tmp_path / "results/synthetic"
    quality = []
    for image_id, mse, kept, reason in (("22", 0.05, True, ""), ("23", 0.08, True, ""),
                                        ("24", 2.31, False, "mse 2.31 > 1.0")):
        path = synth / f"{image_id}.png"
        write_png(path, _image(int(image_id) + 50))
        quality.append(dict(image=image_id, synthetic=str(path), mse=mse, kept=kept, reason=reason))
    quality_tsv = synth / "quality.tsv"
    pd.DataFrame(quality).to_csv(quality_tsv, sep="\t", index=False)

    metrics = tmp_path / "results/metrics"
    metrics.mkdir(parents=True)
    metrics_tsvs = {}
    for offset, experiment in enumerate(["all_labels", "synthetic", "reference_only", "extra_set"]):
        path = metrics / f"{experiment}.tsv"
        pd.DataFrame(_metric_rows(experiment, 0.1 * offset)).to_csv(path, sep="\t", index=False)
        metrics_tsvs[experiment] = path
    human_tsv = metrics / "human.tsv"
    pd.DataFrame(_human_rows()).to_csv(human_tsv, sep="\t", index=False)

    predictions = tmp_path / "results/predictions"
    for e, experiment in enumerate(metrics_tsvs):
        for t, test_id in enumerate(("01", "02", "03")):
            write_png(predictions / experiment / f"{test_id}.png", _mask(200 + 10 * e + t))

    cyclegan_histories = {}
    for image_id in ("22", "23", "24"):
        path = tmp_path / f"results/cyclegan/{image_id}/history.tsv"
        path.parent.mkdir(parents=True)
        epochs = np.arange(1, 11)
        frame = pd.DataFrame(dict(
            epoch=epochs, loss_G_A=1 / epochs, loss_G_B=1.1 / epochs, loss_D_A=0.25 + 0 * epochs,
            loss_D_B=0.24 + 0 * epochs, loss_cycle_A=3 / epochs, loss_cycle_B=2.5 / epochs,
            loss_idt_A=0.5 / epochs, loss_idt_B=0.4 / epochs, lr=2e-4, seconds=1.0))
        frame.to_csv(path, sep="\t", index=False)
        cyclegan_histories[image_id] = path
    unet_histories = {}
    for experiment in metrics_tsvs:
        path = tmp_path / f"results/unet/{experiment}/history.tsv"
        path.parent.mkdir(parents=True)
        epochs = np.arange(1, 21)
        pd.DataFrame(dict(epoch=epochs, loss=np.exp(-epochs / 5), seconds=0.5)).to_csv(path, sep="\t", index=False)
        unet_histories[experiment] = path

    return dict(
        tmp_path=tmp_path,
        index_tsv=index_tsv,
        quality_tsv=quality_tsv,
        metrics_tsvs=metrics_tsvs,
        human_tsv=human_tsv,
        cyclegan_histories=cyclegan_histories,
        unet_histories=unet_histories,
        predictions_dir=predictions,
        experiment_labels={
            "all_labels": "20 ground truths",
            "synthetic": "1 ground truth + synthetic",
            "reference_only": "1 ground truth",
            "extra_set": "extra training set",
        },
    )


def _run(inputs: dict, out: Path, **overrides) -> dict:
    kwargs = dict(
        index_tsv=inputs["index_tsv"], quality_tsv=inputs["quality_tsv"],
        metrics_tsvs=inputs["metrics_tsvs"], human_tsv=inputs["human_tsv"],
        cyclegan_histories=inputs["cyclegan_histories"], unet_histories=inputs["unet_histories"],
        predictions_dir=inputs["predictions_dir"], experiment_labels=inputs["experiment_labels"],
        mse_threshold=1.0, out_summary=out / "summary.tsv", out_table1=out / "table1.md",
        figures_dir=out / "figures",
    )
    kwargs.update(overrides)
    return report.write_report(**kwargs)


def _png_shape(path: Path) -> tuple[int, int]:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert path.stat().st_size > 5000, f"{path} is suspiciously small"
    image = iio.imread(path)
    assert image.std() > 0, f"{path} is blank"
    return image.shape[0], image.shape[1]


# ---------------------------------------------------------------------------------------


def test_summarize_by_hand():
    frames = [pd.DataFrame(_metric_rows("all_labels")), pd.DataFrame(_human_rows())]
    summary = tables.summarize(frames)
    # order kept: experiment first-appearance, then regions/thresholds as given
    assert summary["experiment"].tolist()[:4] == ["all_labels"] * 4
    assert summary["experiment"].iloc[-1] == tables.HUMAN_EXPERIMENT
    assert len(summary) == 4 + 2

    row = summary[(summary.experiment == "all_labels") & (summary.region == "fov")
                  & (summary.threshold_name == "0.5")].iloc[0]
    assert row["n_images"] == 3
    assert row["threshold"] == 0.5
    # by hand: mean of 0.6, 0.7, 0.8 is 0.7; deviations -0.1, 0, 0.1 -> var = 0.02 / 2 = 0.01
    assert row["sensitivity_mean"] == pytest.approx(0.7)
    assert row["sensitivity_std"] == pytest.approx(0.1)
    # 0.90, 0.95, 1.00: mean 0.95, var = (0.0025 + 0 + 0.0025) / 2 -> std 0.05
    assert row["specificity_mean"] == pytest.approx(0.95)
    assert row["specificity_std"] == pytest.approx(0.05)
    # 0.91, 0.93, 0.98: mean 0.94, deviations -0.03, -0.01, 0.04 -> var 0.0026 / 2 = 0.0013
    assert row["accuracy_mean"] == pytest.approx(0.94)
    assert row["accuracy_std"] == pytest.approx(math.sqrt(0.0013))
    # 0.5, 0.6, 0.4: mean 0.5, std 0.1
    assert row["f1_mean"] == pytest.approx(0.5)
    assert row["f1_std"] == pytest.approx(0.1)
    assert row["auc_mean"] == pytest.approx(0.97)
    assert row["auc_std"] == pytest.approx(0.02)

    shifted = summary[(summary.experiment == "all_labels") & (summary.region == "image")
                      & (summary.threshold_name == "w/(1+w)")].iloc[0]
    assert shifted["sensitivity_mean"] == pytest.approx(0.7 - 0.03)
    assert shifted["sensitivity_std"] == pytest.approx(0.1)
    assert shifted["threshold"] == pytest.approx(10 / 11)

    human = summary[(summary.experiment == tables.HUMAN_EXPERIMENT) & (summary.region == "fov")].iloc[0]
    assert human["sensitivity_mean"] == pytest.approx(0.78)
    assert human["sensitivity_std"] == pytest.approx(0.01)
    assert math.isnan(human["auc_mean"]) and math.isnan(human["auc_std"])
    assert math.isnan(human["threshold"])


def test_summarize_single_image_std_is_zero():
    frame = pd.DataFrame(_metric_rows("all_labels"))
    summary = tables.summarize([frame[frame.image == "01"]])
    assert (summary["sensitivity_std"] == 0).all()
    assert (summary["n_images"] == 1).all()


def test_write_report_everything(inputs):
    out = inputs["tmp_path"] / "out"
    written = _run(inputs, out)
    for name in ("summary", "table1", *(figure.name for figure in FIGURES)):
        assert written[name].is_file(), name
    # no temporary files left behind
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]

    summary = pd.read_csv(out / "summary.tsv", sep="\t", dtype={"threshold_name": str})
    assert list(dict.fromkeys(summary["experiment"])) == [
        "all_labels", "synthetic", "reference_only", "extra_set", tables.HUMAN_EXPERIMENT]
    assert set(summary["threshold_name"]) == {"0.5", "w/(1+w)", "binary"}

    table = (out / "table1.md").read_text()
    for experiment, label in inputs["experiment_labels"].items():
        assert f"`{experiment}`" in table
        assert label in table
    assert "Measured (within FOV)" in table and "Measured (whole image)" in table
    # every measured cell, both regions, is the mean ± std of the metrics TSVs it was built from
    metrics = [pd.read_csv(path, sep="\t", dtype={"image": str, "threshold_name": str})
               for path in [*inputs["metrics_tsvs"].values(), inputs["human_tsv"]]]
    measured, expected = measured_table1(table), expected_table1(metrics)
    assert len(measured) == 4 * 2 * 2 + 2  # 4 experiments x regions x thresholds, the human per region
    assert measured == expected
    # the published table: one row per training set the paper has, in the paper's order
    published = table.split("## Paper's Table 1 (as published)")[1].split("\n## ")[0]
    rows = [line for line in published.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.split("|")[2].strip() for row in rows] == ["`all_labels`", "`synthetic`", "`reference_only`"]
    # measured means to 3 decimals: all_labels fov 0.5 -> 0.700 ± 0.100, 0.950 ± 0.050, ...
    fov_part, image_part = table.split("Measured (whole image)")
    all_labels_fov = [line for line in fov_part.splitlines() if "`all_labels`" in line and "| 0.5 |" in line]
    assert len(all_labels_fov) == 1
    line = all_labels_fov[0]
    for text in ("0.700 ± 0.100", "0.950 ± 0.050", "0.940 ± 0.036", "0.970 ± 0.020", "0.500 ± 0.100",
                 "0.60 ± 0.10 / 0.98 ± 0.01 / 0.94 ± 0.01"):
        assert text in line, text
    extra = [line for line in fov_part.splitlines() if "`extra_set`" in line]
    assert extra and all(line.rstrip().endswith("| — |") for line in extra)
    assert "w/(1+w) = 0.909" in fov_part
    # whole image: all_labels at 0.5 is shifted by 0.01
    assert "0.690 ± 0.100" in image_part
    human = [line for line in fov_part.splitlines() if tables.HUMAN_EXPERIMENT in line]
    assert len(human) == 1 and "0.780 ± 0.010" in human[0]

    heights = {}
    for figure in FIGURES:
        heights[figure.name] = _png_shape(written[figure.name])
    # synthetic examples: 2 kept images -> 2 rows of 3 panels with the images' 3:4 aspect
    h, w = heights["synthetic_examples"]
    assert h / w == pytest.approx((2.8 * 0.75 * 2 + 0.8) / (2.8 * 3), rel=0.03)
    # segmentations: 2 test images x (image, truth, 4 experiments)
    h, w = heights["segmentations"]
    assert h / w == pytest.approx((2.6 * 0.75 * 2 + 0.8) / (2.6 * 6), rel=0.03)
    # rejected: one row of 2 panels
    h, w = heights["rejected_synthetic"]
    assert h / w == pytest.approx((3.2 * 0.75 * 1 + 0.8) / (3.2 * 2), rel=0.03)


def test_synthetic_examples_rows_follow_kept_count(inputs, tmp_path):
    quality = pd.read_csv(inputs["quality_tsv"], sep="\t", dtype={"image": str})
    shapes = []
    for n_kept in (1, 2, 3):
        q = quality.copy()
        q["kept"] = [i < n_kept for i in range(len(q))]
        out = tmp_path / f"examples_{n_kept}.png"
        report_figures.plot_synthetic_examples(inputs["index_tsv"], q, out)
        shapes.append(_png_shape(out))
    assert len({w for _, w in shapes}) == 1
    assert shapes[0][0] < shapes[1][0] < shapes[2][0]
    # none kept: falls back to showing the rejected ones (all three rows)
    q = quality.copy()
    q["kept"] = False
    report_figures.plot_synthetic_examples(inputs["index_tsv"], q, tmp_path / "none.png")
    assert _png_shape(tmp_path / "none.png") == shapes[2]


def test_nothing_rejected_placeholder(inputs, tmp_path):
    quality = pd.read_csv(inputs["quality_tsv"], sep="\t", dtype={"image": str})
    quality["kept"] = True
    out = tmp_path / "rejected.png"
    report_figures.plot_rejected(inputs["index_tsv"], quality, out, threshold=1.0)
    h, w = _png_shape(out)
    assert w > h  # the wide one-panel message, not a grid of images


def test_missing_synthetic_inputs(inputs):
    out = inputs["tmp_path"] / "out_nosynth"
    metrics = {k: v for k, v in inputs["metrics_tsvs"].items() if k != "synthetic"}
    written = _run(inputs, out, quality_tsv=inputs["tmp_path"] / "does/not/exist.tsv",
                   metrics_tsvs=metrics, cyclegan_histories={}, mse_threshold=None,
                   unet_histories={k: v for k, v in inputs["unet_histories"].items() if k != "synthetic"})
    for figure in FIGURES:
        _png_shape(written[figure.name])
    table = (out / "table1.md").read_text()
    assert "`synthetic`" not in table.split("Paper's Table 1")[0]
    assert "0.62 ± 0.10" in table  # the published table is still shown
    written_none = _run(inputs, inputs["tmp_path"] / "out_none", quality_tsv=None, human_tsv=None,
                        cyclegan_histories={})
    for path in written_none.values():
        assert path.is_file()


def test_missing_metrics_is_an_error(inputs):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        _run(inputs, inputs["tmp_path"] / "bad", metrics_tsvs={"all_labels": inputs["tmp_path"] / "nope.tsv"})


def test_loss_curves_put_the_pretraining_before_the_fine_tuning(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(report_figures, "_save", lambda fig, path: figures.append(fig))
    losses = ["loss_G_A", "loss_G_B", "loss_D_A", "loss_D_B", "loss_cycle_A", "loss_cycle_B"]
    tune = pd.DataFrame({"epoch": [1, 2], **{c: [0.5, 0.4] for c in losses}})
    pre = pd.DataFrame({"epoch": [1, 2, 3], **{c: [1.0, 0.8, 0.6] for c in losses}})
    report_figures.plot_loss_curves({"22": tune}, {}, tmp_path / "a.png", pretrain_history=pre)
    report_figures.plot_loss_curves({"22": tune}, {}, tmp_path / "b.png")
    with_pre, without = figures[0].axes[0], figures[1].axes[0]
    dashed = [line for line in with_pre.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata())]
    assert len(dashed) == 3  # generator, discriminator, cycle
    for line in dashed:
        assert list(line.get_xdata()) == [-2, -1, 0] and list(line.get_ydata()) == [2.0, 1.6, 1.2]
    assert "pretraining" in with_pre.get_title() and "pretraining" not in without.get_title()
    assert not [line for line in without.get_lines() if line.get_linestyle() == "--"]


def test_table1_states_how_the_u_nets_predicted(inputs, tmp_path):
    """The prediction settings (tiles, stride, test-time augmentation) under Table 1's
    introduction; no sentence without them."""
    out = tmp_path / "predicted"
    _run(inputs, out, prediction={"patch_size": 64, "stride": 32, "tta": True})
    table = (out / "table1.md").read_text()
    sentence = ("Prediction: tiles of 64 at stride 32 blended with a Hann window, test-time augmentation "
                "over 8 flips and quarter turns.")
    assert f"\n\n{sentence}\n\n## Measured (within FOV)" in table
    summary = tables.summarize([pd.DataFrame(_metric_rows("all_labels"))])
    assert "\n\nPrediction: on the grid.\n\n## Measured" in tables.render_table1(
        summary, experiment_labels={}, prediction="Prediction: on the grid.")
    assert "Prediction:" not in tables.render_table1(summary, experiment_labels={})


def test_the_headline_has_each_experiments_auc_and_f1_and_who_segmented(inputs, tmp_path):
    """headline.rst (the front page's results): within the FOV, AUC and the F1 at w/(1+w)
    (mean ± std over the 3 test images), the second observer's binary F1 last, and the
    sentence of table1.md saying which experiment made the segmentations."""
    out = tmp_path / "headline"
    written = _run(inputs, out, out_headline=out / "headline.rst",
                   segmented_by={"experiments": ["synthetic"], "source": "final_experiment"})
    text = written["headline"].read_text()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    rows = {line.split("  ")[0]: line.split() for line in text.splitlines() if "``" in line and "±" in line}
    # all_labels: AUC 0.95, 0.97, 0.99; F1 at w/(1+w) within the FOV 0.5-0.02, 0.6-0.02, 0.4-0.02
    assert " ".join(rows["20 ground truths"][-6:]) == "0.970 ± 0.020 0.480 ± 0.100"
    assert " ".join(rows["1 ground truth + synthetic"][-6:]) == "0.870 ± 0.020 0.380 ± 0.100"  # offset 0.1
    assert list(rows)[-1] == "second human observer"
    assert rows["second human observer"][-5:] == ["—", "0.790", "±", "0.000", "(binary)"]  # no AUC
    assert "0.5 ±" not in text  # threshold 0.5 and the whole image left out
    assert "Segmentations from ``synthetic``: the config's final_experiment." in text


def test_vessel_fractions_show_every_segmented_image_and_the_labeled_tests_truth(inputs, monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(report_figures, "_save", lambda fig, path: drawn.append(fig))
    names = ["22", "23", "01", "02", "03"]
    table = pd.DataFrame({"name": names, "vessel_fraction": [0.1, 0.0, 0.2, 0.3, 0.25]})
    index = pd.read_csv(inputs["index_tsv"], sep="\t", dtype=str, keep_default_na=False)
    figure_inputs = report_figures.FigureInputs(
        index=index, quality=None, mse_threshold=None, scored_experiments=[], predictions_dir=tmp_path,
        segmentations={"synthetic": table}, cyclegan_histories={}, unet_histories={}, pretrain_history=None,
        experiment_labels=inputs["experiment_labels"])
    report_figures.draw_vessel_fractions(figure_inputs, tmp_path / "vessel_fractions.png")
    ax = drawn[0].axes[0]
    [ours, truth] = ax.get_lines()
    assert [tick.get_text() for tick in ax.get_xticklabels()] == names
    assert list(ours.get_ydata()) == [0.1, 0.0, 0.2, 0.3, 0.25]
    assert ours.get_label() == "1 ground truth + synthetic"
    expected = [np.nan, np.nan, *(_mask(i).mean() for i in (1, 2, 3))]  # 22, 23: unlabeled, no truth shown
    np.testing.assert_allclose(truth.get_ydata(), expected)
