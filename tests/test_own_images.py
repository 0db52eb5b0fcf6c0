"""A user's own images: a flat folder of mixed formats with one label and no test labels,
through `cyclesynth samplesheet` and the whole workflow (the `snakemake` command); new images
later; bad samplesheets stopped before any training with the row and column named."""

import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cyclesynth.data.phantom.render import generate_phantom
from cyclesynth.data.phantom.style import phantom_style
from helpers import SIZES, TINY, config_file, planned_jobs, snakemake, write_flat_folder, write_sheet

pytestmark = pytest.mark.slow  # the whole workflow on a flat folder, through the `snakemake` command


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("own")
    write_flat_folder(workdir / "my images")  # a space in the path: every rule quotes it
    write_sheet(workdir, "my images")
    snakemake(workdir, "--cores", "2", configfile=[TINY, config_file(workdir)])
    return workdir


def test_the_sheet_from_a_flat_folder(own_run):
    sheet = pd.read_csv(own_run / "sheet.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert sheet.columns.tolist() == ["id", "image", "label", "role"]
    assert sheet["id"].tolist() == ["ref", "u1", "u2", "u3", "t1", "t2"]
    assert sheet["role"].tolist() == ["reference", "unlabeled", "unlabeled", "unlabeled", "test", "test"]
    assert sheet["label"].tolist() == ["my images/ref_label.png", "", "", "", "", ""]


def test_every_image_gets_mask_probability_and_overlay(own_run):
    folder = own_run / "results/segmentations/synthetic"
    for name in ("u1", "u2", "u3", "t1", "t2"):
        mask = iio.imread(folder / f"{name}_mask.png")
        probability = iio.imread(folder / f"{name}_probability.png")
        drawn = iio.imread(folder / f"{name}_overlay.png")
        assert mask.shape == probability.shape == SIZES[name], name
        assert drawn.shape == (*SIZES[name], 3) and probability.dtype == np.uint16
        assert set(np.unique(mask)) <= {0, 255}
    assert not (folder / "ref_mask.png").exists()
    # one CycleGAN per unlabeled image, whatever its format and size; synthetic images have
    # the reference's size
    for name in ("u1", "u2", "u3"):
        assert iio.imread(own_run / f"results/synthetic/{name}.png").shape == (64, 64, 3)


def test_report_lists_the_segmentations_and_says_nothing_was_scored(own_run):
    table1 = (own_run / "results/metrics/table1.md").read_text()
    assert "No image could be scored" in table1
    assert "none of the 2 test images has one (`t1`, `t2`)" in table1
    assert "(no rows)" not in table1 and "| —" not in table1.split("## Segmentations")[0]
    for name in ("u1", "u2", "u3", "t1", "t2"):
        assert f"| `{name}` |" in table1 and f"`{name}_overlay.png`" in table1
    assert "| `u2` | unlabeled | no | 80x72 |" in table1
    summary = pd.read_csv(own_run / "results/metrics/summary.tsv", sep="\t")
    assert summary.empty  # no empty rows
    assert not (own_run / "results/metrics/human.tsv").exists()
    assert not (own_run / "results/predictions").exists()
    assert (own_run / "results/figures/segmentations.png").stat().st_size > 5000
    # the three notes of check_image: grayscale inputs converted
    assert "grayscale image converted to RGB" in (own_run / "results/logs/check_image/u2.log").read_text()


def test_new_images_later_rerun_only_segment_new(own_run, tmp_path):
    new = own_run / "new"
    new.mkdir()
    for name, seed, size in (("n1", 11, (100, 90)), ("n2", 12, (40, 40))):
        rgb, _, _ = generate_phantom(seed, *size, phantom_style(seed))
        Image.fromarray((rgb * 255).round().astype(np.uint8)).save(new / f"{name}.png")
    configs = [TINY, config_file(own_run, "segmentation: {new_images: new}\n")]
    jobs = planned_jobs(snakemake(own_run, "-n", configfile=configs).stdout)
    assert jobs == {"segment_new": 1, "all": 1, "total": 2}
    snakemake(own_run, "--cores", "2", configfile=configs)
    for name, size in (("n1", (100, 90)), ("n2", (40, 40))):
        assert iio.imread(own_run / f"results/new_segmentations/synthetic/{name}_mask.png").shape == size
    # one more image: the step runs again, nothing else
    Image.open(new / "n2.png").save(new / "n3.png")
    jobs = planned_jobs(snakemake(own_run, "-n", configfile=configs).stdout)
    assert jobs == {"segment_new": 1, "all": 1, "total": 2}


# ------------------------------------------------------------------------ bad samplesheets


def _bad_sheet(tmp_path: Path, edit) -> subprocess.CompletedProcess:
    write_flat_folder(tmp_path / "flat")
    sheet = write_sheet(tmp_path)
    sheet.write_text(edit(sheet.read_text()))
    return snakemake(tmp_path, "-n", configfile=[TINY, config_file(tmp_path)], check=False)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("id\t", "name\t", 1), "missing column(s) 'id'"),
        (lambda t: t.replace("u1\tflat/u1.jpg\t\tunlabeled", "u1\tflat/u1.jpg\tflat/ref_label.png\treference"),
         "column role: 2 rows have role 'reference' (row 1 (id 'ref'), row 2 (id 'u1')); exactly one is required"),
        (lambda t: t.replace("\treference\n", "\tunlabeled\n"), "column role: no row has role 'reference'"),
        (lambda t: t.replace("t1\tflat/t1.jpg\t\ttest", "t1\tflat/t1.jpg\t\ttraining"),
         "row 5 (id 't1'), column role: unknown role 'training'; expected one of reference, unlabeled, validation, test"),
        (lambda t: t.replace("flat/u3.png", "flat/u9.png"), "row 4 (id 'u3'), column image: file "),
        (lambda t: t.replace("t2\tflat", "u1\tflat"), "row 6 (id 'u1'), column id: duplicate id, also in row 2"),
    ],
    ids=["missing-column", "two-references", "no-reference", "unknown-role", "missing-path", "duplicate-id"],
)
def test_bad_samplesheet_stops_the_plan(tmp_path, edit, message):
    result = _bad_sheet(tmp_path, edit)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results/cyclegan").exists()


