"""`cyclesynth samplesheet`: the DRIVE, CHASE_DB1, HRF and STARE namings and any folder (glob),
each tested on phantom files written in that naming (none of these datasets can be downloaded)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cyclesynth.data.datasets import RoleSettings
from cyclesynth.data.layouts import LayoutError, layout_rows
from cyclesynth.data.phantom.render import generate_phantom
from cyclesynth.data.phantom.style import phantom_style
from cyclesynth.data.phantom.io import write_phantom_dataset
from cyclesynth.data.samplesheet import read_samplesheet
from helpers import samplesheet_cli as cli


def _phantom(seed, size=48):
    rgb, label, fov = generate_phantom(seed, size, size, phantom_style(seed))
    to8 = lambda a: (np.clip(a, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    return to8(rgb), to8(label.astype(float)), to8(fov.astype(float))


def _save(array, path, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result


def test_chase_db1(tmp_path):
    root = tmp_path / "CHASEDB1"
    names = [f"Image_{n:02d}{eye}" for n in range(1, 6) for eye in "LR"]  # 10 images
    for seed, name in enumerate(names):
        rgb, label, _ = _phantom(seed)
        _save(rgb, root / f"{name}.jpg", quality=95)
        _save(label, root / f"{name}_1stHO.png")
        _save(label, root / f"{name}_2ndHO.png")
    _ok(cli("--layout", "chase_db1", "--root", root, "--n-test", 3, "--out", tmp_path / "chase.tsv"))
    table = read_samplesheet(tmp_path / "chase.tsv")
    assert table["id"].tolist() == names
    assert table["role"].tolist() == ["reference"] + ["unlabeled"] * 6 + ["test"] * 3
    assert table["label"].tolist() == [str(root / f"{n}_1stHO.png") for n in names]
    assert table["label2"].tolist() == [str(root / f"{n}_2ndHO.png") for n in names]
    assert (table["fov"] == "").all()
    # the layout's default split: the last 8 for test
    assert [r["role"] for r in layout_rows("chase_db1", root)].count("test") == 8


def test_hrf(tmp_path):
    root = tmp_path / "HRF"
    names = ["01_dr", "01_g", "01_h", "02_dr", "02_g", "02_h"]
    for seed, name in enumerate(names):
        rgb, label, fov = _phantom(seed)
        _save(rgb, root / "images" / f"{name}.JPG")
        _save(label, root / "manual1" / f"{name}.tif")
        _save(np.stack([fov] * 3, axis=2), root / "mask" / f"{name}_mask.tif")  # HRF's masks are RGB
    _ok(cli("--layout", "hrf", "--root", root, "--reference", "02_h", "--test-ids", "01_g", "02_g",
            "--out", tmp_path / "hrf.csv"))
    assert (tmp_path / "hrf.csv").read_text().startswith("id,image,label,fov,role")
    table = read_samplesheet(tmp_path / "hrf.csv")
    assert table["id"].tolist() == names
    roles = dict(zip(table["id"], table["role"]))
    assert roles == {"01_dr": "unlabeled", "01_g": "test", "01_h": "unlabeled", "02_dr": "unlabeled",
                     "02_g": "test", "02_h": "reference"}
    assert table["fov"].tolist() == [str(root / "mask" / f"{n}_mask.tif") for n in names]
    assert table["image"].iloc[0] == str(root / "images/01_dr.JPG")


def test_stare(tmp_path):
    root = tmp_path / "STARE"
    names = [f"im{n:04d}" for n in (1, 2, 3, 4, 44)]
    for seed, name in enumerate(names):
        rgb, label, _ = _phantom(seed)
        _save(rgb, root / f"{name}.ppm")
        _save(label, root / f"{name}.ah.ppm")
        if name != "im0044":
            _save(label, root / f"{name}.vk.ppm")
    _ok(cli("--layout", "stare", "--root", root, "--out", tmp_path / "stare.tsv"))
    table = read_samplesheet(tmp_path / "stare.tsv")
    assert table["id"].tolist() == names  # the label files (im0001.ah.ppm) are not taken for images
    assert table["role"].tolist() == ["reference"] + ["unlabeled"] * 4
    assert table["label"].tolist() == [str(root / f"{n}.ah.ppm") for n in names]
    assert table["label2"].tolist() == [str(root / f"{n}.vk.ppm") for n in names[:-1]] + [""]


def test_glob_layout_for_any_folder(tmp_path):
    for seed, name in enumerate(["007", "008", "009", "a b"]):
        rgb, label, _ = _phantom(seed)
        _save(rgb, tmp_path / "imgs" / f"{name}.jpg")
        if name in ("007", "009"):
            _save(label, tmp_path / "labels" / f"{name}.png")
    rgb, _, _ = _phantom(9)
    _save(rgb, tmp_path / "new" / "x1.png")
    _ok(cli("--images", "imgs/*.jpg", "--reference", "imgs/007.jpg", "--label", "labels/007.png",
            "--test", "new/*.png", "--out", "sheet.tsv", cwd=tmp_path))
    table = read_samplesheet(tmp_path / "sheet.tsv")
    assert table["id"].tolist() == ["007", "008", "009", "a_b", "x1"]
    assert table["role"].tolist() == ["reference", "unlabeled", "unlabeled", "unlabeled", "test"]
    assert table["label"].tolist() == [str(tmp_path / "labels/007.png"), "", "", "", ""]
    # other labels by a pattern; the reference by its stem
    _ok(cli("--images", "imgs/*.jpg", "--reference", "009", "--label", "labels/009.png",
            "--labels", "labels/{id}.png", "--out", "sheet2.tsv", cwd=tmp_path))
    table = read_samplesheet(tmp_path / "sheet2.tsv")
    assert table["id"].tolist() == ["009", "007", "008", "a_b"]
    assert table["label"].tolist() == [str(tmp_path / f"labels/{i}.png") for i in ("009", "007")] + ["", ""]


def test_layout_errors_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match=r"no STARE image found"):
        layout_rows("stare", tmp_path / "empty")
    result = cli("--images", "nothing/*.jpg", "--reference", "x.jpg", "--label", "y.png", "--out", "s.tsv",
                 cwd=tmp_path)
    assert result.returncode == 1 and "--images 'nothing/*.jpg' matches no file" in result.stderr
    result = cli("--layout", "hrf", "--out", "s.tsv", cwd=tmp_path)
    assert result.returncode != 0 and "--layout hrf needs --root" in result.stderr


def test_drive_layout_gives_the_drive_index(tmp_path):
    root = tmp_path / "DRIVE"
    write_phantom_dataset(root, n_training=3, n_test=2, height=48, width=48, seed=5)
    _ok(cli("--layout", "drive", "--root", root, "--reference", "04", "--out", tmp_path / "drive.tsv"))
    _same_index(root, tmp_path / "drive.tsv", RoleSettings(reference="04"))


def _same_index(root, sheet, roles):
    """The workflow's plan (dataset_plan.plan, what the Snakefile calls) from
    source: drive and from source: samplesheet: the same ids, roles and files."""
    from pathlib import Path

    from cyclesynth.pipeline.dataset_plan import plan

    def config(**dataset):
        base = {"reference": roles.reference, "include_test_as_unlabeled": False, "max_unlabeled": None}
        return {"dataset": {**base, **dataset}}

    from_drive = plan(config(source="drive", root=str(root)))
    from_sheet = plan(config(source="samplesheet", samplesheet=str(sheet)))
    columns = ["id", "split", "image", "label", "fov", "label2", "role", "unlabeled"]
    for frame in (from_drive, from_sheet):
        for column in ("image", "label", "fov", "label2"):
            frame[column] = [str(Path(p).resolve()) if p else "" for p in frame[column]]
    pd.testing.assert_frame_equal(from_drive[columns], from_sheet[columns])


@pytest.mark.drive
def test_real_drive_through_the_drive_layout(drive, tmp_path):
    _ok(cli("--layout", "drive", "--root", drive, "--out", tmp_path / "drive.tsv"))
    _same_index(drive, tmp_path / "drive.tsv", RoleSettings())
    table = read_samplesheet(tmp_path / "drive.tsv")
    assert len(table) == 40 and table["role"].value_counts().to_dict() == {"test": 20, "unlabeled": 19, "reference": 1}
    assert table.loc[table["role"] == "reference", "id"].item() == "21"
