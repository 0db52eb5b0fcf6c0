import numpy as np
import pytest

from cyclesynth.data.patches import PatchGrid, extract_patches, stitch_patches


@pytest.mark.parametrize("shape", [(128, 128, 3), (584, 565, 3), (100, 70), (64, 64, 3)])
def test_round_trip_on_the_paper_grid_is_exact(shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    patches, grid = extract_patches(image, 64, 64)
    assert patches.shape[1:3] == (64, 64)
    np.testing.assert_array_equal(stitch_patches(patches, grid), image)


def test_drive_sized_image_grid_counts():
    grid = PatchGrid(584, 565, 64, 64)
    # ceil(584/64) = 10 rows, ceil(565/64) = 9 cols; the image is reflect-padded to 640x576
    assert (grid.rows, grid.cols, len(grid)) == (10, 9, 90)
    assert grid.padded_shape == (640, 576)
    assert grid.origins()[:2] == [(0, 0), (0, 64)]
    assert grid.origins()[-1] == (576, 512)


def test_padding_reflects_the_border():
    image = np.arange(70 * 70, dtype=np.float32).reshape(70, 70)
    patches, grid = extract_patches(image, 64, 64)
    assert len(grid) == 4
    bottom_right = patches[3]
    # padded row 70 mirrors row 68 (reflection excludes the edge row itself)
    np.testing.assert_array_equal(bottom_right[70 - 64, :6], image[68, 64:70])


def test_overlapping_stride_averages_back_to_the_image():
    image = np.random.default_rng(1).random((96, 80, 3))
    patches, grid = extract_patches(image, 32, 16)
    assert len(grid) == grid.rows * grid.cols == 5 * 4
    np.testing.assert_allclose(stitch_patches(patches, grid), image, atol=1e-12)


def test_bool_masks_round_trip():
    mask = np.random.default_rng(2).random((90, 130)) > 0.7
    patches, grid = extract_patches(mask, 64, 64)
    assert stitch_patches(patches, grid).dtype == bool
    np.testing.assert_array_equal(stitch_patches(patches, grid), mask)


def test_invalid_grids_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="larger than the image"):
        PatchGrid(50, 100, 64, 64)
    with pytest.raises(ValueError, match="exceeds patch size"):
        PatchGrid(100, 100, 32, 48)
    with pytest.raises(ValueError, match="expected 4 patches"):
        stitch_patches(np.zeros((3, 64, 64)), PatchGrid(128, 128, 64, 64))
