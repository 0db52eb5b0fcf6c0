"""The whole Snakemake DAG, through the `snakemake` command, on tiny phantom data."""

import json

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from cyclesynth.evaluation.figure_registry import FIGURES
from helpers import TINY, expected_table1, measured_table1, planned_jobs, snakemake

pytestmark = pytest.mark.slow  # the whole workflow, through the `snakemake` command

# tiny_run (conftest.py): one finished run of tests/data/tiny.yaml for the whole session


def test_dry_run_plans_one_cyclegan_per_unlabeled_image(tmp_path):
    jobs = planned_jobs(snakemake(tmp_path, "-n").stdout)
    assert jobs["train_cyclegan"] == 2 and jobs["synthesize"] == 2
    assert jobs["train_unet"] == 4 and jobs["predict"] == 4 and jobs["evaluate"] == 4
    assert jobs["pseudo_label"] == 1  # self_trained's teacher, reference_only
    assert jobs["filter_synthetic"] == 1 and jobs["report"] == 1
    config = tmp_path / "more.yaml"
    config.write_text(TINY.read_text().replace("n_training: 3", "n_training: 6"))
    assert planned_jobs(snakemake(tmp_path, "-n", configfile=config).stdout)["train_cyclegan"] == 5


def test_index_and_dataset(tiny_run):
    index = pd.read_csv(tiny_run / "results/data/index.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert index["role"].tolist() == ["reference", "unlabeled", "unlabeled", "test", "test"]
    assert index["id"].tolist() == ["03", "04", "05", "01", "02"]


def test_synthetic_images_and_filter(tiny_run):
    for image_id in ("04", "05"):
        synthetic = iio.imread(tiny_run / f"results/synthetic/{image_id}.png")
        assert synthetic.shape == (64, 64, 3) and synthetic.dtype == np.uint8
        assert (tiny_run / f"results/cyclegan/{image_id}/generator.pt").stat().st_size > 1000
        history = pd.read_csv(tiny_run / f"results/cyclegan/{image_id}/history.tsv", sep="\t")
        assert history["epoch"].tolist() == [1, 2, 3] and np.isfinite(history["loss_cycle_A"]).all()
        assert not (tiny_run / f"results/checkpoints/cyclegan/{image_id}.pt").exists()
    quality = pd.read_csv(tiny_run / "results/synthetic/quality.tsv", sep="\t", dtype={"image": str})
    assert quality["image"].tolist() == ["04", "05"]
    assert quality["mse"].between(0, 4).all()
    assert (quality["kept"] == (quality["mse"] <= 3.0)).all()


def test_predictions_and_metrics(tiny_run):
    for experiment in ("all_labels", "synthetic", "reference_only"):
        for test_id in ("01", "02"):
            mask = iio.imread(tiny_run / f"results/predictions/{experiment}/{test_id}.png")
            probability = iio.imread(tiny_run / f"results/predictions/{experiment}/{test_id}_probability.png")
            assert mask.shape == probability.shape == (64, 64)
            assert set(np.unique(mask)) <= {0, 255} and probability.dtype == np.uint16
            np.testing.assert_array_equal(mask > 0, probability >= 32768)
        metrics = pd.read_csv(tiny_run / f"results/metrics/{experiment}.tsv", sep="\t", dtype={"image": str})
        assert len(metrics) == 2 * 2 * 2  # test images x regions x thresholds
        assert set(metrics["threshold_name"]) == {"0.5", "w/(1+w)"}
        assert set(metrics["region"]) == {"fov", "image"}
        for column in ("sensitivity", "specificity", "accuracy", "auc"):
            assert metrics[column].between(0, 1).all(), column
        counts = metrics[["tp", "fp", "tn", "fn"]].sum(axis=1)
        assert (counts[metrics["region"] == "image"] == 64 * 64).all()
        assert (counts[metrics["region"] == "fov"] < 64 * 64).all()
        acc = (metrics["tp"] + metrics["tn"]) / counts
        np.testing.assert_allclose(acc, metrics["accuracy"])


def test_report_outputs(tiny_run):
    summary = pd.read_csv(tiny_run / "results/metrics/summary.tsv", sep="\t")
    experiments = set(summary["experiment"])
    assert experiments == {"all_labels", "synthetic", "reference_only", "self_trained", "frangi", "human (2nd observer)"}
    assert (summary["n_images"] == 2).all()
    table = (tiny_run / "results/metrics/table1.md").read_text()
    # the measured cells (both regions) are the mean ± std of the per-image metrics they came from
    files = {e: "human.tsv" if e.startswith("human") else f"{e}.tsv" for e in experiments}
    metrics = [pd.read_csv(tiny_run / "results/metrics" / name, sep="\t", dtype={"image": str, "threshold_name": str})
               for name in files.values()]
    measured = measured_table1(table)
    assert {experiment for _, experiment, _ in measured} == experiments
    assert {region for region, _, _ in measured} == {"fov", "image"}
    assert measured == expected_table1(metrics)
    for text in ("all_labels", "synthetic", "reference_only", "human",
                 "zero labels: Frangi vesselness", "## Paired comparison", "## Self-training",
                 "| self_trained (`self_trained`) | reference_only (`reference_only`) |",
                 "Segmentations from `synthetic`: the config's final_experiment."):
        assert text in table
    # tiny.yaml's prediction settings (patches of 32)
    assert ("Prediction: tiles of 32 at stride 16 blended with a Hann window, test-time augmentation over 8 "
            "flips and quarter turns.") in table
    assert "tiles of 32 at stride 16, test-time augmentation on" in (
        tiny_run / "results/logs/predict/synthetic.log").read_text()
    for figure in FIGURES:
        data = (tiny_run / "results/figures" / figure.file).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_every_image_but_the_reference_is_segmented(tiny_run):
    folder = tiny_run / "results/segmentations/synthetic"
    table = pd.read_csv(folder / "segmentations.tsv", sep="\t", dtype={"name": str})
    assert table["name"].tolist() == ["04", "05", "01", "02"]  # unlabeled, then test images
    for name in table["name"]:
        assert iio.imread(folder / f"{name}_probability.png").dtype == np.uint16
        assert iio.imread(folder / f"{name}_overlay.png").shape == (64, 64, 3)
    assert not (tiny_run / "results/segmentations/all_labels").exists()  # segmentation.experiments: synthetic
    assert "`04_overlay.png`" in (tiny_run / "results/metrics/table1.md").read_text()


def test_the_teacher_pseudo_labels_the_unlabeled_images_for_its_student(tiny_run):
    folder = tiny_run / "results/pseudo_labels/reference_only"
    table = pd.read_csv(folder / "pseudo_labels.tsv", sep="\t", dtype={"id": str})
    assert table["id"].tolist() == ["04", "05"] and set(table["role"]) == {"unlabeled"}  # no test image
    for image_id in ("04", "05"):
        codes = iio.imread(folder / f"{image_id}_pseudo_label.png")
        assert codes.shape == (64, 64) and set(np.unique(codes)) <= {0, 128, 255}
        assert iio.imread(folder / f"{image_id}_probability.png").dtype == np.uint16
    assert "from 3 images" in (tiny_run / "results/logs/train_unet/self_trained.log").read_text()
    assert "band 0.1" in (tiny_run / "results/logs/pseudo_label/reference_only.log").read_text()


def test_rerun_is_a_no_op_and_report_html(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
    snakemake(tiny_run, "--report", "results/report.html")
    html = (tiny_run / "results/report.html")
    assert html.stat().st_size > 10000
    # the front page: the headline table (AUC and F1 at w/(1+w) within the FOV, as in summary.tsv)
    # and which experiment made the segmentations
    page = _front_page(html)
    summary = pd.read_csv(tiny_run / "results/metrics/summary.tsv", sep="\t", dtype={"threshold_name": str})
    rows = summary[(summary["region"] == "fov") & (summary["threshold_name"] == "w/(1+w)")]
    assert len(rows) == 4
    for row in rows.itertuples():
        cells = f"<td>{row.auc_mean:.3f} ± {row.auc_std:.3f}</td>\n<td>{row.f1_mean:.3f} ± {row.f1_std:.3f}</td>"
        assert f'<tt class="docutils literal">{row.experiment}</tt></td>\n{cells}' in page, row.experiment
    assert 'Segmentations from <tt class="docutils literal">synthetic</tt>' in page
    # without headline.rst (results of an older version, or a report of part of the DAG) the
    # front page is the introduction alone
    headline = tiny_run / "results/metrics/headline.rst"
    headline.rename(tiny_run / "headline.rst.away")
    try:
        snakemake(tiny_run, "--report", "partial.html")
    finally:
        (tiny_run / "headline.rst.away").rename(headline)
    page = _front_page(tiny_run / "partial.html")
    assert "dataset source phantom" in page and "<table" not in page


def _front_page(html) -> str:
    """The front page's HTML in a Snakemake report (a JSON string in a script)."""
    text = html.read_text()
    start = text.index("var workflow_desc = ") + len("var workflow_desc = ")
    return json.JSONDecoder().raw_decode(text, start)[0]


def test_every_job_left_a_log_and_a_benchmark(tiny_run):
    logs = list((tiny_run / "results/logs").rglob("*.log"))
    benchmarks = list((tiny_run / "results/benchmarks").rglob("*.tsv"))
    # 5 phantom images + 5 checks + index + 2 cyclegan + 2 synthesize + filter
    # + 4x(train, predict, evaluate) + pseudo_label + human + frangi + paired comparison + segment
    # (synthetic) + report
    assert len(logs) == len(benchmarks) == 34
    assert "saved generator" in (tiny_run / "results/logs/train_cyclegan/04.log").read_text()


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr
