"""Tests for the built-in phantom dataset (cyclesynth.data.phantom)."""

from __future__ import annotations

import dataclasses
import json
import time

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from skimage.measure import label as connected_components

from cyclesynth.data.images import read_binary, read_rgb
from cyclesynth.data.phantom.render import MIN_SIZE, generate_phantom, second_observer_label
from cyclesynth.data.phantom.style import PhantomStyle, phantom_style
from cyclesynth.data.phantom.io import image_seed, write_phantom_dataset

SIZES = [(64, 64), (128, 96), (96, 128), (584, 565)]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


# ------------------------------------------------------------------------------------------
# generate_phantom
# ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_arrays():
    first = generate_phantom(11, 128, 120)
    second = generate_phantom(11, 128, 120)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_images():
    rgb_a, label_a, _ = generate_phantom(1, 128, 128)
    rgb_b, label_b, _ = generate_phantom(2, 128, 128)
    assert not np.array_equal(label_a, label_b)
    assert np.abs(rgb_a - rgb_b).mean() > 0.01


@pytest.mark.parametrize("height,width", SIZES)
def test_shapes_dtypes_and_ranges(height, width):
    rgb, label, fov = generate_phantom(3, height, width)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.float32
    assert label.shape == (height, width) and label.dtype == bool
    assert fov.shape == (height, width) and fov.dtype == bool
    assert np.isfinite(rgb).all()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    # label inside the FOV only; FOV a centred disc covering a DRIVE-like share of the image
    assert not (label & ~fov).any()
    assert label.any()
    radius = np.sqrt(fov.sum() / np.pi)
    assert 0.43 * min(height, width) < radius < 0.49 * min(height, width)
    rows, cols = np.nonzero(fov)
    assert abs(rows.mean() - (height - 1) / 2) < 1.0 and abs(cols.mean() - (width - 1) / 2) < 1.0
    # outside the FOV is near black, inside is bright
    assert rgb[~fov].mean() < 0.08
    assert rgb[fov].mean() > 3 * rgb[~fov].mean()


@pytest.mark.parametrize("height,width,seeds", [(128, 128, range(8)), (584, 565, range(2))])
def test_vessel_fraction_inside_fov_is_realistic(height, width, seeds):
    for seed in seeds:
        _, label, fov = generate_phantom(seed, height, width)
        fraction = label[fov].mean()
        assert 0.05 <= fraction <= 0.20, (seed, fraction)


@pytest.mark.parametrize("height,width", [(64, 64), (128, 128)])
def test_vessels_darker_than_background_in_green(height, width):
    for seed in range(10):
        rgb, label, fov = generate_phantom(seed, height, width)  # random style per seed
        green = rgb[..., 1]
        assert green[label].mean() < green[fov & ~label].mean(), seed


def test_label_is_a_connected_tree():
    for seed in range(6):
        _, label, _ = generate_phantom(seed, 256, 240)
        components = connected_components(label, connectivity=2)
        sizes = np.sort(np.bincount(components.ravel())[1:])[::-1]
        assert sizes[:4].sum() > 0.8 * label.sum(), (seed, sizes[:6])


def test_label_has_thick_and_thin_vessels():
    _, label, _ = generate_phantom(5, 584, 565)
    # thin vessels: many label pixels have a background 4-neighbour on both sides
    thin = label & ~np.roll(label, 1, 0) & ~np.roll(label, -1, 0)
    thin |= label & ~np.roll(label, 1, 1) & ~np.roll(label, -1, 1)
    assert thin.sum() > 0.05 * label.sum()
    # thick trunks: some pixels lie >= 2 px inside a vessel in every direction
    inner = label.copy()
    for shift in (1, 2):
        for axis in (0, 1):
            inner &= np.roll(label, shift, axis) & np.roll(label, -shift, axis)
    assert inner.sum() > 0


def test_styles_differ_between_images():
    styles = [phantom_style(seed) for seed in range(6)]
    assert len({s.background_rgb for s in styles}) == 6
    means = []
    for seed in range(6):
        rgb, _, fov = generate_phantom(seed, 96, 96)
        means.append(rgb[fov].mean(axis=0))
    means = np.asarray(means)
    distances = np.abs(means[:, None, :] - means[None, :, :]).max(axis=2)
    off_diagonal = distances[~np.eye(len(means), dtype=bool)]
    assert (off_diagonal > 0.02).mean() > 0.8
    assert np.ptp(means[:, 0]) > 0.05 or np.ptp(means[:, 1]) > 0.05  # clearly different looks


