"""The report's Segmentations section, the Not scored paragraph and Table 1's replacement."""

import pandas as pd

from cyclesynth.evaluation.segmentation_report import (
    overlay_panels,
    render_not_scored,
    render_segmentations,
    render_unscored_table1,
    scored_ids,
)


def _index(test_labels):
    rows = [{"id": "ref", "role": "reference", "label": "ref.png"}, {"id": "u1", "role": "unlabeled", "label": ""}]
    rows += [{"id": f"t{i}", "role": "test", "label": label} for i, label in enumerate(test_labels, start=1)]
    return pd.DataFrame(rows)


def _table(names, folder="results/segmentations/synthetic"):
    return pd.DataFrame(
        {
            "name": names,
            "image": [f"in/{n}.jpg" for n in names],
            "height": 64,
            "width": 80,
            "threshold": 0.909091,
            "vessel_fraction": 0.1234,
            **{kind: [f"{folder}/{n}_{kind}.png" for n in names] for kind in ("mask", "probability", "overlay")},
        }
    )


def test_some_test_images_without_labels_are_named():
    index = _index(["t1.png", "", "t3.png", ""])
    assert scored_ids(index) == ["t1", "t3"]
    text = render_not_scored(index)
    assert "2 of the 4 test images have no label and could not be scored: `t2`, `t4`" in text
    assert "the tables above cover the 2 labeled ones" in text
    assert render_not_scored(_index(["a.png"])) == ""


def test_nothing_scored_replaces_table1():
    text = render_unscored_table1(_index(["", ""]))
    assert text.startswith("# Table 1: not measured")
    assert "none of the 2 test images has one (`t1`, `t2`)" in text
    assert "the dataset has no test images" in render_unscored_table1(_index([]))


def test_segmentations_section_lists_every_image_with_role_and_scoring():
    index = _index(["t1.png", ""])
    text = render_segmentations(index, {"synthetic": _table(["u1", "t1", "t2"])}, {"synthetic": "1 label + synthetic"})
    assert "### 1 label + synthetic (`synthetic`): 3 images in `results/segmentations/synthetic/`, threshold 0.909" in text
    assert "| `u1` | unlabeled | no | 64x80 | 0.123 | `u1_mask.png` | `u1_probability.png` | `u1_overlay.png` |" in text
    assert "| `t1` | test | yes |" in text and "| `t2` | test | no |" in text
    assert "No experiment was chosen" in render_segmentations(index, {}, {})


def test_overlay_panels_take_the_first_images_of_each_experiment():
    panels = overlay_panels({"a": _table(["x", "y", "z", "w"]), "b": _table(["x"])}, limit=2)
    assert [(image, experiment) for image, experiment, _ in panels] == [
        ("in/x.jpg", "a"), ("in/y.jpg", "a"), ("in/x.jpg", "b")
    ]
