import numpy as np
import pytest

from cyclesynth.metrics import auc_roc
from cyclesynth.phantom import generate_phantom
from cyclesynth.vesselness import best_threshold, fill_outside, green_vesselness, rank_score


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


def test_best_threshold_maximises_accuracy():
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    truth = np.array([False, False, True, False, True, True])
    region = np.ones(6, dtype=bool)
    threshold, accuracy = best_threshold(score, truth, region)
    # >= 0.5: 2 tp, 0 fp, 1 fn -> 5/6; >= 0.3: 3 tp, 1 fp -> 5/6; the higher one wins the tie
    assert threshold == 0.5 and accuracy == pytest.approx(5 / 6)
    # a region leaves pixels out
    threshold, accuracy = best_threshold(score, truth, np.array([1, 1, 1, 0, 1, 1], dtype=bool))
    assert threshold == 0.3 and accuracy == 1.0
    # no vessel at all: a threshold above every score
    threshold, accuracy = best_threshold(score, np.zeros(6, dtype=bool), region)
    assert threshold > 0.6 and accuracy == 1.0


def test_frangi_finds_the_vessels_of_a_phantom():
    rgb, label, fov = generate_phantom(11, 128, 128)
    vesselness = green_vesselness(rgb, fov, sigmas=[0.5, 1.0, 1.5])
    assert (vesselness[~fov] == 0).all() and np.isfinite(vesselness).all()
    score = rank_score(vesselness, fov)
    assert auc_roc(score, label, fov) > 0.85
    # ranks keep the AUC of the raw response
    assert auc_roc(score, label, fov) == pytest.approx(
        auc_roc(vesselness / vesselness.max(), label, fov), abs=0.02)
    threshold, accuracy = best_threshold(score, label, fov)
    assert 0.5 < threshold < 1.0 and accuracy > 0.85
    # the border of the FOV is no vessel: the filled surround keeps it quiet
    ring = fov & ~np.roll(fov, 2, axis=0)
    assert score[ring & ~label].mean() < 0.8