def test_random_styles_are_valid_and_fundus_like():
    rng = np.random.default_rng(0)
    for _ in range(200):
        style = PhantomStyle.random(rng)
        red, green, blue = style.background_rgb
        assert red > green > blue > 0  # reddish-orange
        assert all(c >= 0 for c in style.vessel_contrast) and style.vessel_contrast[1] >= 0.2
        assert style.vessel_contrast[1] >= style.vessel_contrast[0]  # green darkens most
        json.dumps(style.to_dict())


def test_style_validation_rejects_inverted_contrast():
    with pytest.raises(ValueError, match="vessel_contrast"):
        PhantomStyle(vessel_contrast=(0.1, -0.2, 0.1))
    with pytest.raises(ValueError, match="gamma"):
        PhantomStyle(gamma=0.0)


def test_explicit_style_changes_appearance_not_geometry():
    style = PhantomStyle()
    rgb_a, label_a, fov_a = generate_phantom(4, 128, 128)
    rgb_b, label_b, fov_b = generate_phantom(4, 128, 128, style)
    np.testing.assert_array_equal(label_a, label_b)
    np.testing.assert_array_equal(fov_a, fov_b)
    assert not np.array_equal(rgb_a, rgb_b)
    dim = dataclasses.replace(style, background_rgb=(0.4, 0.2, 0.1), optic_disc_brightness=0.0)
    rgb_c, _, _ = generate_phantom(4, 128, 128, dim)
    assert rgb_c[fov_b].mean() < rgb_b[fov_b].mean()


def test_rejects_too_small_sizes():
    with pytest.raises(ValueError):
        generate_phantom(0, MIN_SIZE - 1, 64)


def test_timing():
    generate_phantom(0, 128, 128)  # warm-up (imports, caches)
    large = min(_timed(seed, 584, 565) for seed in (0, 1))
    small = min(_timed(seed, 128, 128) for seed in (0, 1, 2))
    assert large < 1.0, large
    assert small < 0.1, small


def _timed(seed: int, height: int, width: int) -> float:
    start = time.perf_counter()
    generate_phantom(seed, height, width)
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------
# second observer
# ------------------------------------------------------------------------------------------


def test_second_observer_is_deterministic_and_plausible():
    for seed in range(4):
        _, label, fov = generate_phantom(seed, 128, 128)
        other = second_observer_label(seed, 128, 128)
        np.testing.assert_array_equal(other, second_observer_label(seed, 128, 128))
        assert other.dtype == bool and other.shape == label.shape
        assert not (other & ~fov).any()
        assert not np.array_equal(other, label)
        assert _dice(label, other) > 0.7


# ------------------------------------------------------------------------------------------
# write_phantom_dataset
# ------------------------------------------------------------------------------------------

H, W, N_TRAIN, N_TEST = 96, 88, 3, 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "DRIVE"
    write_phantom_dataset(root, n_training=N_TRAIN, n_test=N_TEST, height=H, width=W, seed=5)
    return root


def test_dataset_has_drive_layout(dataset):
    test_ids = [f"{i:02d}" for i in range(1, N_TEST + 1)]
    train_ids = [f"{i:02d}" for i in range(N_TEST + 1, N_TEST + N_TRAIN + 1)]
    expected = {"manifest.json"}
    for i in test_ids:
        expected |= {
            f"test/images/{i}_test.tif",
            f"test/1st_manual/{i}_manual1.gif",
            f"test/2nd_manual/{i}_manual2.gif",
            f"test/mask/{i}_test_mask.gif",
        }
    for i in train_ids:
        expected |= {
            f"training/images/{i}_training.tif",
            f"training/1st_manual/{i}_manual1.gif",
            f"training/mask/{i}_training_mask.gif",
        }
    found = {p.relative_to(dataset).as_posix() for p in dataset.rglob("*") if p.is_file()}
    assert found == expected  # nothing missing, no temporary files left behind