def test_bad_label_contents_stop_before_any_training(tmp_path):
    """A label with three values and a label of another size than its image: the check jobs
    fail (naming row and column) and no training job starts."""
    write_flat_folder(tmp_path / "flat")
    label = np.zeros((64, 64), np.uint8)
    label[10:20] = 128
    label[30:40] = 255
    Image.fromarray(label).save(tmp_path / "flat/ref_label.png")
    Image.fromarray(np.zeros((60, 64), np.uint8)).save(tmp_path / "flat/t2_label.png")
    sheet = write_sheet(tmp_path)
    sheet.write_text(sheet.read_text().replace("t2\tflat/t2.bmp\t\ttest", "t2\tflat/t2.bmp\tflat/t2_label.png\ttest"))
    result = snakemake(tmp_path, "--cores", "2", "--keep-going", configfile=[TINY, config_file(tmp_path)], check=False)
    assert result.returncode != 0
    ref_log = (tmp_path / "results/logs/check_image/ref.log").read_text()
    assert f"samplesheet {sheet.name}, row 1 (id 'ref'), column label: " in ref_log
    assert "ref_label.png: label/mask is not binary: found 3 values such as [0, 128, 255]" in ref_log
    t2_log = (tmp_path / "results/logs/check_image/t2.log").read_text()
    assert f"samplesheet {sheet.name}, row 6 (id 't2'), column label: " in t2_log
    assert "t2_label.png: size 60x64 differs from its image" in t2_log
    assert not (tmp_path / "results/logs/train_cyclegan").exists()
    assert not (tmp_path / "results/logs/train_unet").exists()
