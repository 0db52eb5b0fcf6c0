import numpy as np
import pytest

from cyclesynth.evaluation.metrics import auc_roc, confusion, evaluate_binary, evaluate_probabilities, rates


def test_confusion_and_rates_match_a_hand_computed_matrix():
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    # tp: (0,0),(1,0) = 2; fn: (0,1) = 1; fp: (0,2) = 1; tn: 4
    counts = confusion(pred, truth)
    assert counts == {"tp": 2, "fp": 1, "tn": 4, "fn": 1}
    r = rates(**counts)
    assert r["sensitivity"] == pytest.approx(2 / 3)
    assert r["specificity"] == pytest.approx(4 / 5)
    assert r["accuracy"] == pytest.approx(6 / 8)
    assert r["f1"] == pytest.approx(4 / 6)


def test_region_excludes_pixels_outside_the_fov():
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    region = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)  # drops the fp at (0,2)
    counts = confusion(pred, truth, region)
    assert counts == {"tp": 2, "fp": 0, "tn": 3, "fn": 1}
    assert rates(**counts)["specificity"] == 1.0


def test_empty_denominators_give_nan_not_errors():
    r = rates(tp=0, fp=0, tn=5, fn=0)
    assert np.isnan(r["sensitivity"]) and r["specificity"] == 1.0


def test_auc_matches_pairwise_counting_with_ties():
    scores = np.array([0.9, 0.8, 0.8, 0.3, 0.1, 0.8])
    truth = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    # positives 0.9, 0.8, 0.3 vs negatives 0.8, 0.1, 0.8:
    # 0.9 beats 3; 0.8 beats 0.1, ties two 0.8s (2 * 0.5); 0.3 beats 0.1 -> 3 + 2 + 1 = 6 of 9
    assert auc_roc(scores, truth) == pytest.approx(6 / 9)


def test_auc_extremes_and_against_brute_force():
    rng = np.random.default_rng(0)
    truth = rng.random(2000) < 0.2
    assert auc_roc(truth.astype(float), truth) == 1.0
    assert auc_roc(1.0 - truth, truth) == 0.0
    scores = np.clip(truth * 0.3 + rng.random(2000) * 0.7, 0, 1)
    q = np.round(scores * 65535)
    pos, neg = q[truth], q[~truth]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert auc_roc(scores, truth) == pytest.approx(brute, abs=1e-12)


def test_evaluate_rows_per_region_and_threshold():
    truth = np.zeros((10, 10), dtype=bool)
    truth[4:6] = True
    probability = np.where(truth, 0.95, 0.7)
    fov = np.zeros_like(truth)
    fov[2:8] = True
    rows = evaluate_probabilities(probability, truth, {"fov": fov, "image": None}, {"0.5": 0.5, "w/(1+w)": 10 / 11})
    assert [(r["region"], r["threshold_name"]) for r in rows] == [
        ("fov", "0.5"), ("fov", "w/(1+w)"), ("image", "0.5"), ("image", "w/(1+w)"),
    ]
    by = {(r["region"], r["threshold_name"]): r for r in rows}
    assert by["fov", "0.5"]["specificity"] == 0.0 and by["fov", "0.5"]["tp"] == 20
    assert by["fov", "w/(1+w)"]["accuracy"] == 1.0
    assert by["image", "0.5"]["fp"] == 80
    assert all(r["auc"] == 1.0 for r in rows)


def test_binary_rows_have_no_auc():
    truth = np.eye(4, dtype=bool)
    rows = evaluate_binary(truth, truth, {"fov": None})
    assert rows[0]["accuracy"] == 1.0 and np.isnan(rows[0]["auc"]) and rows[0]["threshold_name"] == "binary"
