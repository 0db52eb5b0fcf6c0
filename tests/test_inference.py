"""Whole-image prediction: overlapping tiles blended with a window, test-time augmentation."""

import contextlib

import numpy as np
import pytest
import torch
from torch import nn

from cyclesynth.synthesis.blending import weight_sum, window_2d
from cyclesynth.segmentation.inference import (
    CPU_TILE_BATCH,
    CUDA_TILE_BATCH,
    DIHEDRAL,
    describe,
    dihedral,
    predict_image,
    resolve_stride,
    tile_batch,
    undo_dihedral,
)
from cyclesynth.data.patches import PatchGrid
from cyclesynth.runtime import Precision
from cyclesynth.segmentation.unet import UNet
from cyclesynth.segmentation.inference import predict_probabilities


class Constant(nn.Module):
    """Logits that do not depend on the input: every tile predicts the same probability."""

    in_channels = 3

    def __init__(self, logits=(0.3, 1.1)):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits).view(1, 2, 1, 1))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 2, x.shape[2], x.shape[3])


class Pointwise(nn.Module):
    """1x1 convolutions only: each pixel's output depends on that pixel alone, so the network
    is equivariant to flips and quarter turns (and to any tiling) by construction."""

    in_channels = 3

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Tanh(), nn.Conv2d(8, 2, 1))

    def forward(self, x):
        return self.net(x)


def unet(seed=0):
    torch.manual_seed(seed)
    return UNet(in_channels=3, n_classes=2, base_channels=4, depth=2)


def image(height=37, width=45, seed=1):
    return np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)


@pytest.mark.parametrize("tta", [False, True])
def test_constant_model_gives_a_constant_map_with_overlap(tta):
    expected = torch.softmax(torch.tensor([0.3, 1.1]), 0)[1].item()
    p = predict_image(Constant(), image(), patch_size=16, stride=5, tta=tta, device="cpu")
    assert p.shape == (37, 45) and p.dtype == np.float32
    # the image's borders and corners (covered by one tile, at its border) keep full weight
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("height, width, stride", [(37, 45, 8), (64, 64, 16), (33, 50, 5), (16, 20, 1)])
def test_blending_weights_sum_to_one_at_every_pixel(height, width, stride):
    grid = PatchGrid(height, width, 16, stride)
    totals = np.zeros(grid.padded_shape)
    normaliser = weight_sum(grid)
    for r, c in grid.origins():
        totals[r : r + 16, c : c + 16] += window_2d(16) / normaliser[r : r + 16, c : c + 16]
    np.testing.assert_allclose(totals[:height, :width], 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(37, 45), (32, 48), (16, 16)])
def test_stride_equal_to_the_patch_without_tta_is_the_training_grid_bit_for_bit(shape):
    model, picture = unet(), image(*shape)
    grid = predict_probabilities(model, picture, patch_size=16, stride=16, device="cpu", batch_size=5)
    tiled = predict_image(model, picture, patch_size=16, stride=16, tta=False, device="cpu", batch_size=5)
    assert tiled.dtype == np.float32 and np.array_equal(tiled, grid)
    # overlapping tiles blend a different (seamless) map; an image of one patch is one tile at any stride
    half = predict_image(model, picture, patch_size=16, stride="half", tta=False, device="cpu")
    assert np.array_equal(half, grid) == (shape == (16, 16))


def test_tta_is_a_no_op_for_a_network_equivariant_to_flips_and_quarter_turns():
    model, picture = Pointwise(), image(29, 46)  # non-square, not a multiple of the stride
    plain = predict_image(model, picture, patch_size=16, stride=6, tta=False, device="cpu")
    augmented = predict_image(model, picture, patch_size=16, stride=6, tta=True, device="cpu")
    assert augmented.shape == plain.shape == (29, 46)
    np.testing.assert_allclose(augmented, plain, rtol=0, atol=1e-6)
    # and a pointwise network's map does not depend on the tiles either
    grid = predict_image(model, picture, patch_size=16, stride=16, tta=False, device="cpu")
    np.testing.assert_allclose(plain, grid, rtol=0, atol=1e-6)


def test_dihedral_transforms_are_undone():
    picture = image(5, 7)
    assert len(set(DIHEDRAL)) == 8 and DIHEDRAL[0] == (0, False)
    seen = set()
    for turns, flip in DIHEDRAL:
        turned = dihedral(picture, turns, flip)
        assert turned.shape[:2] == ((5, 7) if turns % 2 == 0 else (7, 5))
        seen.add(turned.tobytes())
        np.testing.assert_array_equal(undo_dihedral(turned, turns, flip), picture)
    assert len(seen) == 8  # eight distinct orientations


@pytest.mark.parametrize("shape, stride", [((37, 45), 8), ((50, 23), "half"), ((17, 64), 3), ((9, 12), 16)])
def test_non_square_images_and_sizes_not_a_multiple_of_the_stride(shape, stride):
    model = unet()
    model.train()
    p = predict_image(model, image(*shape), patch_size=16, stride=stride, tta=True, device="cpu", batch_size=7)
    assert p.shape == shape and p.dtype == np.float32
    assert p.min() >= 0 and p.max() <= 1 and np.isfinite(p).all()
    assert model.training  # the caller's mode is restored


