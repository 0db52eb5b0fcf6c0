"""Incremental reruns: `snakemake -n` after config edits plans exactly the affected jobs.

One tiny run is made once; every test then edits a copy of its config and asks Snakemake
(dry run) what it would rerun.
"""

from pathlib import Path

import pytest
import yaml

from helpers import TINY, planned_jobs, snakemake

pytestmark = pytest.mark.slow  # dry runs against the session's finished workflow run (tiny_run)


@pytest.fixture
def finished(tiny_run):
    """The session's finished tiny run (conftest.py): these tests only dry-run against it."""
    return tiny_run


def dry_run(workdir: Path, tmp_path: Path, edit) -> dict[str, int]:
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", configfile=path)
    if "Nothing to be done" in result.stdout + result.stderr:
        return {}
    jobs = planned_jobs(result.stdout)
    jobs.pop("all", None)
    jobs.pop("total", None)
    return jobs


def test_nothing_changed_reruns_nothing(finished, tmp_path):
    assert dry_run(finished, tmp_path, lambda c: None) == {}


def test_unet_setting_reruns_segmentation_but_no_cyclegan(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["unet"].update(lr=0.002))
    # the paired comparison reads the one-label experiments' metrics; the Frangi row needs no U-Net;
    # the teacher (reference_only) labels the unlabeled images again
    assert jobs == {
        "train_unet": 4, "predict": 4, "evaluate": 4, "pseudo_label": 1, "paired_comparison": 1, "segment": 1,
        "report": 1,
    }


def test_cyclegan_setting_reruns_every_cyclegan_and_what_follows(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["cyclegan"].update(lr=0.0003))
    assert jobs == {
        "train_cyclegan": 2, "synthesize": 2, "filter_synthetic": 1,
        "train_unet": 1, "predict": 1, "evaluate": 1, "paired_comparison": 1, "segment": 1, "report": 1,
    }


def test_filter_setting_reruns_only_the_filter_and_synthetic_unet(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["filter"].update(max_mse=3.5))
    assert jobs == {
        "filter_synthetic": 1, "train_unet": 1, "predict": 1, "evaluate": 1, "paired_comparison": 1, "segment": 1,
        "report": 1,
    }


def test_segmentation_settings_rerun_only_the_segmentations(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c.update(segmentation={"threshold": "0.5"}))
    assert jobs == {"segment": 1, "report": 1}
    jobs = dry_run(finished, tmp_path, lambda c: c.update(segmentation={"experiments": ["synthetic", "all_labels"]}))
    assert jobs == {"segment": 1, "report": 1}  # the new experiment's segmentation; the report lists it


def test_a_change_of_a_teacher_retrains_its_students(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["experiments"]["reference_only"].update(epochs=7))
    assert jobs["train_unet"] == 2 and jobs["pseudo_label"] == 1  # reference_only, then self_trained
    jobs = dry_run(finished, tmp_path, lambda c: c["experiments"]["self_trained"]["pseudo_labels"].update(band=0.2))
    assert jobs["pseudo_label"] == 1 and jobs["train_unet"] == 1 and jobs["predict"] == 1
    jobs = dry_run(finished, tmp_path, lambda c: c["experiments"]["self_trained"]["pseudo_labels"].update(
        teacher="synthetic"))
    assert jobs["pseudo_label"] == 1 and jobs["train_unet"] == 1  # synthetic's pseudo-labels, the student


def test_adding_an_unlabeled_image_adds_exactly_one_cyclegan(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["dataset"]["phantom"].update(n_training=4))
    assert jobs["train_cyclegan"] == 1 and jobs["synthesize"] == 1
    assert jobs["generate_phantom_training"] == 1 and "generate_phantom_test" not in jobs
    assert jobs["check_image"] == 1


def test_changing_the_reference_reruns_everything_downstream(finished, tmp_path):
    jobs = dry_run(finished, tmp_path, lambda c: c["dataset"].update(reference="04"))
    assert jobs["train_cyclegan"] == 2 and jobs["synthesize"] == 2
    assert jobs["train_unet"] == 4 and jobs["prepare_dataset"] == 1 and jobs["pseudo_label"] == 1
    assert jobs["frangi"] == 1  # its threshold comes from the reference


def test_prediction_settings_rerun_prediction_segmentation_pseudo_labels_and_their_students(finished, tmp_path):
    # the teacher's pseudo-labels are predicted so too: the student (self_trained) is retrained
    rerun = {"predict": 4, "evaluate": 4, "paired_comparison": 1, "segment": 1, "report": 1, "pseudo_label": 1,
             "train_unet": 1}
    jobs = dry_run(finished, tmp_path, lambda c: c.update(prediction={"stride": 32, "tta": True}))
    assert jobs == rerun
    jobs = dry_run(finished, tmp_path, lambda c: c.update(prediction={"stride": 16, "tta": False}))
    assert jobs == rerun
    # half of the 32-pixel patch is the tiny run's stride 16: the same tiles, nothing to redo
    assert dry_run(finished, tmp_path, lambda c: c.update(prediction={"stride": "half", "tta": True})) == {}
