import numpy as np
import pytest
import torch

from cyclesynth.synthesis.blending import (
    blend_patches,
    seam_ratio,
    tile_borders,
    weight_sum,
    window_1d,
    window_2d,
)
from cyclesynth.synthesis.cyclegan.networks import ResnetGenerator, init_weights
from cyclesynth.synthesis.cyclegan import CycleGANSettings, save_generator
from cyclesynth.data.patches import PatchGrid, extract_patches, stitch_patches
from cyclesynth.synthesis.synthesize import synthesize_image


def test_window_is_smooth_symmetric_with_floor():
    w = window_1d(8, floor=0.1)
    np.testing.assert_allclose(w, w[::-1])
    assert w.min() > 0.1 and w.max() <= 1.0
    assert w[0] < w[1] < w[2] < w[3]  # rises towards the centre
    np.testing.assert_allclose(window_2d(8, 0.1), np.outer(w, w))
    # a half-overlapping Hann (no floor) sums to one: sin^2 + cos^2
    np.testing.assert_allclose(window_1d(8, 1e-12)[:4] + window_1d(8, 1e-12)[4:], 1.0)
    with pytest.raises(ValueError):
        window_1d(8, floor=0.0)


@pytest.mark.parametrize("shape,size,stride", [((64, 64), 32, 16), ((70, 90), 32, 24), ((50, 50), 16, 5)])
def test_normalised_weights_sum_to_one(shape, size, stride):
    grid = PatchGrid(*shape, size, stride)
    total = weight_sum(grid)
    window = window_2d(size)
    covered = np.zeros(grid.padded_shape)
    for r, c in grid.origins():
        covered[r : r + size, c : c + size] += window / total[r : r + size, c : c + size]
    np.testing.assert_allclose(covered, 1.0, atol=1e-12)
    assert total.min() > 0


@pytest.mark.parametrize("stride", [8, 13, 32])
def test_constant_image_stays_constant(stride):
    image = np.full((70, 90, 3), 0.37, dtype=np.float32)
    patches, grid = extract_patches(image, 32, stride)
    out = blend_patches(patches, grid)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.37, atol=1e-6)


def test_blending_is_an_exact_inverse_of_cutting_for_any_stride():
    image = np.random.default_rng(1).random((70, 90, 3)).astype(np.float32)
    for stride in (7, 16, 32):
        patches, grid = extract_patches(image, 32, stride)
        np.testing.assert_allclose(blend_patches(patches, grid), image, atol=1e-6)


def test_stride_equal_to_size_is_the_plain_grid_bit_for_bit():
    rng = np.random.default_rng(2)
    patches = rng.random((9, 32, 32, 3)).astype(np.float32)
    grid = PatchGrid(70, 90, 32, 32)
    assert np.array_equal(blend_patches(patches, grid), stitch_patches(patches, grid))


def _generator(tmp_path):
    settings = CycleGANSettings(ngf=4, n_blocks=1, ndf=4, preprocess="native")
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1))
    save_generator(tmp_path / "g.pt", generator.state_dict(), settings)
    return generator, str(tmp_path / "g.pt")


def test_synthesis_with_stride_equal_to_size_is_todays_image_bit_for_bit(tmp_path):
    generator, path = _generator(tmp_path)
    reference = np.random.default_rng(0).random((70, 90, 3)).astype(np.float32)
    image = synthesize_image(reference, path, patch_size=32, patch_stride=32, device="cpu")
    # today's synthesis: translate the grid patches, stitch_patches, clip
    patches, grid = extract_patches(reference, 32, 32)
    with torch.inference_mode():
        x = torch.from_numpy(patches).permute(0, 3, 1, 2) * 2 - 1
        y = ((generator.eval()(x).float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    today = np.clip(stitch_patches(y, grid), 0.0, 1.0).astype(np.float32)
    assert image.dtype == today.dtype and np.array_equal(image, today)


def test_blending_removes_seams_of_tiles_restyled_differently():
    # each tile restyled with its own brightness offset (what separately translated tiles
    # do): side by side they show seams, blended they do not
    y, x = np.mgrid[:128, :128] / 127.0
    image = np.stack([0.3 + 0.4 * x, 0.2 + 0.5 * y, 0.4 + 0.2 * x * y], axis=-1)
    rng = np.random.default_rng(3)
    results = {}
    for stride in (32, 16):
        patches, grid = extract_patches(image, 32, stride)
        patches = patches + rng.uniform(-0.05, 0.05, size=(len(patches), 1, 1, 1))
        results[stride] = seam_ratio(blend_patches(patches, grid), 32, 32)
    assert seam_ratio(image, 32, 32) == pytest.approx(1.0, abs=0.05)
    assert results[32] > 5.0
    assert results[16] < 1.5


def test_tile_borders():
    assert tile_borders(128, 32, 32).tolist() == [32, 64, 96]
    assert tile_borders(128, 32, 16).tolist() == [16, 32, 48, 64, 80, 96, 112]
    # 70 px at 32/32: tiles at 0, 32, 64 (the last one reaches into the padding)
    assert tile_borders(70, 32, 32).tolist() == [32, 64]


def test_seam_ratio_on_known_images():
    # a step of 1 at every tile border and a gradient of 0.1 per pixel elsewhere, along x
    x = np.arange(64)
    row = 0.1 * x + (x // 16)
    image = np.tile(row, (64, 1))
    # horizontal neighbours: 3 border columns with |diff| 1.1, 60 others with 0.1;
    # vertical neighbours: all 0 (64 x 63 pairs, 3 x 64 of them across borders)
    across = (3 * 64 * 1.1 + 3 * 64 * 0.0) / (6 * 64)
    elsewhere = (60 * 64 * 0.1 + 60 * 64 * 0.0) / (120 * 64)
    assert seam_ratio(image, 16, 16) == pytest.approx(across / elsewhere)
    # a smooth image has no seams: ratio 1
    smooth = np.tile(0.1 * x, (64, 1)) + np.tile(0.05 * x[:, None], (1, 64))
    assert seam_ratio(smooth, 16, 16) == pytest.approx(1.0)
    # region: only pairs with both pixels inside count
    region = np.zeros((64, 64), dtype=bool)
    region[:16, :16] = True  # no pair across a border lies inside
    assert np.isnan(seam_ratio(image, 16, 16, region))
    assert np.isnan(seam_ratio(np.zeros((64, 64)), 16, 16))
