"""The input datasets' file naming (cyclesynth.data.naming): one module spells DRIVE's names,
the phantom writer, the dataset reader and the workflow's plan agree on them, and the
prepare_dataset step writes the index that the plan computed."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from helpers import ROOT

from cyclesynth.data import naming
from cyclesynth.data.datasets import orphan_labels, plan_drive
from cyclesynth.data.phantom.io import write_phantom_image
from cyclesynth.pipeline import cli
from cyclesynth.pipeline.dataset_plan import PHANTOM_ROOT, phantom_table, plan


def test_drive_names():
    assert naming.relative_path("21", "training", "image") == "training/images/21_training.tif"
    assert naming.relative_path("21", "training", "label") == "training/1st_manual/21_manual1.gif"
    assert naming.relative_path("21", "training", "fov") == "training/mask/21_training_mask.gif"
    assert naming.relative_path("01", "test", "label2") == "test/2nd_manual/01_manual2.gif"
    assert naming.path("DRIVE", "01", "test", "fov") == "DRIVE/test/mask/01_test_mask.gif"
    # a Snakemake wildcard goes through unchanged (the phantom rules' outputs)
    assert naming.path("root", "{id}", "test", "image") == "root/test/images/{id}_test.tif"
    assert naming.template("fov") == "<split>/mask/<id>_<split>_mask.gif"
    assert naming.kinds_of("training") == ("image", "label", "fov")
    assert naming.kinds_of("test") == ("image", "label", "fov", "label2")
    assert naming.phantom_id(3) == "03" and naming.phantom_id(40) == "40"


def test_id_patterns_read_back_the_names():
    for split in naming.SPLITS:
        for kind in naming.kinds_of(split):
            match = naming.id_pattern(split, kind).match(naming.stem("Ab12", split, kind))
            assert match and match["id"] == "Ab12"
    # an image of the other split, or a stray name, is not this split's image
    assert naming.id_pattern("training", "image").match("21_test") is None
    assert naming.id_pattern("test", "fov").match("01_training_mask") is None
    assert naming.id_pattern("training", "label").match("21_manual1_copy") is None


def test_bad_split_or_kind_is_named():
    with pytest.raises(ValueError, match="split must be one of"):
        naming.path("root", "1", "train", "image")
    with pytest.raises(ValueError, match="kind must be one of"):
        naming.stem("1", "test", "mask")


def test_phantom_writer_reader_and_plan_agree(tmp_path, monkeypatch):
    """The files the phantom writer names are the ones the workflow plans and the reader finds."""
    monkeypatch.chdir(tmp_path)
    for split, number in (("test", 1), ("training", 2), ("training", 3)):
        write_phantom_image(PHANTOM_ROOT, split, number, height=64, width=64, seed=1)
    planned = phantom_table({"dataset": {"phantom": {"n_test": 1, "n_training": 2}}})
    found = plan_drive(PHANTOM_ROOT)
    pd.testing.assert_frame_equal(planned, found)
    assert found["id"].tolist() == ["02", "03", "01"]
    assert found.loc[found["split"] == "test", "label2"].str.endswith("01_manual2.gif").all()
    assert orphan_labels(PHANTOM_ROOT) == []


def test_prepare_dataset_writes_the_planned_index(tmp_path, monkeypatch, capsys):
    """The prepare_dataset job gets the config's dataset section and writes plan()'s index,
    plus the warnings column."""
    monkeypatch.chdir(tmp_path)
    for split, number in (("test", 1), ("test", 2), ("training", 3), ("training", 4), ("training", 5)):
        write_phantom_image(PHANTOM_ROOT, split, number, height=64, width=64, seed=2)
    dataset = {
        "source": "phantom",
        "phantom": {"n_test": 2, "n_training": 3},
        "reference": "04",
        "include_test_as_unlabeled": False,
        "max_unlabeled": None,
        "validation": ["05"],
    }
    planned = plan({"dataset": dataset})
    assert cli.main(["prepare-dataset", "--dataset", json.dumps(dataset), "--out", "index.tsv"]) in (0, None)
    written = pd.read_csv("index.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert written.columns.tolist() == [*planned.columns, "warnings"]
    assert dict(zip(written["id"], written["role"])) == {
        "03": "unlabeled", "04": "reference", "05": "validation", "01": "test", "02": "test"
    }
    expected = planned.astype(str)
    pd.testing.assert_frame_equal(written[planned.columns], expected)
    assert "reference 04" in capsys.readouterr().err


def test_no_other_file_spells_drives_names():
    """One module owns the naming: no other file of the package or the rules spells it."""
    spelled = re.compile(r"_manual[12]|_training_mask|_test_mask|1st_manual|2nd_manual")
    owners = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "workflow").rglob("*.smk"), ROOT / "Snakefile"]:
        if spelled.search(path.read_text()):
            owners.append(path.relative_to(ROOT).as_posix())
    assert owners == ["src/cyclesynth/data/naming.py"]
