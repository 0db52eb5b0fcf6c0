import numpy as np

from cyclesynth.synthesis.artefacts import checkerboard_ratio, checkerboard_response, colour_distance


def test_checkerboard_response_counts_the_2x2_pattern_only():
    ramp = np.add.outer(np.arange(8.0), np.arange(8.0)) / 16  # linear: no 2x2 response
    assert checkerboard_response(ramp) == 0.0
    board = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)  # 0/1 checkerboard: |0 - 1 - 1 + 0| = 2
    assert checkerboard_response(board) == 2.0
    rgb = np.repeat(board[..., None], 3, axis=2)
    assert checkerboard_response(rgb) == 2.0  # grey = mean over channels
    region = np.zeros((8, 8), dtype=bool)
    region[:2, :2] = True  # one 2x2 block inside
    assert checkerboard_response(board, region) == 2.0
    noise = np.random.default_rng(0).random((8, 8))
    assert checkerboard_ratio(noise + 0.1 * board, noise) > 1.0
    assert checkerboard_ratio(noise, noise) == 1.0


def test_colour_distance_is_between_region_means():
    a = np.zeros((4, 4, 3))
    b = np.zeros((4, 4, 3))
    b[..., 0] = 0.3
    b[..., 1] = 0.4
    assert np.isclose(colour_distance(a, b), 0.5)
    region = np.zeros((4, 4), dtype=bool)
    region[0, 0] = True
    b[1:, :] = 1.0  # outside the region: not counted
    assert np.isclose(colour_distance(a, b, region, region), 0.5)
