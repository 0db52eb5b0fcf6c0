"""Reading and writing images: RGB inputs, binary masks, 8-bit PNG outputs.

Inputs are read with imageio's Pillow plugin (DRIVE's TIFFs are LZW-compressed, which
Pillow decodes without extra codecs). Every writer goes through :func:`atomic_path`, so a
killed process never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageReadError(ValueError):
    """An input image could not be read or does not have the expected content."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def missing_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable file ("is a folder, ..." or "file not found"), or None."""
    path = Path(path)
    if path.is_file():
        return None
    if path.is_dir():
        return f"{path} is a folder, not a file: give the image file itself (for a folder of images use a glob, e.g. '{path}/*.png')"
    return f"{path}: file not found"


def _read(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    problem = missing_file(path)
    if problem:
        raise ImageReadError(problem)
    try:
        array = iio.imread(path, plugin="pillow", index=0)
    except Exception as err:  # Pillow raises many types for corrupt files
        raise ImageReadError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err
    array = np.asarray(array)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ImageReadError(f"{path}: unexpected image shape {array.shape}")
    return array


def to_unit_float(array: np.ndarray) -> np.ndarray:
    """Scale an integer image to float32 in [0, 1] (floats are clipped)."""
    if np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float32) / np.iinfo(array.dtype).max).astype(np.float32)
    if array.dtype == bool:
        return array.astype(np.float32)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def read_rgb(path: str | os.PathLike, notes: list[str] | None = None) -> np.ndarray:
    """Read an image as float32 RGB in [0, 1], shape (H, W, 3).

    Grayscale images are converted (the grey level copied to the three channels) and an
    alpha channel is dropped; each conversion is appended to ``notes`` when given.
    """
    array = _read(path)
    if array.ndim == 2 or array.shape[2] in (1, 2):
        if notes is not None:
            notes.append(f"{path}: grayscale image converted to RGB (grey level copied to R, G and B)")
        array = np.repeat(array.reshape(array.shape[0], array.shape[1], -1)[:, :, :1], 3, axis=2)
    elif array.shape[2] == 4:
        if notes is not None:
            notes.append(f"{path}: alpha channel dropped (RGBA read as RGB)")
        array = array[:, :, :3]
    elif array.shape[2] != 3:
        raise ImageReadError(f"{path}: expected an RGB image, got {array.shape[2]} channels")
    return to_unit_float(array)


def read_binary(path: str | os.PathLike, *, strict: bool = True) -> np.ndarray:
    """Read a label or mask as a boolean array (H, W).

    Any two-valued image is binary: the higher value is the foreground (0/255, 0/1, 0/128 and
    so on); a constant image is foreground when its level is above half the range. Other images
    are split at half the range. Colour masks (DRIVE's second observer decodes as RGB) use their
    first channel. With ``strict``, a mask of more than two values that is not two-level within
    5 % of the range (as lossy GIF palettes give) raises :class:`ImageReadError`.
    """
    array = _read(path)
    if array.ndim == 3:
        array = array[:, :, 0]
    levels = np.unique(array)
    if len(levels) == 2:
        return array == levels[1]
    values = to_unit_float(array)
    if strict and len(levels) > 2:
        near_binary = (values <= 0.05) | (values >= 0.95)
        if not near_binary.all():
            raise ImageReadError(
                f"{path}: label/mask is not binary: found {len(levels)} values such as "
                f"{levels[:5].tolist()} (expected only two values, such as 0 and 255)"
            )
    return values > 0.5


def read_fov(path: str, shape) -> np.ndarray:
    """The FOV mask, or the whole image where there is none."""
    return read_binary(path) if path else np.ones(shape, bool)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert a [0, 1] float image (or bool mask) to uint8."""
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a PNG atomically: uint8 and uint16 arrays as they are (8- or 16-bit PNG),
    bool masks and [0, 1] floats as 8-bit."""
    data = image if image.dtype in (np.uint8, np.uint16) else to_uint8(image)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, data, plugin="pillow", extension=".png")


def write_probability(path: str | os.PathLike, probability: np.ndarray) -> None:
    """Write a probability map in [0, 1] as a 16-bit PNG (value x 65535), atomically."""
    write_png(path, np.round(np.clip(probability, 0.0, 1.0) * 65535).astype(np.uint16))


def read_probability(path: str | os.PathLike) -> np.ndarray:
    """Read a probability map written by :func:`write_probability` as float64 in [0, 1]."""
    return iio.imread(path, plugin="pillow").astype(np.float64) / 65535.0


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a NumPy array atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)