def test_augmentation_changes_the_map_of_a_network_that_is_not_equivariant():
    model, picture = unet(), image(32, 48)
    plain = predict_image(model, picture, patch_size=16, stride=8, tta=False, device="cpu")
    augmented = predict_image(model, picture, patch_size=16, stride=8, tta=True, device="cpu")
    assert np.abs(plain - augmented).max() > 1e-4
    # the mean of the 8 orientations' maps, each turned back
    maps = []
    for turns, flip in DIHEDRAL:
        turned = np.ascontiguousarray(dihedral(picture, turns, flip))
        maps.append(undo_dihedral(predict_image(model, turned, patch_size=16, stride=8, tta=False, device="cpu"),
                                  turns, flip))
    np.testing.assert_allclose(augmented, np.mean(maps, axis=0), rtol=0, atol=1e-6)


def test_eval_mode_is_used_and_restored():
    model, picture = unet(), image(32, 32)
    model.eval()
    expected = predict_image(model, picture, patch_size=16, stride=8, tta=False, device="cpu")
    model.train()
    got = predict_image(model, picture, patch_size=16, stride=8, tta=False, device="cpu")
    np.testing.assert_array_equal(got, expected)  # batch norm uses its running statistics
    assert model.training


def test_precision_autocast_wraps_the_forward_passes():
    class Spy:
        calls = 0

        def autocast(self):
            Spy.calls += 1
            return contextlib.nullcontext()

    model, picture = unet(), image(32, 32)
    float32 = predict_image(model, picture, patch_size=16, stride=16, tta=False, device="cpu", batch_size=2)
    spied = predict_image(model, picture, patch_size=16, stride=16, tta=False, device="cpu", batch_size=2,
                          precision=Spy())
    assert Spy.calls == 2 and np.array_equal(spied, float32)  # 4 tiles in batches of 2
    bfloat16 = predict_image(model, picture, patch_size=16, stride=16, tta=False, device="cpu",
                             precision=Precision("bfloat16", "cpu"))
    assert bfloat16.dtype == np.float32  # the softmax in float32
    np.testing.assert_allclose(bfloat16, float32, rtol=0, atol=0.05)


def test_the_tile_batch_never_changes_the_map():
    """Tiles per forward pass are a speed setting: 1, 7, the CPU's default and 64 give the same
    map (float32, overlapping tiles and test-time augmentation) up to float32 rounding: the
    CPU's kernels for other batch sizes may round the last bit differently."""
    model, picture = unet(), image(40, 52)
    maps = [
        predict_image(model, picture, patch_size=16, stride=8, tta=True, device="cpu", batch_size=batch)
        for batch in (1, 7, None, 64)
    ]
    for other in maps[1:]:
        np.testing.assert_allclose(other, maps[0], rtol=0, atol=1e-6)
    assert tile_batch("cpu", None) == CPU_TILE_BATCH == 16
    assert tile_batch(torch.device("cuda", 0), None) == CUDA_TILE_BATCH == 64
    assert tile_batch("cpu", 5) == 5


@pytest.mark.parametrize("precision, max_error, mean_error", [("float32", 1e-5, 1e-6), ("bfloat16", 0.02, 2e-3)])
def test_channels_last_prediction_agrees_with_the_default_layout(precision, max_error, mean_error):
    """The U-Net and its tiles in channels_last give the default layout's map up to rounding
    (float32: 1e-5; bfloat16, which rounds each layout's kernels differently: at most 0.02,
    mean 2e-3), still float32 in [0, 1]; the model stays in eval mode only while predicting."""
    model, picture = unet(), image(40, 52)
    p = Precision(precision, "cpu")
    default = predict_image(model, picture, patch_size=16, stride=8, tta=True, device="cpu", precision=p)
    model.train()
    in_channels_last = predict_image(
        model, picture, patch_size=16, stride=8, tta=True, device="cpu", precision=p, channels_last=True
    )
    assert model.training and model.inc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert in_channels_last.dtype == np.float32 and 0.0 <= in_channels_last.min() <= in_channels_last.max() <= 1.0
    difference = np.abs(in_channels_last - default)
    assert difference.max() < max_error and difference.mean() < mean_error


@pytest.mark.parametrize("stride", [0, -4, 17, "quarter", "", 2.5, True, None])
def test_bad_stride_raises_naming_it(stride):
    with pytest.raises(ValueError, match="stride"):
        predict_image(unet(), image(), patch_size=16, stride=stride, tta=False, device="cpu")
    with pytest.raises(ValueError, match=r"prediction\.stride"):
        resolve_stride(stride, 16, key="prediction.stride")


def test_stride_half_and_text():
    assert resolve_stride("half", 64) == 32 and resolve_stride("half", 1) == 1
    assert resolve_stride("16", 64) == 16 and resolve_stride(64, 64) == 64 and resolve_stride(1, 64) == 1


def test_wrong_image_shape_is_named():
    with pytest.raises(ValueError, match=r"expected an image of shape \(H, W, 3\)"):
        predict_image(unet(), image()[:, :, :2], patch_size=16, stride=8, tta=False, device="cpu")


def test_description_for_the_report():
    assert describe(64, 32, True) == (
        "Prediction: tiles of 64 at stride 32 blended with a Hann window, "
        "test-time augmentation over 8 flips and quarter turns."
    )
    assert describe(64, "half", False) == (
        "Prediction: tiles of 64 at stride 32 blended with a Hann window, no test-time augmentation."
    )
    assert "side by side on the training grid (stride 64" in describe(64, 64, False)
