import math

import numpy as np
import pandas as pd
import pytest

from cyclesynth.evaluation.paired import compare, paired_table, per_image, render_markdown


def _metrics(experiment, aucs, thresholds=("0.5", "weight_corrected")):
    rows = []
    for image, auc in aucs.items():
        for region, shift in (("fov", 0.0), ("image", 0.5)):
            for name in thresholds:
                rows.append({"experiment": experiment, "image": image, "region": region,
                             "threshold_name": name, "auc": auc + shift, "accuracy": 0.9})
    return pd.DataFrame(rows)


def test_per_image_takes_one_row_per_image_in_the_region():
    values = per_image(_metrics("x", {"01": 0.8, "02": 0.9}))
    assert values.to_dict() == {"01": 0.8, "02": 0.9}
    assert per_image(_metrics("x", {"01": 0.8}), region="image").to_dict() == {"01": pytest.approx(1.3)}


def test_compare_known_numbers():
    # differences 0.01, 0.02, -0.005, 0.03, 0.015: ranks of |d| 2, 4, 1, 5, 3;
    # W+ = 14, W- = 1, statistic min = 1; exact two-sided p = 2 * P(W <= 1) = 2 * 2/32
    b = pd.Series([0.80, 0.81, 0.82, 0.83, 0.84], index=list("abcde"))
    a = b + np.array([0.01, 0.02, -0.005, 0.03, 0.015])
    result = compare(a, b)
    assert result["n_images"] == 5
    assert result["mean_difference"] == pytest.approx(0.014)
    assert result["std_difference"] == pytest.approx(np.std([0.01, 0.02, -0.005, 0.03, 0.015], ddof=1))
    assert (result["a_better"], result["b_better"]) == (4, 1)
    assert result["wilcoxon_statistic"] == 1.0
    assert result["p_value"] == pytest.approx(0.125)
    # all four images better: the smallest two-sided p with 4 pairs, 2/16
    four = compare(b.iloc[:4] + [0.01, 0.02, 0.03, 0.04], b.iloc[:4])
    assert four["p_value"] == pytest.approx(0.125) and four["wilcoxon_statistic"] == 0.0


def test_compare_identical_and_unmatched_images():
    a = pd.Series([0.8, 0.9], index=["01", "02"])
    same = compare(a, a)
    assert same["mean_difference"] == 0.0 and math.isnan(same["p_value"])
    assert (same["a_better"], same["b_better"]) == (0, 0)
    # only images both have (and finite values) are paired
    b = pd.Series([0.7, np.nan, 0.5], index=["01", "02", "03"])
    assert compare(a, b)["n_images"] == 1


def test_paired_table_pairs_in_order_with_a_before_b():
    metrics = {
        "synthetic": _metrics("synthetic", {"01": 0.90, "02": 0.92, "03": 0.91}),
        "reference_only": _metrics("reference_only", {"01": 0.80, "02": 0.85, "03": 0.70}),
        "frangi": _metrics("frangi", {"01": 0.85, "02": 0.86, "03": 0.84}, thresholds=("reference",)),
    }
    table = paired_table(metrics, ["synthetic", "reference_only", "frangi", "absent"])
    assert table[["a", "b"]].values.tolist() == [
        ["synthetic", "reference_only"], ["synthetic", "frangi"], ["reference_only", "frangi"]]
    first = table.iloc[0]
    assert first["mean_difference"] == pytest.approx((0.10 + 0.07 + 0.21) / 3)
    assert first["a_better"] == 3 and first["p_value"] == pytest.approx(0.25)
    text = render_markdown(table, {"synthetic": "1 ground truth + synthetic"})
    assert "| 1 ground truth + synthetic (`synthetic`) | reference_only (`reference_only`) | 3 |" in text
    assert "+0.1267" in text and "| 3 / 0 | 0.250 |" in text
