"""cyclegan.init pretrained through the `snakemake` command on tiny phantom data: one
pretrain_cyclegan job, per-image jobs that fine-tune its networks, and what reruns after
config edits."""

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from helpers import TINY, planned_jobs, snakemake

pytestmark = pytest.mark.slow  # one real run of the workflow with pretraining, dry runs against it

TARGET = "results/synthetic/quality.tsv"


def pretrained_config(edit=None) -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["dataset"]["phantom"]["n_training"] = 4  # reference 03; unlabeled 04, 05, 06
    config["cyclegan"].update(
        init="pretrained",
        pretrain={"images": 2, "epochs": 1, "epochs_decay": 1},
        finetune={"epochs": 1, "epochs_decay": 0},
    )
    if edit is not None:
        edit(config)
    return config


def write(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pretrained")
    configfile = write(pretrained_config(), workdir / "config.yaml")
    snakemake(workdir, "--cores", "2", TARGET, configfile=configfile)
    return workdir


def dry_run(workdir: Path, tmp_path: Path, edit) -> dict[str, int]:
    result = snakemake(workdir, "-n", TARGET, configfile=write(pretrained_config(edit), tmp_path / "edited.yaml"))
    if "Nothing to be done" in result.stdout + result.stderr:
        return {}
    jobs = planned_jobs(result.stdout)
    jobs.pop("total", None)
    return jobs


def test_one_pretraining_on_the_first_images_then_fine_tuning(pretrained_run):
    results = pretrained_run / "results"
    pretrain_log = (results / "logs/pretrain_cyclegan.log").read_text()
    assert "pooled from images 04, 05;" in pretrain_log and "1+1 epochs" in pretrain_log
    history = pd.read_csv(results / "cyclegan/pretrained/history.tsv", sep="\t")
    assert history["epoch"].tolist() == [1, 2]
    assert (results / "benchmarks/pretrain_cyclegan.tsv").is_file()
    assert not (results / "checkpoints/cyclegan/pretrained.pt").exists()
    pretrained = torch.load(results / "cyclegan/pretrained/networks.pt", weights_only=False)
    assert set(pretrained["networks"]) == {"netG_A", "netG_B", "netD_A", "netD_B"}

    for image in ("04", "05", "06"):  # 06 was not pooled, it is fine-tuned all the same
        log = (results / f"logs/train_cyclegan/{image}.log").read_text()
        assert "fine-tuning results/cyclegan/pretrained/networks.pt" in log
        assert "starting from pretrained weights (results/cyclegan/pretrained/networks.pt)" in log
        assert pd.read_csv(results / f"cyclegan/{image}/history.tsv", sep="\t")["epoch"].tolist() == [1]
        generator = torch.load(results / f"cyclegan/{image}/generator.pt", weights_only=False)["state_dict"]
        start = pretrained["networks"]["netG_A"]
        assert generator.keys() == start.keys()
        assert any(not torch.equal(generator[k], start[k]) for k in start)  # it was trained further
    quality = pd.read_csv(results / "synthetic/quality.tsv", sep="\t", dtype={"image": str})
    assert quality["image"].tolist() == ["04", "05", "06"]


def test_same_config_reruns_nothing(pretrained_run, tmp_path):
    assert dry_run(pretrained_run, tmp_path, None) == {}


def test_fine_tuning_setting_reruns_fine_tuning_but_not_pretraining(pretrained_run, tmp_path):
    jobs = dry_run(pretrained_run, tmp_path, lambda c: c["cyclegan"]["finetune"].update(epochs=2))
    assert jobs == {"train_cyclegan": 3, "synthesize": 3, "filter_synthetic": 1}


def test_pretraining_setting_reruns_pretraining_and_every_fine_tuning(pretrained_run, tmp_path):
    jobs = dry_run(pretrained_run, tmp_path, lambda c: c["cyclegan"]["pretrain"].update(epochs=2))
    assert jobs == {"pretrain_cyclegan": 1, "train_cyclegan": 3, "synthesize": 3, "filter_synthetic": 1}


def test_a_new_image_outside_the_pretraining_adds_one_fine_tuning(pretrained_run, tmp_path):
    jobs = dry_run(pretrained_run, tmp_path, lambda c: c["dataset"]["phantom"].update(n_training=5))
    assert "pretrain_cyclegan" not in jobs
    assert jobs["train_cyclegan"] == 1 and jobs["synthesize"] == 1 and jobs["check_image"] == 1


def test_back_to_scratch_retrains_every_image_without_pretraining(pretrained_run, tmp_path):
    jobs = dry_run(pretrained_run, tmp_path, lambda c: c["cyclegan"].update(init="scratch"))
    assert jobs == {"train_cyclegan": 3, "synthesize": 3, "filter_synthetic": 1}


def test_unknown_pretraining_image_is_named_before_any_job(tmp_path):
    configfile = write(pretrained_config(lambda c: c["cyclegan"]["pretrain"].update(images=["04", "99"])),
                       tmp_path / "bad.yaml")
    result = snakemake(tmp_path, "-n", configfile=configfile, check=False)
    assert result.returncode != 0
    assert "cyclegan.pretrain.images: '99' not among the unlabeled images (04, 05, 06)" in result.stdout + result.stderr


def test_report_gets_the_pretraining_history(pretrained_run, tmp_path):
    configfile = write(pretrained_config(), tmp_path / "same.yaml")
    result = snakemake(pretrained_run, "-n", "-p", configfile=configfile)
    report_command = next(line for line in result.stdout.splitlines() if "cyclesynth report" in line)
    assert "--pretrain-history results/cyclegan/pretrained/history.tsv" in report_command
    assert planned_jobs(result.stdout).get("pretrain_cyclegan") is None  # done already
