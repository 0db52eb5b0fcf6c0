"""Samplesheets: reading, every check with the row and column it names, roles."""

import numpy as np
import pytest
from PIL import Image

from cyclesynth.data.datasets import RoleSettings
from cyclesynth.data.samplesheet import (
    SamplesheetError,
    read_samplesheet,
    samplesheet_index,
    write_samplesheet,
)


def _image(path, size=(40, 48), value=100, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[0], size[1], 3) if mode == "RGB" else size
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    _image(tmp_path / "imgs/a.jpg")
    _image(tmp_path / "imgs/b.png")
    _image(tmp_path / "imgs/c.bmp")
    _image(tmp_path / "labels/a.png", value=255, mode="L")
    return tmp_path


def _sheet(folder, text, name="sheet.tsv"):
    path = folder / name
    path.write_text(text)
    return path


GOOD = "id\timage\tlabel\trole\nref-1\timgs/a.jpg\tlabels/a.png\treference\nb_2\timgs/b.png\t\tunlabeled\nc\timgs/c.bmp\t\ttest\n"


def test_a_good_sheet_resolves_paths_against_its_folder(folder):
    table = read_samplesheet(_sheet(folder, GOOD))
    assert table["id"].tolist() == ["ref-1", "b_2", "c"]
    assert table["role"].tolist() == ["reference", "unlabeled", "test"]
    assert table["split"].tolist() == ["training", "training", "test"]
    assert table["image"].tolist() == [str(folder / "imgs/a.jpg"), str(folder / "imgs/b.png"), str(folder / "imgs/c.bmp")]
    assert table["label"].tolist() == [str(folder / "labels/a.png"), "", ""]
    assert (table["fov"] == "").all() and (table["label2"] == "").all()
    assert table["origin"].iloc[1] == f"samplesheet {folder / 'sheet.tsv'}, row 2 (id 'b_2')"


def test_csv_is_read_with_commas_and_roles_are_assigned(folder):
    path = _sheet(folder, "\ufeff" + GOOD.replace("\t", ","), "sheet.csv")  # with a spreadsheet's BOM
    index = samplesheet_index(path, RoleSettings())
    assert index["role"].tolist() == ["reference", "unlabeled", "test"]
    assert index["unlabeled"].tolist() == [False, True, False]
    with_tests = samplesheet_index(path, RoleSettings(include_test_as_unlabeled=True))
    assert with_tests["unlabeled"].tolist() == [False, True, True]


def test_config_reference_must_agree_with_the_sheet(folder):
    path = _sheet(folder, GOOD)
    assert samplesheet_index(path, RoleSettings(reference="ref-1"))["role"].iloc[0] == "reference"
    with pytest.raises(SamplesheetError, match=r"config key dataset.reference: 'b_2' differs from the reference .* \('ref-1'\)"):
        samplesheet_index(path, RoleSettings(reference="b_2"))


def _error(folder, text, name="sheet.tsv") -> str:
    with pytest.raises(SamplesheetError) as info:
        read_samplesheet(_sheet(folder, text, name))
    return str(info.value)


def test_missing_column(folder):
    message = _error(folder, "id\timage\tlabel\nref\timgs/a.jpg\tlabels/a.png\n")
    assert "sheet.tsv: missing column(s) 'role'" in message
    assert "the columns are id, image, role (required) and label, fov, label2 (optional)" in message


def test_unknown_column_is_named(folder):
    message = _error(folder, GOOD.replace("label\t", "lable\t", 1))
    assert "unknown column(s) 'lable'" in message


def test_two_references(folder):
    text = GOOD.replace("b_2\timgs/b.png\t\tunlabeled", "b_2\timgs/b.png\tlabels/a.png\treference")
    message = _error(folder, text)
    assert "column role: 2 rows have role 'reference' (row 1 (id 'ref-1'), row 2 (id 'b_2')); exactly one is required" in message


def test_no_reference(folder):
    message = _error(folder, GOOD.replace("\treference\n", "\tunlabeled\n"))
    assert "column role: no row has role 'reference'; exactly one is required" in message


def test_unknown_role(folder):
    message = _error(folder, GOOD.replace("\ttest\n", "\ttraining\n"))
    assert "row 3 (id 'c'), column role: unknown role 'training'; expected one of reference, unlabeled, validation, test" in message


def test_path_that_does_not_exist(folder):
    message = _error(folder, GOOD.replace("imgs/b.png", "imgs/nope.png"))
    assert f"row 2 (id 'b_2'), column image: file {folder / 'imgs/nope.png'} does not exist" in message


def test_missing_label_file_names_the_label_column(folder):
    message = _error(folder, GOOD.replace("labels/a.png", "labels/gone.png"))
    assert f"row 1 (id 'ref-1'), column label: file {folder / 'labels/gone.png'} does not exist" in message


def test_duplicate_id(folder):
    message = _error(folder, GOOD.replace("c\timgs/c.bmp", "b_2\timgs/c.bmp"))
    assert "row 3 (id 'b_2'), column id: duplicate id, also in row 2" in message


def test_bad_ids(folder):
    message = _error(folder, GOOD.replace("c\timgs", "c d\timgs").replace("b_2\t", "b_probability\t"))
    assert "row 3 (id 'c d'), column id: ids may hold only letters, digits, '-' and '_'" in message
    assert "row 2 (id 'b_probability'), column id: an id may not end in _probability" in message


def test_reference_without_label(folder):
    message = _error(folder, GOOD.replace("labels/a.png", ""))
    assert "row 1 (id 'ref-1'), column label: the reference needs a label" in message


def test_every_problem_is_listed_at_once(folder):
    text = GOOD.replace("imgs/b.png", "imgs/nope.png").replace("\ttest\n", "\tholdout\n")
    message = _error(folder, text)
    assert "has 2 problem(s)" in message and "nope.png" in message and "'holdout'" in message


def test_empty_and_missing_sheets(folder):
    assert "is empty" in _error(folder, "")
    assert "has a header but no rows" in _error(folder, "id\timage\trole\n")
    with pytest.raises(SamplesheetError, match=r"samplesheet .*nothere.tsv not found \(config key dataset.samplesheet\)"):
        read_samplesheet(folder / "nothere.tsv")


def test_write_samplesheet_writes_paths_relative_to_the_sheet(folder):
    rows = [
        {"id": "a", "image": str(folder / "imgs/a.jpg"), "label": str(folder / "labels/a.png"), "role": "reference"},
        {"id": "b", "image": str(folder / "imgs/b.png"), "role": "unlabeled"},
    ]
    table = write_samplesheet(rows, folder / "out/sheet.tsv")
    text = (folder / "out/sheet.tsv").read_text().splitlines()
    assert text[0] == "id\timage\tlabel\trole"  # unused columns left out
    assert text[1] == "a\t../imgs/a.jpg\t../labels/a.png\treference"
    assert table["image"].tolist() == [str(folder / "imgs/a.jpg"), str(folder / "imgs/b.png")]
