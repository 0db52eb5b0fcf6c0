"""Tests on the real DRIVE dataset (skipped when it is absent; CI points DRIVE_DIR at it)."""

import os
import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from cyclesynth.data.datasets import RoleSettings, assign_roles, plan_drive
from cyclesynth.data.images import read_binary, read_rgb

from helpers import ROOT, planned_jobs, snakemake, unet_priorities

DRIVE_HEIGHT, DRIVE_WIDTH = 584, 565


def _raw(path) -> np.ndarray:
    """Pixel values as stored, through imageio's Pillow plugin (DRIVE's TIFFs are LZW)."""
    return np.asarray(iio.imread(path, plugin="pillow", index=0))


def test_reader_finds_20_training_and_20_test_images_with_all_annotations(drive):
    table = plan_drive(drive)
    training, test = table[table["split"] == "training"], table[table["split"] == "test"]
    assert training["id"].tolist() == [str(i) for i in range(21, 41)]
    assert test["id"].tolist() == [f"{i:02d}" for i in range(1, 21)]
    assert (table["label"] != "").all() and (table["fov"] != "").all()
    assert (test["label2"] != "").all() and (training["label2"] == "").all()
    for row in table.itertuples():
        assert row.label.endswith(f"{row.id}_manual1.gif")
        assert row.fov.endswith(f"{row.id}_{row.split}_mask.gif")


def test_images_are_565x584_rgb_and_labels_and_masks_binary(drive):
    table = plan_drive(drive)
    for row in table.itertuples():
        image = read_rgb(row.image)
        assert image.shape == (DRIVE_HEIGHT, DRIVE_WIDTH, 3), row.image
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
        for path in (row.label, row.fov):
            raw = _raw(path)
            assert raw.shape == (DRIVE_HEIGHT, DRIVE_WIDTH), path
            assert set(np.unique(raw).tolist()) == {0, 255}, path
        label, fov = read_binary(row.label), read_binary(row.fov)
        # vessels cover ~8-16% of the image, the FOV ~70%; labelled vessels lie in the FOV
        assert 0.05 < label.mean() < 0.2 and 0.6 < fov.mean() < 0.8
        assert (label & ~fov).sum() < 0.01 * label.sum()
        if row.label2:
            second = read_binary(row.label2)
            assert second.shape == (DRIVE_HEIGHT, DRIVE_WIDTH) and 0.05 < second.mean() < 0.2
            # the second observer's GIFs decode as RGB in {2, 4, 252, 254}: read as binary
            assert set(np.unique(_raw(row.label2))) <= {2, 4, 252, 254}


def test_roles_of_the_paper_protocol(drive):
    index = assign_roles(plan_drive(drive), RoleSettings(reference="21"))
    assert index.loc[index["role"] == "reference", "id"].tolist() == ["21"]
    assert index.loc[index["unlabeled"], "id"].tolist() == [str(i) for i in range(22, 41)]
    assert (index.loc[index["split"] == "test", "role"] == "test").all()
    with_test = assign_roles(plan_drive(drive), RoleSettings(reference="21", include_test_as_unlabeled=True))
    assert with_test["unlabeled"].sum() == 39


def _direct_human_row(drive) -> dict[str, float]:
    """Second observer against the first within the FOV, straight from the raw pixels."""
    per_image = []
    for i in range(1, 21):
        truth = _raw(drive / f"test/1st_manual/{i:02d}_manual1.gif") > 127
        second = _raw(drive / f"test/2nd_manual/{i:02d}_manual2.gif")
        second = (second[..., 0] if second.ndim == 3 else second) > 127
        fov = _raw(drive / f"test/mask/{i:02d}_test_mask.gif") > 127
        t, p = truth[fov], second[fov]
        tp, tn = np.sum(t & p), np.sum(~t & ~p)
        per_image.append((tp / t.sum(), tn / (~t).sum(), (tp + tn) / t.size))
    sens, spec, acc = np.mean(per_image, axis=0)
    return {"sensitivity": sens, "specificity": spec, "accuracy": acc}


