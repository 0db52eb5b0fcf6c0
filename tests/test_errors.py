"""Bad input meets a clear message through the `snakemake` command, before any training.

Each test builds a small dataset in the DRIVE layout (or uses the tiny phantom config),
breaks one thing, runs snakemake as a user would and asserts the message: the file or
config key it names and what was expected. Parse-time problems are caught by a dry run;
problems that need the pixels (sizes, binary labels, truncated files) by the check_image
jobs, which run before any training job.
"""

import subprocess
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from cyclesynth.data.phantom.io import write_phantom_dataset
from helpers import TINY, snakemake

pytestmark = pytest.mark.slow  # every test goes through the `snakemake` command (dry runs and real ones)



def run(workdir: Path, *args: str, config: dict | None = None, configfile: Path = TINY) -> subprocess.CompletedProcess:
    """snakemake in ``workdir`` with the tiny settings plus ``config`` (written to a file)."""
    configfiles = [configfile]
    if config is not None:
        extra = workdir / "extra.yaml"
        extra.write_text(yaml.safe_dump(config))
        configfiles.append(extra)
    return snakemake(workdir, *args, configfile=configfiles, check=False)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def drive_config(root: Path, **dataset) -> dict:
    return {"dataset": {"source": "drive", "root": str(root), **dataset}}


@pytest.fixture
def dataset(tmp_path) -> Path:
    """3 training + 1 test images of 64x64 in the DRIVE layout (reference 02)."""
    root = tmp_path / "DRIVE"
    write_phantom_dataset(root, n_training=3, n_test=1, height=64, width=64, seed=3)
    return root


def dry_run_fails(tmp_path, config, *expected: str, configfile: Path = TINY) -> str:
    result = run(tmp_path, "-n", config=config, configfile=configfile)
    text = output(result)
    assert result.returncode != 0, text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return text


def checks_fail(tmp_path, config, *expected: str) -> str:
    """A real run: a check_image job fails with the message; no training job started."""
    result = run(tmp_path, "--cores", "2", config=config)
    text = output(result)
    assert result.returncode != 0, text
    logs = "".join(path.read_text() for path in (tmp_path / "results/logs/check_image").glob("*.log"))
    for fragment in expected:
        assert fragment in logs, f"{fragment!r} not in the check_image logs:\n{logs}\n{text}"
    assert "check_image" in text and "Error in rule check_image" in text
    assert not (tmp_path / "results/logs/train_cyclegan").exists()
    assert not (tmp_path / "results/logs/train_unet").exists()
    return logs


# ----------------------------------------------------------------------------- the dataset


def test_dataset_root_missing(tmp_path):
    dry_run_fails(
        tmp_path, drive_config(tmp_path / "nowhere"),
        f"dataset root {tmp_path / 'nowhere'} does not exist or is not a folder (config key dataset.root)",
    )  # fmt: skip


def test_dataset_root_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    dry_run_fails(
        tmp_path, drive_config(tmp_path / "empty"),
        f"dataset root {tmp_path / 'empty'} holds no images",
        "training/images/<id>_training.tif",
    )  # fmt: skip


def test_reference_without_its_label(tmp_path, dataset):
    (dataset / "training/1st_manual/02_manual1.gif").unlink()
    dry_run_fails(
        tmp_path, drive_config(dataset, reference="02"),
        "config key dataset.reference: '02' is not a labeled training image; labeled training ids are ['03', '04']",
    )  # fmt: skip


def test_test_image_without_its_label(tmp_path, dataset):
    (dataset / "test/1st_manual/01_manual1.gif").unlink()
    dry_run_fails(
        tmp_path, drive_config(dataset),
        f"image {dataset / 'test/images/01_test.tif'} has no label "
        f"(expected {dataset / 'test/1st_manual/01_manual1.gif'})",
    )  # fmt: skip


def test_image_without_its_fov_mask(tmp_path, dataset):
    (dataset / "training/mask/03_training_mask.gif").unlink()
    dry_run_fails(
        tmp_path, drive_config(dataset),
        f"image {dataset / 'training/images/03_training.tif'} has no FOV mask "
        f"(expected {dataset / 'training/mask/03_training_mask.gif'})",
    )  # fmt: skip


def test_label_without_its_image(tmp_path, dataset):
    (dataset / "training/images/04_training.tif").unlink()
    dry_run_fails(
        tmp_path, drive_config(dataset),
        "labels or masks without their image",
        str(dataset / "training/1st_manual/04_manual1.gif"),
        str(dataset / "training/mask/04_training_mask.gif"),
    )  # fmt: skip


def test_reference_not_among_the_labeled_images(tmp_path, dataset):
    dry_run_fails(
        tmp_path, drive_config(dataset, reference="99"),
        "config key dataset.reference: '99' is not a labeled training image; labeled training ids are ['02', '03', '04']",
    )  # fmt: skip


def test_no_unlabeled_images(tmp_path):
    root = tmp_path / "DRIVE"
    write_phantom_dataset(root, n_training=1, n_test=1, height=64, width=64, seed=3)
    dry_run_fails(tmp_path, drive_config(root), "no unlabeled images", "dataset.include_test_as_unlabeled")


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """One run (--keep-going) over a dataset with a defect per image: the reference's label
    of another size, a label that is not binary, a truncated image, a grayscale test image."""
    workdir = tmp_path_factory.mktemp("broken")
    root = workdir / "DRIVE"
    write_phantom_dataset(root, n_training=3, n_test=1, height=64, width=64, seed=3)
    iio.imwrite(root / "training/1st_manual/02_manual1.gif", np.zeros((60, 64), np.uint8), plugin="pillow", extension=".gif")
    values = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
    iio.imwrite(root / "training/1st_manual/03_manual1.gif", values, plugin="pillow", extension=".gif")
    image = root / "training/images/04_training.tif"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    test_image = root / "test/images/01_test.tif"
    grey = iio.imread(test_image, plugin="pillow").mean(axis=2).astype(np.uint8)
    iio.imwrite(test_image, grey, plugin="pillow", extension=".tif")
    result = run(workdir, "--cores", "2", "--keep-going", config=drive_config(root))
    return workdir, root, result


