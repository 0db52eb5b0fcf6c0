"""The validation role: labeled training images held out of everything (no CycleGAN, no
training, not in all_labels) and scored in a table of their own."""

import pandas as pd
import pytest

from cyclesynth.data.datasets import DatasetError, RoleSettings, assign_roles, validation_ids
from cyclesynth.segmentation.experiments import training_pairs
from helpers import TINY, planned_jobs, snakemake


def _table(n_training=4, n_test=1):
    rows = [
        {"id": f"{i:02d}", "split": "training", "image": f"t{i}.tif", "label": f"l{i}.gif", "fov": f"m{i}.gif",
         "label2": ""}
        for i in range(1, n_training + 1)
    ]
    rows += [
        {"id": f"9{i}", "split": "test", "image": f"s{i}.tif", "label": f"sl{i}.gif", "fov": f"sm{i}.gif", "label2": ""}
        for i in range(n_test)
    ]
    return pd.DataFrame(rows)


def test_validation_images_are_held_out_of_synthesis_and_all_labels():
    index = assign_roles(_table(), RoleSettings(reference="01", validation=("03",)))
    assert dict(zip(index["id"], index["role"])) == {
        "01": "reference", "02": "unlabeled", "03": "validation", "04": "unlabeled", "90": "test"
    }
    assert index.loc[index["id"] == "03", "unlabeled"].item() is False or not index.loc[index["id"] == "03", "unlabeled"].item()
    assert index.loc[index["unlabeled"], "id"].tolist() == ["02", "04"]
    assert validation_ids(index) == ["03"]
    assert [p.image for p in training_pairs(index, "all_labels")] == ["t1.tif", "t2.tif", "t4.tif"]
    # max_unlabeled counts the unlabeled images only
    index = assign_roles(_table(), RoleSettings(reference="01", validation=("02",), max_unlabeled=1))
    assert index.loc[index["unlabeled"], "id"].tolist() == ["03"]


@pytest.mark.parametrize(
    "validation, message",
    [
        (("07",), "config key dataset.validation: ['07'] not among the labeled training images"),
        (("01",), "config key dataset.validation: '01' is the reference; the reference cannot be held out"),
        (("02", "03", "04"), "holding out ['02', '03', '04'] leaves no unlabeled training image"),
    ],
)
def test_bad_validation_ids_name_the_key(validation, message):
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        assign_roles(_table(), RoleSettings(reference="01", validation=validation))


def test_a_samplesheet_validation_row_needs_a_label(tmp_path):
    from cyclesynth.data.samplesheet import SamplesheetError, samplesheet_index

    for name in ("a.png", "b.png", "c.png", "la.png", "lc.png"):
        (tmp_path / name).write_bytes(b"")
    sheet = tmp_path / "s.tsv"
    sheet.write_text("id\timage\tlabel\trole\na\ta.png\tla.png\treference\nb\tb.png\t\tvalidation\nc\tc.png\tlc.png\tunlabeled\n")
    with pytest.raises(SamplesheetError, match=r"row 2 \(id 'b'\), column label: a validation image needs a label"):
        samplesheet_index(sheet, RoleSettings())
    sheet.write_text("id\timage\tlabel\trole\na\ta.png\tla.png\treference\nb\tb.png\tla.png\tvalidation\nc\tc.png\tlc.png\tunlabeled\n")
    index = samplesheet_index(sheet, RoleSettings())
    assert dict(zip(index["id"], index["role"])) == {"a": "reference", "b": "validation", "c": "unlabeled"}
    assert index["unlabeled"].tolist() == [False, False, True]


@pytest.mark.slow
def test_the_dag_never_trains_on_a_validation_image_and_scores_it_apart(tmp_path):
    """Through the snakemake command: the tiny phantoms (reference 03, unlabeled 04 and 05,
    tests 01 and 02) with 05 held out: no CycleGAN for 05, one evaluate_validation job per
    experiment, and a real run of one experiment scores 05 alone in its own table."""
    held_out = ["--config", "dataset={validation: ['05']}"]
    result = snakemake(tmp_path, "-n", "-p", *held_out)
    jobs = planned_jobs(result.stdout)
    assert "--validation-metrics all_labels=results/validation/metrics/all_labels.tsv" in result.stdout
    assert "--validation-paired results/validation/metrics/paired.tsv" in result.stdout
    assert jobs["train_cyclegan"] == 1 and "results/cyclegan/04/" in result.stdout
    assert "results/cyclegan/05/" not in result.stdout and "results/synthetic/05.png" not in result.stdout
    assert jobs["evaluate_validation"] == jobs["evaluate"] == jobs["train_unet"]
    # the teacher pseudo-labels 04 only (05 held out, the tests not unlabeled)
    assert "results/pseudo_labels/reference_only/04_pseudo_label.png" in result.stdout
    assert "05_pseudo_label" not in result.stdout and "01_pseudo_label" not in result.stdout
    snakemake(tmp_path, *held_out, "--cores", "2", "results/validation/metrics/reference_only.tsv")
    scores = pd.read_csv(tmp_path / "results/validation/metrics/reference_only.tsv", sep="\t", dtype={"image": str})
    assert set(scores["image"]) == {"05"}
    assert scores.loc[scores["region"] == "fov", "auc"].between(0, 1).all()
    assert not (tmp_path / "results/cyclegan").exists()  # reference_only needs no CycleGAN
    assert (tmp_path / "results/predictions/reference_only/01_probability.png").exists()  # one prediction job
    log = (tmp_path / "results/logs/evaluate_validation/reference_only.log").read_text()
    assert "evaluated reference_only on 1 validation images" in log


def test_the_validation_section_of_table1():
    from cyclesynth.evaluation.validation_report import render_validation

    index = assign_roles(_table(), RoleSettings(reference="01", validation=("03", "04")))
    rows = []
    for experiment, aucs in (("reference_only", (0.80, 0.90)), ("synthetic", (0.85, 0.97))):
        for image, auc in zip(("03", "04"), aucs):
            rows.append({"experiment": experiment, "image": image, "region": "fov", "threshold_name": "0.5",
                         "threshold": 0.5, "sensitivity": 0.7, "specificity": 0.9, "accuracy": 0.9, "f1": 0.6,
                         "auc": auc})
    tables = [pd.DataFrame([r for r in rows if r["experiment"] == e]) for e in ("reference_only", "synthetic")]
    text = render_validation(index, tables, None, {"synthetic": "Synthetic"})
    assert "2 labeled training image(s) held out" in text and "`03`, `04`" in text
    assert "| Synthetic | `synthetic` | 0.5 | 2 |" in text
    assert "0.910 ± 0.085" in text  # mean and sample std of 0.85 and 0.97
