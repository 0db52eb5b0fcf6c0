import pandas as pd
import pytest

from cyclesynth.segmentation.experiments import EmptyTrainingSet, derive_seed, training_pairs


@pytest.fixture
def index():
    rows = [
        ("21", "training", "reference"), ("22", "training", "unlabeled"), ("23", "training", "unlabeled"),
        ("24", "training", "unused"), ("01", "test", "test"),
    ]
    return pd.DataFrame(
        [
            {"id": i, "split": s, "image": f"img{i}.tif", "label": f"lab{i}.gif", "fov": f"fov{i}.gif",
             "label2": "", "role": r, "unlabeled": r == "unlabeled"}
            for i, s, r in rows
        ]
    )


@pytest.fixture
def quality():
    return pd.DataFrame(
        {"image": ["22", "23"], "synthetic": ["syn22.png", "syn23.png"], "mse": [0.3, 2.5],
         "kept": [True, False], "reason": ["", "mse 2.5 > max_mse 1"]}
    )


def test_reference_only_is_the_reference_pair(index):
    assert [(p.image, p.label, p.fov) for p in training_pairs(index, "reference_only")] == [
        ("img21.tif", "lab21.gif", "fov21.gif")
    ]


def test_all_labels_takes_every_labeled_training_image(index):
    assert [p.image for p in training_pairs(index, "all_labels")] == ["img21.tif", "img22.tif", "img23.tif", "img24.tif"]


def test_synthetic_pairs_kept_images_with_the_reference_label(index, quality):
    pairs = training_pairs(index, "synthetic", quality=quality)
    assert [(p.image, p.label, p.fov) for p in pairs] == [("syn22.png", "lab21.gif", "fov21.gif")]
    with_reference = training_pairs(index, "synthetic", quality=quality, include_reference=True)
    assert [p.image for p in with_reference] == ["img21.tif", "syn22.png"]


def test_no_kept_image_fails_with_the_mse_table(index, quality):
    quality["kept"] = False
    with pytest.raises(EmptyTrainingSet) as info:
        training_pairs(index, "synthetic", quality=quality)
    message = str(info.value)
    assert "kept no image" in message and "filter.max_mse" in message
    assert "0.3" in message and "2.5" in message and "syn22.png" not in message


def test_unknown_training_set_is_named(index):
    with pytest.raises(ValueError, match="unknown training set 'everything'"):
        training_pairs(index, "everything")


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "cyclegan", "22") == derive_seed(0, "cyclegan", "22")
    seeds = {derive_seed(s, "cyclegan", i) for s in (0, 1) for i in ("22", "23")}
    assert len(seeds) == 4 and all(0 <= s < 2**32 for s in seeds)