def _check_log(workdir: Path, image_id: str) -> str:
    return (workdir / f"results/logs/check_image/{image_id}.log").read_text()


def test_broken_images_stop_the_run_before_any_training(broken_run):
    workdir, _, result = broken_run
    assert result.returncode != 0
    assert output(result).count("Error in rule check_image") == 3
    assert not (workdir / "results/logs/train_cyclegan").exists()
    assert not (workdir / "results/logs/train_unet").exists()
    assert not (workdir / "results/data/index.tsv").exists()


def test_image_label_and_mask_of_different_sizes(broken_run):
    workdir, root, _ = broken_run
    assert (
        f"{root / 'training/1st_manual/02_manual1.gif'}: size 60x64 differs from its image "
        f"{root / 'training/images/02_training.tif'} (64x64)"
    ) in _check_log(workdir, "02")
    assert not (workdir / "results/data/checked/02.json").exists()


def test_label_that_is_not_binary(broken_run):
    workdir, root, _ = broken_run
    log = _check_log(workdir, "03")
    assert f"{root / 'training/1st_manual/03_manual1.gif'}: label/mask is not binary: found 64 values such as" in log
    assert "(expected only two values, such as 0 and 255)" in log


def test_truncated_image(broken_run):
    workdir, root, _ = broken_run
    assert f"{root / 'training/images/04_training.tif'}: cannot read image" in _check_log(workdir, "04")


def test_grayscale_image_is_converted_and_said_so(broken_run):
    workdir, root, _ = broken_run
    log = _check_log(workdir, "01")
    assert f"note: {root / 'test/images/01_test.tif'}: grayscale image converted to RGB (grey level copied to R, G and B)" in log
    assert (workdir / "results/data/checked/01.json").exists()


def test_patch_size_larger_than_the_images(tmp_path, dataset):
    config = {**drive_config(dataset), "patches": {"size": 128, "stride": 128}, "unet": {"depth": 2}}
    checks_fail(tmp_path, config, "image is 64x64, smaller than the patch size 128 (config key patches.size)")


def test_patch_size_not_fitting_the_networks(tmp_path):
    dry_run_fails(
        tmp_path, {"patches": {"size": 36, "stride": 36}, "unet": {"depth": 3}},
        "config key patches.size (36) must be divisible by 2^unet.depth = 8",
    )  # fmt: skip


# ----------------------------------------------------------------------------- the config


def test_unknown_config_key(tmp_path):
    dry_run_fails(tmp_path, {"unet": {"learning_rate": 0.1}}, "config key unet: unknown key(s) 'learning_rate'", "known keys:")


def test_wrong_type_and_out_of_range_values_are_all_listed(tmp_path):
    dry_run_fails(
        tmp_path, {"unet": {"epochs": "many", "lr": -1}},
        "config key unet.epochs: 'many' is not of type integer (expected: Epochs (paper 150)",
        "config key unet.lr: -1 is less than or equal to the minimum of 0",
    )  # fmt: skip


def test_numbers_given_on_the_command_line_are_numbers(tmp_path):
    result = run(tmp_path, "-n", "--config", "unet={lr: 0.003, epochs: 4}")
    assert result.returncode == 0, output(result)


def test_experiment_with_an_unknown_training_set(tmp_path):
    dry_run_fails(
        tmp_path, {"experiments": {"mine": {"training_set": "everything"}}},
        "config key experiments.mine.training_set: 'everything' is not one of 'all_labels', 'synthetic', 'reference_only'",
    )  # fmt: skip


# ----------------------------------------------------------------------------- the demo


def test_demo_with_a_deleted_label_stops_naming_it(tmp_path):
    """The acceptance check of the issue on the tiny phantom settings: generate the data,
    delete one label, run again: it stops within 30 s, before any training, naming the file."""
    first = run(tmp_path, "--cores", "2", "results/data/index.tsv")
    assert first.returncode == 0, output(first)
    label = tmp_path / "results/data/phantom/training/1st_manual/04_manual1.gif"
    label.unlink()
    started = time.perf_counter()
    second = run(tmp_path, "--cores", "2")
    seconds = time.perf_counter() - started
    text = output(second)
    assert second.returncode != 0
    assert seconds < 30
    assert f"{Path('results/data/phantom/training/1st_manual/04_manual1.gif')} is missing" in text
    assert not (tmp_path / "results/logs/train_cyclegan").exists()


def test_synthetic_filter_keeping_nothing_shows_the_mse_table(tmp_path):
    result = run(tmp_path, "--cores", "2", "results/unet/synthetic/model.pt", config={"filter": {"max_mse": 1e-9}})
    assert result.returncode != 0
    log = (tmp_path / "results/logs/train_unet/synthetic.log").read_text()
    assert "the synthetic filter kept no image, so the 'synthetic' experiment has nothing to train on" in log
    assert "Per-image MSE against the reference (config keys filter.max_mse, filter.normalize)" in log
    quality = (tmp_path / "results/synthetic/quality.tsv").read_text().splitlines()
    for line in quality[1:]:
        image = line.split("\t")[0]
        assert image in log
    assert not (tmp_path / "results/unet/synthetic/model.pt").exists()