def test_dataset_files_read_back_with_pillow_plugin(dataset):
    for image_path in sorted(dataset.glob("*/images/*.tif")):
        with Image.open(image_path) as im:
            assert im.format == "TIFF" and im.mode == "RGB"
            assert im.info.get("compression") == "tiff_lzw"
        rgb = iio.imread(image_path, plugin="pillow")
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        assert rgb.std() > 5
        np.testing.assert_allclose(read_rgb(image_path), rgb / 255.0, atol=1e-6)
    gifs = sorted(dataset.glob("*/*_manual/*.gif")) + sorted(dataset.glob("*/mask/*.gif"))
    assert len(gifs) == 2 * N_TEST + N_TRAIN + N_TEST + N_TRAIN
    for gif in gifs:
        with Image.open(gif) as im:
            assert im.format == "GIF" and getattr(im, "n_frames", 1) == 1
        array = iio.imread(gif, plugin="pillow", index=0)
        assert array.shape == (H, W) and array.dtype == np.uint8
        assert set(np.unique(array).tolist()) == {0, 255}
        read_binary(gif)  # strict two-level check of the project's reader


def test_dataset_content_matches_generator(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["parameters"] == {"n_training": N_TRAIN, "n_test": N_TEST, "height": H, "width": W, "seed": 5}
    assert [e["id"] for e in manifest["images"]] == list(range(1, N_TEST + N_TRAIN + 1))
    for entry in manifest["images"]:
        seed = image_seed(5, entry["id"])
        assert entry["seed"] == seed
        rgb, label, fov = generate_phantom(seed, H, W)
        np.testing.assert_array_equal(read_binary(dataset / entry["label"]), label)
        np.testing.assert_array_equal(read_binary(dataset / entry["mask"]), fov)
        stored = iio.imread(dataset / entry["image"], plugin="pillow")
        np.testing.assert_array_equal(stored, np.round(rgb * 255).astype(np.uint8))
        assert PhantomStyle(**entry["style"]) == phantom_style(seed)
    seeds = [e["seed"] for e in manifest["images"]]
    assert len(set(seeds)) == len(seeds)
    styles = [tuple(e["style"]["background_rgb"]) for e in manifest["images"]]
    assert len(set(styles)) == len(styles)  # each image its own style


def test_dataset_second_observer(dataset):
    for i in range(1, N_TEST + 1):
        first = read_binary(dataset / f"test/1st_manual/{i:02d}_manual1.gif")
        second = read_binary(dataset / f"test/2nd_manual/{i:02d}_manual2.gif")
        fov = read_binary(dataset / f"test/mask/{i:02d}_test_mask.gif")
        assert not np.array_equal(first, second)
        assert _dice(first, second) > 0.7
        assert (first == second)[fov].mean() > 0.95


def test_dataset_is_reproducible(dataset, tmp_path):
    write_phantom_dataset(tmp_path, n_training=N_TRAIN, n_test=N_TEST, height=H, width=W, seed=5)
    for path in dataset.rglob("*"):
        if path.is_file():
            assert (tmp_path / path.relative_to(dataset)).read_bytes() == path.read_bytes(), path


def test_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        write_phantom_dataset(tmp_path, n_training=-1, n_test=2, height=64, width=64, seed=0)
    with pytest.raises(ValueError):
        write_phantom_dataset(tmp_path, n_training=0, n_test=0, height=64, width=64, seed=0)
    with pytest.raises(ValueError):
        write_phantom_dataset(tmp_path, n_training=1, n_test=1, height=16, width=64, seed=0)


def test_detail_texture_adds_fine_background_texture_only():
    from cyclesynth.evaluation.image_statistics import background_bands

    plain = PhantomStyle(detail_texture=0.0, noise_sigma=0.0)
    textured = dataclasses.replace(plain, detail_texture=0.03)
    rgb0, label0, fov0 = generate_phantom(5, 192, 192, style=plain)
    rgb1, label1, fov1 = generate_phantom(5, 192, 192, style=textured)
    assert (label0 == label1).all() and (fov0 == fov1).all()
    before, after = background_bands(rgb0, label0, fov0), background_bands(rgb1, label1, fov1)
    assert after.mid > 1.5 * before.mid and after.fine > before.fine + 0.005
    assert after.coarse == pytest.approx(before.coarse, abs=0.005)


def test_noise_is_given_at_drive_size_and_scaled_down():
    style = PhantomStyle(noise_sigma=0.02, detail_texture=0.0, blur_sigma=0.0, texture_strength=0.0)
    clean = dataclasses.replace(style, noise_sigma=0.0)
    for size, expected in ((96, 0.02 * 96 / 565), (192, 0.02 * 192 / 565)):
        noisy, _, fov = generate_phantom(3, size, size, style=style)
        flat, _, _ = generate_phantom(3, size, size, style=clean)
        assert float((noisy - flat)[fov].std()) == pytest.approx(expected, rel=0.1)
