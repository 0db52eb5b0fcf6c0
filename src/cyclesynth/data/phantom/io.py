"""Writing phantoms in DRIVE's layout and file formats (TIFF images, GIF labels and masks), one
image (:func:`write_phantom_image`) or a whole dataset with its ``manifest.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cyclesynth.data import naming
from cyclesynth.data.images import atomic_path, to_uint8
from cyclesynth.data.phantom.style import phantom_style
from cyclesynth.data.phantom.render import _check_size, generate_phantom, second_observer_label


def image_seed(seed: int, image_id: int) -> int:
    """Seed of image ``image_id`` in a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(image_id)]).generate_state(1, dtype=np.uint32)[0])


def _write_tiff(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(rgb)).save(tmp, format="TIFF", compression="tiff_lzw")
        os.chmod(tmp, 0o644)


def _write_gif(path: Path, mask: np.ndarray) -> None:
    # optimize=False keeps the full grey palette, so the file decodes as greyscale ("L"),
    # like DRIVE's labels, rather than as a palette image converted to RGB
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(mask)).save(tmp, format="GIF", optimize=False)
        os.chmod(tmp, 0o644)


def write_phantom_image(
    root: str | os.PathLike, split: str, image_id: int, *, height: int, width: int, seed: int
) -> dict:
    """Write one phantom image's files in DRIVE's layout and naming; return its manifest entry.

    The image's own seed is :func:`image_seed` of (``seed``, ``image_id``), so each image is
    the same whichever others are generated beside it (the workflow makes one job per image).
    Test images also get a second observer's label.
    """
    if split not in ("training", "test"):
        raise ValueError(f"split must be 'training' or 'test', got {split!r}")
    _check_size(height, width)
    root = Path(root)
    image_id = int(image_id)
    s = image_seed(seed, image_id)
    style = phantom_style(s)
    rgb, label, fov = generate_phantom(s, height, width, style)
    name = naming.phantom_id(image_id)
    entry = {"id": image_id, "split": split, "seed": s, "style": style.to_dict()}
    entry["image"] = naming.relative_path(name, split, "image")
    entry["label"] = naming.relative_path(name, split, "label")
    entry["mask"] = naming.relative_path(name, split, "fov")
    _write_tiff(root / entry["image"], rgb)
    _write_gif(root / entry["label"], label)
    _write_gif(root / entry["mask"], fov)
    if split == "test":
        entry["second_observer"] = naming.relative_path(name, split, "label2")
        _write_gif(root / entry["second_observer"], second_observer_label(s, height, width))
    entry["vessel_fraction_in_fov"] = round(float(label.sum() / max(fov.sum(), 1)), 5)
    return entry


def write_phantom_dataset(
    root: str | os.PathLike, *, n_training: int, n_test: int, height: int, width: int, seed: int
) -> None:
    """Write a phantom dataset in DRIVE's layout and formats under ``root``.

    Test images get ids 1..n_test, training images n_test+1..n_test+n_training (DRIVE:
    01..20 and 21..40). Images are LZW-compressed 8-bit RGB TIFFs; labels, second-observer
    labels (test only) and FOV masks are single-frame 8-bit GIFs with values 0 and 255. Each
    image has its own seed (:func:`image_seed`) and its own random style. ``manifest.json``
    records the parameters, ids, seeds and styles.
    """
    for name, value in (("n_training", n_training), ("n_test", n_test)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if n_training + n_test == 0:
        raise ValueError("n_training and n_test are both 0: nothing to generate")
    _check_size(height, width)
    root = Path(root)
    plan = [("test", i) for i in range(1, n_test + 1)] + [
        ("training", i) for i in range(n_test + 1, n_test + n_training + 1)
    ]
    images = [write_phantom_image(root, split, image_id, height=height, width=width, seed=seed) for split, image_id in plan]
    manifest = {
        "generator": "cyclesynth.phantom",  # the manifests' name for the generator, kept as written before the package split
        "layout": "DRIVE",
        "parameters": {
            "n_training": int(n_training),
            "n_test": int(n_test),
            "height": int(height),
            "width": int(width),
            "seed": int(seed),
        },
        "images": images,
    }
    with atomic_path(root / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o644)
