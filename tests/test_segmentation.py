"""`cyclesynth segment`: a trained U-Net applied to new images of any size and format."""

import io
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cyclesynth.data.phantom.render import generate_phantom
from cyclesynth.data.phantom.style import phantom_style
from cyclesynth.segmentation.segment import (
    Progress,
    SegmentationError,
    overlay,
    plan_jobs,
    resolve_threshold,
    segment_files,
)
from cyclesynth.segmentation.settings import UNetSettings
from cyclesynth.segmentation.saved import save_model
from cyclesynth.segmentation.training import train_unet


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny U-Net trained for 40 epochs on two 64x64 phantoms (32x32 patches)."""
    images, labels = [], []
    for seed in (1, 2):
        rgb, label, _ = generate_phantom(seed, 64, 64, phantom_style(seed))
        images.append(rgb.astype(np.float32))
        labels.append(label.astype(bool))
    settings = UNetSettings(base_channels=8, depth=2, batch_size=4, epochs=40, lr=3e-3, patch_size=32, patch_stride=32)
    result = train_unet(images, labels, None, settings, device="cpu", seed=0, log=lambda m: None)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, result.state, settings)
    return path


def _write_images(folder):
    """Other sizes than the 64x64 training images, several formats, one smaller than a patch."""
    rgb, _, _ = generate_phantom(7, 90, 70, phantom_style(7))
    rgb8 = (rgb * 255).round().astype(np.uint8)
    folder.mkdir(exist_ok=True)
    Image.fromarray(rgb8).save(folder / "wide.jpg", quality=95)
    grey16 = (rgb[:, :, 1] * 65535).round().astype(np.uint16)
    Image.fromarray(grey16[:50, :45]).save(folder / "grey16.tif")
    Image.fromarray(rgb8[:20, :25]).save(folder / "tiny.png")  # smaller than the 32-pixel patch
    return [folder / "wide.jpg", folder / "grey16.tif", folder / "tiny.png"], [(90, 70), (50, 45), (20, 25)]


def test_segment_command_writes_mask_probability_and_overlay(model, tmp_path):
    images, sizes = _write_images(tmp_path / "in")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "cyclesynth", "segment", "--model", str(model), "--out", str(out), *map(str, images)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "[##############################] 3/3 tiny" in result.stderr  # the progress bar's last step
    threshold = 10.0 / 11.0  # w / (1 + w), the default, with the model's vessel weight 10
    table = pd.read_csv(out / "segmentations.tsv", sep="\t", dtype={"name": str})
    assert table["name"].tolist() == ["wide", "grey16", "tiny"]
    assert table[["height", "width"]].apply(tuple, axis=1).tolist() == sizes
    assert np.allclose(table["threshold"], threshold, atol=1e-6)
    for name, size in zip(table["name"], sizes):
        mask = iio.imread(out / f"{name}_mask.png")
        probability = iio.imread(out / f"{name}_probability.png")
        drawn = iio.imread(out / f"{name}_overlay.png")
        assert mask.shape == probability.shape == size and drawn.shape == (*size, 3)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert probability.dtype == np.uint16
        np.testing.assert_array_equal(mask == 255, probability / 65535.0 >= threshold - 1e-5)
        row = table[table["name"] == name].iloc[0]
        assert row["vessel_fraction"] == pytest.approx((mask == 255).mean(), abs=1e-6)
    # the trained model finds the phantom's vessels in the wide image: its probability is
    # higher on vessel pixels than elsewhere
    rgb, label, _ = generate_phantom(7, 90, 70, phantom_style(7))
    probability = iio.imread(out / "wide_probability.png") / 65535.0
    assert probability[label].mean() > probability[~label].mean() + 0.1


def test_segmenting_more_images_later_keeps_the_earlier_rows(model, tmp_path):
    images, _ = _write_images(tmp_path / "in")
    segment_files(model, images[:1], tmp_path / "out", threshold="0.5", progress=False)
    segment_files(model, images[1:], tmp_path / "out", names=["g", "t"], threshold=0.5, progress=False)
    table = pd.read_csv(tmp_path / "out/segmentations.tsv", sep="\t", dtype={"name": str})
    assert table["name"].tolist() == ["wide", "g", "t"] and (table["threshold"] == 0.5).all()
    assert (tmp_path / "out/g_overlay.png").is_file()


def test_bad_input_is_named(model, tmp_path):
    images, _ = _write_images(tmp_path / "in")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/wide.png").write_bytes((tmp_path / "in/tiny.png").read_bytes())
    with pytest.raises(SegmentationError, match=r"wide.jpg and .*other/wide.png would both be written as 'wide_\*.png'"):
        plan_jobs([images[0], tmp_path / "other/wide.png"])
    with pytest.raises(SegmentationError, match=r"image file\(s\) not found: .*nope.png"):
        plan_jobs([tmp_path / "nope.png"])
    with pytest.raises(SegmentationError, match=r"missing.pt: U-Net model file not found"):
        segment_files(tmp_path / "missing.pt", images, tmp_path / "out", progress=False)
    with pytest.raises(SegmentationError, match=r"threshold 1.5: must lie strictly between 0 and 1"):
        resolve_threshold("1.5", 10.0)
    result = subprocess.run(
        [sys.executable, "-m", "cyclesynth", "segment", "--model", str(tmp_path / "missing.pt"), "--out",
         str(tmp_path / "o"), str(images[0])], capture_output=True, text=True,
    )
    assert result.returncode == 1 and "cyclesynth segment: error: " in result.stderr and "missing.pt" in result.stderr


def test_overlay_blends_only_the_mask():
    image = np.full((4, 5, 3), 0.5, np.float32)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    drawn = overlay(image, mask, colour=(0.0, 1.0, 0.0), alpha=0.5)
    np.testing.assert_allclose(drawn[1, 2], [0.25, 0.75, 0.25])
    np.testing.assert_array_equal(drawn[~mask], image[~mask])
    assert resolve_threshold("weight_corrected", 4.0) == pytest.approx(0.8)


def test_progress_writes_lines_to_a_log():
    stream = io.StringIO()
    bar = Progress(2, stream=stream, width=4)
    bar.step("a")
    bar.step("b")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[##..] 1/2 a") and lines[1].startswith("[####] 2/2 b")


def test_stride_and_tta_choose_how_the_image_is_predicted(model, tmp_path):
    """Default: tiles at half the patch, blended, 8 orientations; --stride 32 --no-tta is the
    training grid (the map predict_probabilities gives, within the 16-bit PNG's rounding)."""
    from cyclesynth.data.images import read_probability, read_rgb
    from cyclesynth.segmentation.saved import load_model
    from cyclesynth.segmentation.inference import predict_probabilities

    images, _ = _write_images(tmp_path / "in")
    grid_out, default_out = tmp_path / "grid", tmp_path / "default"
    result = subprocess.run(
        [sys.executable, "-m", "cyclesynth", "segment", "--model", str(model), "--out", str(grid_out),
         "--stride", "32", "--no-tta", "--no-progress", str(images[0])], capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "tiles of 32 at stride 32, test-time augmentation off" in result.stderr
    segment_files(model, images[:1], default_out, progress=False)
    unet, _ = load_model(model, "cpu")
    expected = predict_probabilities(unet, read_rgb(images[0]), patch_size=32, stride=32, device="cpu")
    grid = read_probability(grid_out / "wide_probability.png")
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1 / 65535)
    assert np.abs(read_probability(default_out / "wide_probability.png") - grid).max() > 1e-3
    for bad in ("0", "33", "quarter"):
        result = subprocess.run(
            [sys.executable, "-m", "cyclesynth", "segment", "--model", str(model), "--out", str(tmp_path / "o"),
             "--stride", bad, str(images[0])], capture_output=True, text=True,
        )
        assert result.returncode == 1 and "cyclesynth segment: error: stride" in result.stderr, result.stderr
    with pytest.raises(SegmentationError, match=r"stride 33: expected 'half' .* patch size 32"):
        segment_files(model, images[:1], tmp_path / "o", stride=33, progress=False)
