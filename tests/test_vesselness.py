import numpy as np
import pytest

from cyclesynth.evaluation.metrics import auc_roc
from cyclesynth.data.phantom.render import generate_phantom
from cyclesynth.evaluation.vesselness import best_threshold, fill_outside, green_vesselness, rank_score


def test_fill_outside_copies_the_nearest_inside_pixel():
    image = np.arange(16, dtype=float).reshape(4, 4)
    region = np.zeros((4, 4), dtype=bool)
    region[1:3, 1:3] = True
    filled = fill_outside(image, region)
    assert np.array_equal(filled[region], image[region])
    assert filled[0, 0] == image[1, 1] and filled[3, 3] == image[2, 2] and filled[0, 2] == image[1, 2]
    with pytest.raises(ValueError):
        fill_outside(image, np.zeros((4, 4), dtype=bool))


def test_rank_score_fractions_and_ties():
    values = np.array([[0.0, 0.5], [0.5, 9.0]])
    fov = np.array([[True, True], [True, False]])
    score = rank_score(values, fov)
    # three FOV pixels: 0.0 ranks 1, the two 0.5 share rank 2.5; outside 0
    np.testing.assert_allclose(score, [[1 / 3, 2.5 / 3], [2.5 / 3, 0.0]])


def test_best_threshold_maximises_f1():
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    truth = np.array([False, False, True, False, True, True])
    region = np.ones(6, dtype=bool)
    threshold, f1 = best_threshold(score, truth, region)
    # >= 0.5: 2 tp, 0 fp, 1 fn -> F1 0.8; >= 0.3: 3 tp, 1 fp -> 6/7 = 0.857
    assert threshold == 0.3 and f1 == pytest.approx(6 / 7)
    # a region leaves pixels out
    threshold, f1 = best_threshold(score, truth, np.array([1, 1, 1, 0, 1, 1], dtype=bool))
    assert threshold == 0.3 and f1 == 1.0
    # rare vessels and a weak score: accuracy would call nothing vessel, F1 does not
    score = np.linspace(0, 1, 100)
    truth = np.zeros(100, dtype=bool)
    truth[[50, 95, 97]] = True
    threshold, f1 = best_threshold(score, truth, np.ones(100, dtype=bool))
    assert threshold == pytest.approx(score[95]) and f1 == pytest.approx(2 * 2 / (5 + 3))
    # no vessel at all: a threshold above every score
    threshold, f1 = best_threshold(np.array([0.1, 0.6]), np.zeros(2, dtype=bool), np.ones(2, dtype=bool))
    assert threshold > 0.6 and f1 == 1.0


def test_frangi_finds_the_vessels_of_a_phantom():
    rgb, label, fov = generate_phantom(11, 128, 128)
    vesselness = green_vesselness(rgb, fov, sigmas=[0.5, 1.0, 1.5])
    assert (vesselness[~fov] == 0).all() and np.isfinite(vesselness).all()
    score = rank_score(vesselness, fov)
    assert auc_roc(score, label, fov) > 0.85
    # ranks keep the AUC of the raw response
    assert auc_roc(score, label, fov) == pytest.approx(
        auc_roc(vesselness / vesselness.max(), label, fov), abs=0.02)
    threshold, f1 = best_threshold(score, label, fov)
    assert f1 > 0.7
    # it calls about as many pixels vessel as there are (ranks: the top 1 - t of the FOV)
    fraction = label[fov].mean()
    assert 0.5 * fraction < 1 - threshold < 2 * fraction
    # the border of the FOV is no vessel: the filled surround keeps it quiet
    ring = fov & ~np.roll(fov, 2, axis=0)
    assert score[ring & ~label].mean() < 0.8
