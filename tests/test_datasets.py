import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cyclesynth.data.datasets import (
    DatasetError,
    RoleSettings,
    assign_roles,
    orphan_labels,
    plan_drive,
    read_index,
    validate_dataset,
)
from cyclesynth.data.phantom.io import write_phantom_dataset


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    write_phantom_dataset(root, n_training=4, n_test=2, height=64, width=72, seed=1)
    return root


def test_plan_finds_the_drive_layout(phantom_root):
    table = plan_drive(phantom_root)
    assert table["id"].tolist() == ["03", "04", "05", "06", "01", "02"]
    assert table["split"].tolist() == ["training"] * 4 + ["test"] * 2
    assert all(table["label"].str.endswith("_manual1.gif"))
    assert (table["label2"] != "").tolist() == [False] * 4 + [True] * 2


def test_roles_default_reference_is_the_first_training_image(phantom_root):
    index = assign_roles(plan_drive(phantom_root), RoleSettings())
    assert index.set_index("id")["role"].to_dict() == {
        "03": "reference", "04": "unlabeled", "05": "unlabeled", "06": "unlabeled", "01": "test", "02": "test"
    }
    assert index.loc[index["unlabeled"], "id"].tolist() == ["04", "05", "06"]


def test_roles_options(phantom_root):
    table = plan_drive(phantom_root)
    index = assign_roles(table, RoleSettings(reference="05", include_test_as_unlabeled=True, max_unlabeled=4))
    assert index.loc[index["unlabeled"], "id"].tolist() == ["03", "04", "06", "01"]
    assert index.set_index("id").loc["02", "role"] == "test"
    limited = assign_roles(table, RoleSettings(max_unlabeled=1))
    assert limited.set_index("id")["role"].tolist().count("unused") == 2


def test_unknown_reference_and_no_unlabeled_are_explained(phantom_root):
    table = plan_drive(phantom_root)
    with pytest.raises(DatasetError, match=r"dataset.reference: '99' is not a labeled training image"):
        assign_roles(table, RoleSettings(reference="99"))
    only_reference = table[table["id"].isin(["03", "01"])]
    with pytest.raises(DatasetError, match="no unlabeled images"):
        assign_roles(only_reference, RoleSettings())


def test_validate_accepts_the_phantom_and_index_round_trips(phantom_root, tmp_path):
    index = assign_roles(plan_drive(phantom_root), RoleSettings())
    validate_dataset(index, min_size=64)
    index.to_csv(tmp_path / "index.tsv", sep="\t", index=False)
    back = read_index(tmp_path / "index.tsv")
    pd.testing.assert_frame_equal(back, index)


def test_validate_names_size_mismatch_and_small_images(phantom_root, tmp_path):
    index = assign_roles(plan_drive(phantom_root), RoleSettings())
    with pytest.raises(DatasetError, match=r"smaller than the patch size 96 \(config key patches.size\)"):
        validate_dataset(index, min_size=96)
    wrong = tmp_path / "wrong.gif"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(wrong)
    index.loc[1, "label"] = str(wrong)
    with pytest.raises(DatasetError, match=r"wrong.gif: size 10x10 differs from its image"):
        validate_dataset(index)


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        plan_drive(tmp_path / "absent")
    with pytest.raises(DatasetError, match="holds no images"):
        plan_drive(tmp_path)


def test_orphan_labels_are_found(phantom_root, tmp_path):
    assert orphan_labels(phantom_root) == []


def test_real_drive_layout(drive):
    index = assign_roles(plan_drive(drive), RoleSettings())
    assert (index["split"] == "training").sum() == 20 and (index["split"] == "test").sum() == 20
    assert index.loc[index["role"] == "reference", "id"].tolist() == ["21"]
    assert index["unlabeled"].sum() == 19
    test = index[index["split"] == "test"]
    assert (test["label2"] != "").all() and (index["fov"] != "").all()
    validate_dataset(index.iloc[[0, 20]], min_size=64)


def test_a_label_without_its_image_is_found(tmp_path):
    write_phantom_dataset(tmp_path, n_training=2, n_test=1, height=64, width=64, seed=3)
    (tmp_path / "training/images/03_training.tif").unlink()
    assert orphan_labels(tmp_path) == [
        str(tmp_path / "training/1st_manual/03_manual1.gif"),
        str(tmp_path / "training/mask/03_training_mask.gif"),
    ]