def test_human_row_matches_a_direct_computation(drive, tmp_path):
    index = tmp_path / "index.tsv"
    out = tmp_path / "human.tsv"
    command = [sys.executable, "-m", "cyclesynth"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([*command, "prepare-dataset", "--root", str(drive), "--out", str(index)], check=True, env=env)
    subprocess.run([*command, "evaluate-human", "--index", str(index), "--out", str(out)], check=True, env=env)
    table = pd.read_csv(out, sep="\t", dtype={"image": str})
    fov = table[table["region"] == "fov"]
    assert sorted(fov["image"]) == [f"{i:02d}" for i in range(1, 21)]
    expected = _direct_human_row(drive)
    for metric, value in expected.items():
        assert fov[metric].mean() == pytest.approx(value, abs=1e-12), metric
    # the figures the literature quotes for the second observer (shared/data/README.md)
    assert round(fov["sensitivity"].mean(), 4) == 0.7760
    assert round(fov["specificity"].mean(), 4) == 0.9725
    assert round(fov["accuracy"].mean(), 4) == 0.9473


@pytest.mark.slow
@pytest.mark.parametrize(
    "configfile, teachers, priorities",
    [
        # reference_augmented teaches self_trained, which teaches self_trained_2
        ("config/drive.yaml", 2, {"reference_augmented": 2, "self_trained": 1}),
        # reference_geometric_long (in place of self_trained_2's U-Net) teaches self_trained
        ("config/drive-cpu.yaml", 1, {"reference_geometric_long": 1}),
        ("config/drive-gpu.yaml", 2, {"reference_augmented": 2, "self_trained": 1}),
    ],
)
def test_drive_presets_plan_19_cyclegans_and_8_unets(drive, tmp_path, configfile, teachers, priorities):
    done = snakemake(tmp_path, "-n", "--config", f"dataset={{root: {drive}}}", configfile=ROOT / configfile)
    counts = planned_jobs(done.stdout)
    assert counts["train_cyclegan"] == 19 and counts["synthesize"] == 19
    assert counts["check_image"] == 40
    # all_labels, synthetic, reference_only, reference_geometric, reference_augmented, synthetic_augmented,
    # self_trained, and self_trained_2 (drive.yaml, drive-gpu.yaml) or reference_geometric_long (drive-cpu)
    assert counts["train_unet"] == 8 and counts["predict"] == 8 and counts["evaluate"] == 8
    assert counts["pseudo_label"] == teachers
    assert counts["frangi"] == 1 and counts["paired_comparison"] == 1
    # the teachers' U-Nets start first (the longest chain), each by its number of rounds to come
    assert unet_priorities(done.stdout) == priorities


@pytest.mark.slow
def test_drive_gpu_preset_plans_the_papers_networks_pretrained_then_fine_tuned(drive, tmp_path):
    """config/drive-gpu.yaml: one pretraining and 19 fine-tunings with the paper's networks and
    preprocessing (ngf 64, 9 blocks, 70x70 D, 286/256 resize-crop), U-Nets of base 64, depth 4,
    batch 64, every GPU job asking for the GPU."""
    import json

    done = snakemake(
        tmp_path, "-n", "-p", "--config", f"dataset={{root: {drive}}}", configfile=ROOT / "config/drive-gpu.yaml"
    )
    counts = planned_jobs(done.stdout)
    assert counts["pretrain_cyclegan"] == 1 and counts["train_cyclegan"] == 19 and counts["train_unet"] == 8
    settings = [json.loads(s) for s in re.findall(r"cyclesynth train-cyclegan .*?--settings '(\{.*?\})'", done.stdout)]
    assert len(settings) == 19
    for s in settings:
        assert (s["ngf"], s["ndf"], s["n_blocks"], s["n_layers_d"]) == (64, 64, 9, 3)
        assert (s["preprocess"], s["load_size"], s["crop_size"], s["batch_size"]) == ("resize_crop", 286, 256, 4)
        assert (s["precision"], s["epochs"], s["epochs_decay"]) == ("tf32", 1, 1)
    pretrain = json.loads(re.search(r"pretrain-cyclegan .*?--settings '(\{.*?\})'", done.stdout)[1])
    assert (pretrain["ngf"], pretrain["epochs"], pretrain["epochs_decay"]) == (64, 2, 1)
    unets = [json.loads(s) for s in re.findall(r"train-unet .*?--settings '(\{.*?\})'", done.stdout)]
    assert len(unets) == 8
    for s in unets:
        assert (s["base_channels"], s["depth"], s["batch_size"], s["precision"]) == (64, 4, 64, "tf32")
    blocks = re.split(r"\n *rule ", done.stdout)
    for rule in ("pretrain_cyclegan", "train_cyclegan", "train_unet"):
        assert all(re.search(r"resources:.*\bgpu=1\b", b) for b in blocks if b.startswith(rule + ":")), rule


@pytest.mark.slow
def test_drive_preset_without_root_names_the_key(tmp_path):
    done = snakemake(tmp_path, "-n", configfile=ROOT / "config/drive.yaml", check=False)
    assert done.returncode != 0
    assert "config key dataset.root: required when dataset.source is 'drive'" in done.stdout + done.stderr
    assert "--config dataset='{root: /path/to/DRIVE}'" in done.stdout + done.stderr
