import numpy as np
import pytest
from PIL import Image

from cyclesynth.data.images import ImageReadError, atomic_path, read_binary, read_rgb, write_npy, write_png


def test_png_round_trip_of_rgb_and_masks(tmp_path):
    rgb = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    write_png(tmp_path / "a.png", rgb)
    back = read_rgb(tmp_path / "a.png")
    assert back.shape == (20, 30, 3) and back.dtype == np.float32
    np.testing.assert_allclose(back, rgb, atol=0.5 / 255 + 1e-6)
    mask = rgb[:, :, 0] > 0.5
    write_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_binary(tmp_path / "m.png"), mask)


def test_lzw_tiff_and_gif_are_read_like_drive(tmp_path):
    rgb = (np.random.default_rng(1).random((12, 9, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.tif", compression="tiff_lzw")
    np.testing.assert_allclose(read_rgb(tmp_path / "x.tif"), rgb / 255.0, atol=1e-6)
    mask = np.zeros((12, 9), np.uint8)
    mask[3:6] = 255
    Image.fromarray(mask).save(tmp_path / "m.gif")
    assert read_binary(tmp_path / "m.gif").sum() == 27


def test_grayscale_is_replicated_to_rgb(tmp_path):
    Image.fromarray(np.full((5, 6), 128, np.uint8)).save(tmp_path / "g.png")
    image = read_rgb(tmp_path / "g.png")
    assert image.shape == (5, 6, 3) and np.allclose(image, 128 / 255)


def test_non_binary_label_is_refused_with_values(tmp_path):
    Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6) * 8).save(tmp_path / "l.png")
    with pytest.raises(ImageReadError, match=r"l\.png: label/mask is not binary"):
        read_binary(tmp_path / "l.png")


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        read_rgb(tmp_path / "nope.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match=r"bad\.tif: cannot read image"):
        read_rgb(tmp_path / "bad.tif")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    write_npy(target, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2] and list(tmp_path.iterdir()) == [target]


def test_sixteen_bit_png_keeps_its_precision(tmp_path):
    import imageio.v3 as iio

    values = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    write_png(tmp_path / "p.png", values)
    back = iio.imread(tmp_path / "p.png", plugin="pillow")
    assert back.dtype == np.uint16 and back.tolist() == values.tolist()


def test_a_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path):
    """SIGKILL while the data is being written: only a hidden temporary file remains, which
    no rule names as an output; the final name never exists half-written."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    target = tmp_path / "model.pt"
    child = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from cyclesynth.data.images import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    with open(tmp, 'wb') as handle:\n"
            "        handle.write(b'x' * 1000); handle.flush()\n"
            "        print('writing', flush=True); time.sleep(60)\n"
        ), str(target)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )  # fmt: skip
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)  # dead: nothing more is written or cleaned up
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.pt.") and leftovers[0].endswith(".tmp.pt")


@pytest.mark.parametrize("levels", [(0, 255), (0, 1), (0, 128), (3, 200)])
def test_any_two_valued_label_is_binary_with_the_higher_value_as_foreground(tmp_path, levels):
    mask = np.zeros((6, 7), bool)
    mask[2:4, 1:5] = True
    Image.fromarray(np.where(mask, levels[1], levels[0]).astype(np.uint8)).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_binary(tmp_path / "l.png"), mask)


def test_constant_masks_follow_their_level(tmp_path):
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(tmp_path / "fov.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "empty.png")
    assert read_binary(tmp_path / "fov.png").all() and not read_binary(tmp_path / "empty.png").any()


def test_three_valued_label_is_refused_naming_the_count(tmp_path):
    Image.fromarray(np.array([[0, 128, 255]] * 3, np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(ImageReadError, match=r"l\.png: label/mask is not binary: found 3 values such as \[0, 128, 255\]"):
        read_binary(tmp_path / "l.png")


def test_16_bit_images_are_scaled_to_unit_range(tmp_path):
    """16-bit inputs: grayscale TIFF and PNG at full precision; RGB TIFF (Pillow decodes
    48-bit RGB to 8 bits per channel) within 1/255."""
    import tifffile

    rng = np.random.default_rng(3)
    grey = (rng.random((10, 12)) * 65535).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.tif")
    Image.fromarray(grey).save(tmp_path / "g.png")
    for name in ("g.tif", "g.png"):
        image = read_rgb(tmp_path / name)
        np.testing.assert_allclose(image[:, :, 1], grey / 65535.0, atol=1e-6)
    rgb = (rng.random((10, 12, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.testing.assert_allclose(read_rgb(tmp_path / "rgb.tif"), rgb / 65535.0, atol=1 / 255)
