"""What a new user tripped on (issue 17), each through the CLI or the `snakemake` command as a
user calls it: test images that --images also matches, a preset's reference with a
samplesheet, labels that mark nothing (or everything), empty FOV masks, folders given as
files, and null given on the command line."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cyclesynth.data.phantom.render import generate_phantom
from cyclesynth.data.phantom.style import phantom_style
from helpers import ROOT, TINY, config_file, snakemake, write_flat_folder, write_sheet
from helpers import samplesheet_cli as cli

CHASE_IDS = [f"Image_{n:02d}{side}" for n in range(1, 7) for side in "LR"]  # 12 images


def _write_chase_like(root: Path) -> None:
    """A public fundus set in its own folder naming: images/, 1st_label/, 2nd_label/."""
    for seed, image_id in enumerate(CHASE_IDS, start=1):
        rgb, label, _ = generate_phantom(seed, 48, 48, phantom_style(seed))
        for folder in ("images", "1st_label", "2nd_label"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray((rgb * 255).round().astype(np.uint8)).save(root / "images" / f"{image_id}.jpg", quality=95)
        Image.fromarray(label.astype(np.uint8) * 255).save(root / "1st_label" / f"{image_id}_1stHO.png")
        Image.fromarray(label.astype(np.uint8) * 255).save(root / "2nd_label" / f"{image_id}_2ndHO.png")


def _sheet(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# ---------------------------------------------------------------- 1. --test within --images


def test_test_files_that_images_also_matches_are_test_images(tmp_path):
    _write_chase_like(tmp_path)
    result = cli(
        "--images", "images/*.jpg", "--reference", "images/Image_01L.jpg", "--label", "1st_label/Image_01L_1stHO.png",
        "--labels", "1st_label/{id}_1stHO.png", "--labels2", "2nd_label/{id}_2ndHO.png",
        "--test", "images/Image_0[3-6]*.jpg", "--out", "s.tsv", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    sheet = _sheet(tmp_path / "s.tsv")
    tests = sheet[sheet["role"] == "test"]
    assert tests["id"].tolist() == [f"Image_0{n}{side}" for n in range(3, 7) for side in "LR"]  # exactly 8
    assert (sheet["role"] == "unlabeled").sum() == 3 and (sheet["role"] == "reference").sum() == 1
    assert tests["label"].tolist() == [f"1st_label/{i}_1stHO.png" for i in tests["id"]]
    assert tests["label2"].tolist() == [f"2nd_label/{i}_2ndHO.png" for i in tests["id"]]
    assert "reference Image_01L" in result.stderr and "'test': 8" in result.stderr


def test_reference_matched_by_test_is_refused(tmp_path):
    _write_chase_like(tmp_path)
    result = cli("--images", "images/*.jpg", "--reference", "images/Image_01L.jpg", "--label",
                 "1st_label/Image_01L_1stHO.png", "--test", "images/Image_01*.jpg", "--out", "s.tsv", cwd=tmp_path)
    assert result.returncode != 0
    assert "--reference images/Image_01L.jpg is also matched by --test 'images/Image_01*.jpg'" in result.stderr
    assert not (tmp_path / "s.tsv").exists()


# ---------------------------------------------------------------- 2. a preset's reference


@pytest.fixture
def own_sheet(tmp_path):
    write_flat_folder(tmp_path / "flat")
    write_sheet(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_a_drive_preset_works_with_a_samplesheet_unchanged(own_sheet):
    """drive-cpu.yaml sets dataset.reference "21"; the sheet's reference is 'ref'."""
    result = snakemake(
        own_sheet, "-n", configfile=[ROOT / "config" / "drive-cpu.yaml", TINY, config_file(own_sheet)], check=False
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "cyclesynth: reference ref; dataset.reference '21' of a config file is not used: samplesheet" in text
    assert "train_cyclegan" in text


@pytest.mark.slow
@pytest.mark.parametrize("null", ["null", "~"])
def test_null_on_the_command_line_clears_a_presets_reference(own_sheet, null):
    result = snakemake(
        own_sheet, "-n", "--config", f"dataset={{source: samplesheet, samplesheet: sheet.tsv, reference: {null}}}",
        configfile=[ROOT / "config" / "drive-cpu.yaml", TINY], check=False,
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "differs from the reference" not in text


@pytest.mark.slow
def test_a_reference_given_on_the_command_line_must_agree_with_the_sheet(own_sheet):
    result = snakemake(
        own_sheet, "-n", "--config", "dataset={source: samplesheet, samplesheet: sheet.tsv, reference: u1}",
        configfile=[ROOT / "config" / "drive-cpu.yaml", TINY], check=False,
    )
    assert result.returncode != 0
    assert "config key dataset.reference: 'u1' differs from the reference of samplesheet" in result.stdout + result.stderr


# ---------------------------------------------------------------- 3. labels that mark nothing


def _label_run(tmp_path: Path, edit_files) -> tuple:
    """A flat folder whose sheet gives t1 a label and a FOV mask; ``edit_files`` breaks some;
    snakemake runs the checks and the index (no training)."""
    write_flat_folder(tmp_path / "flat")
    _, label, fov = generate_phantom(5, 80, 72, phantom_style(5))  # t1's size
    Image.fromarray(label.astype(np.uint8) * 255).save(tmp_path / "flat/t1_label.png")
    Image.fromarray(fov.astype(np.uint8) * 255).save(tmp_path / "flat/t1_fov.png")
    edit_files(tmp_path / "flat")
    sheet = write_sheet(tmp_path)
    text = sheet.read_text().replace("t1\tflat/t1.jpg\t\ttest", "t1\tflat/t1.jpg\tflat/t1_label.png\ttest")
    lines = text.splitlines()
    lines[0] += "\tfov"
    lines[1:] = [line + ("\tflat/t1_fov.png" if line.startswith("t1\t") else "\t") for line in lines[1:]]
    sheet.write_text("\n".join(lines) + "\n")
    result = snakemake(tmp_path, "--cores", "2", "--keep-going", "results/data/index.tsv",
                       configfile=[TINY, config_file(tmp_path)], check=False)
    return result, sheet


def _log(workdir: Path, image_id: str) -> str:
    return (workdir / f"results/logs/check_image/{image_id}.log").read_text()


@pytest.mark.slow
def test_labels_with_no_vessel_or_no_background_and_empty_fovs_stop_the_run(tmp_path):
    def edit(flat):
        shape = np.asarray(Image.open(flat / "ref_label.png")).shape
        Image.fromarray(np.zeros(shape, np.uint8)).save(flat / "ref_label.png")  # no vessel
        Image.fromarray(np.zeros((80, 72), np.uint8)).save(flat / "t1_fov.png")  # empty FOV

    result, sheet = _label_run(tmp_path, edit)
    assert result.returncode != 0
    ref = _log(tmp_path, "ref")
    assert f"samplesheet {sheet.name}, row 1 (id 'ref'), column label: " in ref
    assert "ref_label.png: label marks no vessel (no FOV mask: the whole image): every pixel is background" in ref
    t1 = _log(tmp_path, "t1")
    assert f"samplesheet {sheet.name}, row 5 (id 't1'), column fov: " in t1
    assert "t1_fov.png: FOV mask is empty" in t1
    assert not (tmp_path / "results/data/index.tsv").exists()


@pytest.mark.slow
def test_a_label_that_is_all_vessel_within_its_fov_stops_the_run(tmp_path):
    def edit(flat):
        Image.fromarray(np.full((80, 72), 255, np.uint8)).save(flat / "t1_label.png")

    result, sheet = _label_run(tmp_path, edit)
    assert result.returncode != 0
    t1 = _log(tmp_path, "t1")
    assert f"samplesheet {sheet.name}, row 5 (id 't1'), column label: " in t1
    assert "t1_label.png: label marks every pixel within its FOV as vessel: there is no background" in t1


@pytest.mark.slow
def test_an_inverted_looking_label_is_a_warning_in_the_log_the_index_and_the_report(tmp_path):
    def edit(flat):
        label = np.asarray(Image.open(flat / "t1_label.png"))
        Image.fromarray(np.where(label > 0, 0, 255).astype(np.uint8)).save(flat / "t1_label.png")

    result, _ = _label_run(tmp_path, edit)
    assert result.returncode == 0, result.stdout + result.stderr
    t1 = _log(tmp_path, "t1")
    assert "WARNING: " in t1 and "t1_label.png: vessels cover" in t1
    assert "of the pixels within its FOV; vessels are a small fraction of a fundus image: the label looks inverted" in t1
    assert "label looks inverted" in (tmp_path / "results/logs/prepare_dataset.log").read_text()
    index = pd.read_csv(tmp_path / "results/data/index.tsv", sep="\t", dtype=str, keep_default_na=False)
    warned = index.loc[index["warnings"] != "", "id"].tolist()
    assert warned == ["t1"]

    from cyclesynth.data.datasets import read_index
    from cyclesynth.evaluation.segmentation_report import render_input_warnings

    section = render_input_warnings(read_index(tmp_path / "results/data/index.tsv"))
    assert section.startswith("## Input warnings")
    assert "- `t1` (test): " in section and "the label looks inverted" in section


# ---------------------------------------------------------------- 4. a folder given as a file


@pytest.mark.slow
def test_a_folder_in_the_samplesheet_is_called_a_folder(own_sheet):
    (own_sheet / "flat" / "u9").mkdir()
    sheet = own_sheet / "sheet.tsv"
    sheet.write_text(sheet.read_text().replace("flat/u3.png", "flat/u9"))
    result = snakemake(own_sheet, "-n", configfile=[TINY, config_file(own_sheet)], check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "row 4 (id 'u3'), column image: " in text and "flat/u9 is a folder; a file is expected" in text
    assert "does not exist" not in text


def test_a_folder_as_reference_or_label_is_called_a_folder(tmp_path):
    write_flat_folder(tmp_path / "flat")
    (tmp_path / "labels").mkdir()
    result = cli("--images", "flat/u*", "--reference", "flat", "--label", "flat/ref_label.png", "--out", "s.tsv",
                 cwd=tmp_path)
    assert result.returncode != 0 and "--reference flat is a folder; a file (the reference image) is expected" in result.stderr
    result = cli("--images", "flat/u*", "--reference", "flat/ref.jpg", "--label", "labels", "--out", "s.tsv", cwd=tmp_path)
    assert result.returncode != 0 and "--label labels is a folder; a file is expected" in result.stderr


def test_check_image_on_a_folder_says_folder(tmp_path):
    from cyclesynth.data.datasets import DatasetError, check_image

    (tmp_path / "img").mkdir()
    with pytest.raises(DatasetError, match=r"img is a folder, not a file: give the image file itself"):
        check_image(str(tmp_path / "img"), {})


def test_segment_on_a_folder_says_folder(tmp_path):
    from cyclesynth.segmentation.segment import SegmentationError, plan_jobs

    (tmp_path / "new").mkdir()
    with pytest.raises(SegmentationError, match=r"folder\(s\) given where an image file is expected: .*new"):
        plan_jobs([tmp_path / "new"])
