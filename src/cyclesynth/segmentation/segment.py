"""Segmenting images with a trained U-Net: the product, for images with no label.

For each image :func:`segment_files` writes three files into one folder, named by the image's
name (its id in the workflow, or its file stem):

* ``{name}_mask.png``: the vessel mask (8-bit, 0 and 255), the probability binarised at the
  threshold (by default w / (1 + w), w the model's vessel weight, fixed without labels);
* ``{name}_probability.png``: the vessel probability as a 16-bit PNG (0..65535);
* ``{name}_overlay.png``: the image with the mask drawn over it in colour;

and a table ``segmentations.tsv`` (one row per image: files, size, threshold, vessel
fraction). Images may have any size and format that :func:`cyclesynth.data.images.read_rgb` reads;
an image smaller than the model's patch is padded (mirrored) for prediction and cropped back.
The probabilities come from :func:`cyclesynth.segmentation.inference.predict_image`: tiles of the model's
patch size at ``stride`` (default ``half`` the patch), blended where they overlap, averaged
over the 8 flips and quarter turns with ``tta`` (default on).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from cyclesynth.data.images import ImageReadError, atomic_path, read_rgb, write_png, write_probability

OUTPUT_KINDS = ("mask", "probability", "overlay")
TABLE_NAME = "segmentations.tsv"
TABLE_COLUMNS = ["name", "image", "height", "width", "threshold", "vessel_fraction", "mask", "probability", "overlay"]
OVERLAY_COLOUR = (0.0, 1.0, 0.25)  # vessels drawn in green, which stands out on fundus red
OVERLAY_ALPHA = 0.7


class SegmentationError(ValueError):
    """Bad input to segmentation (no model, unreadable image, clashing names)."""


def output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """The mask, probability and overlay files of the image called ``name``."""
    return {kind: Path(out_dir) / f"{name}_{kind}.png" for kind in OUTPUT_KINDS}


def resolve_threshold(threshold: str | float, vessel_weight: float) -> float:
    """``weight_corrected`` (w / (1 + w)) or a number in (0, 1)."""
    if isinstance(threshold, str) and threshold.strip() == "weight_corrected":
        return vessel_weight / (1.0 + vessel_weight)
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise SegmentationError(f"threshold {threshold!r}: expected 'weight_corrected' or a number in (0, 1)") from None
    if not 0.0 < value < 1.0:
        raise SegmentationError(f"threshold {value}: must lie strictly between 0 and 1")
    return value


def overlay(image: np.ndarray, mask: np.ndarray, colour=OVERLAY_COLOUR, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The image (H, W, 3) in [0, 1] with the mask's pixels blended towards ``colour``."""
    result = np.array(image, dtype=np.float32, copy=True)
    result[mask] = (1.0 - alpha) * result[mask] + alpha * np.asarray(colour, np.float32)
    return result


class Progress:
    """A progress bar on a terminal (``[#####.....] 5/10 name  1.2 s/image``); one line per
    image elsewhere (a log file)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()

    def step(self, name: str) -> None:
        self.done += 1
        rate = (time.perf_counter() - self.start) / self.done
        filled = int(round(self.width * self.done / max(self.total, 1)))
        bar = "#" * filled + "." * (self.width - filled)
        text = f"[{bar}] {self.done}/{self.total} {name}  {rate:.2f} s/image"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class SegmentationJob:
    name: str
    image: str


def plan_jobs(images: Sequence[str | os.PathLike], names: Sequence[str] | None = None) -> list[SegmentationJob]:
    """Pair every image with its output name (``names`` or the file stems); names must be
    unique and every image must exist."""
    images = [str(p) for p in images]
    if not images:
        raise SegmentationError("no image to segment")
    if names is None:
        names = [Path(p).stem for p in images]
    elif len(names) != len(images):
        raise SegmentationError(f"{len(names)} names for {len(images)} images")
    folders = [str(p) for p in images if Path(p).is_dir()]
    if folders:
        raise SegmentationError(
            "folder(s) given where an image file is expected: " + ", ".join(folders)
            + " (give the files, e.g. a shell glob 'folder/*.png')"
        )
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise SegmentationError("image file(s) not found: " + ", ".join(missing))
    seen: dict[str, str] = {}
    for name, path in zip(names, images):
        if name in seen:
            raise SegmentationError(
                f"{seen[name]} and {path} would both be written as '{name}_*.png': give the images "
                "distinct file names, or outputs names with --names"
            )
        seen[name] = path
    return [SegmentationJob(n, p) for n, p in zip(names, images)]


def segment_files(
    model_path: str | os.PathLike,
    images: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    threshold: str | float = "weight_corrected",
    stride: int | str = "half",
    tta: bool = True,
    device="cpu",
    progress: Progress | None | bool = True,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Segment ``images`` with the U-Net at ``model_path``; write each image's mask,
    probability and overlay into ``out_dir`` and the table ``segmentations.tsv`` (rows of
    earlier runs into the same folder are kept unless the same name is segmented again).
    ``stride`` (an integer from 1 to the model's patch size, or ``half``) and ``tta`` say how
    the image is tiled and augmented (:func:`cyclesynth.segmentation.inference.predict_image`). Returns this
    run's rows."""
    from cyclesynth.segmentation.inference import predict_image, resolve_stride
    from cyclesynth.segmentation.saved import load_model, prediction_setup

    jobs = plan_jobs(images, names)
    model_path = Path(model_path)
    if not model_path.is_file():
        raise SegmentationError(f"{model_path}: U-Net model file not found (train one with the workflow first)")
    try:
        model, settings = load_model(model_path, device)
    except (ValueError, RuntimeError, OSError) as err:
        raise SegmentationError(f"{model_path}: cannot load the U-Net ({err})") from err
    cut = resolve_threshold(threshold, settings.vessel_weight)
    try:
        step = resolve_stride(stride, settings.patch_size)
    except ValueError as err:
        raise SegmentationError(f"{err} of the model ({model_path})") from None
    precision, channels_last, reason = prediction_setup(model, settings, device)
    out_dir = Path(out_dir)
    bar = Progress(len(jobs)) if progress is True else (progress or None)
    if log:
        log(
            f"segmenting {len(jobs)} image(s) with {model_path} (threshold {cut:.4f}; tiles of "
            f"{settings.patch_size} at stride {step}, test-time augmentation {'on' if tta else 'off'}) into {out_dir}"
        )
        log(f"predicting in {precision.name} ({reason})")
    rows = []
    for job in jobs:
        try:
            image = read_rgb(job.image)
        except ImageReadError as err:
            raise SegmentationError(str(err)) from err
        probability = predict_image(
            model, image, patch_size=settings.patch_size, stride=step, tta=tta, device=device, precision=precision,
            channels_last=channels_last,
        )
        mask = probability >= cut
        paths = output_paths(out_dir, job.name)
        write_probability(paths["probability"], probability)
        write_png(paths["mask"], mask)
        write_png(paths["overlay"], overlay(image, mask))
        rows.append(
            {
                "name": job.name,
                "image": job.image,
                "height": image.shape[0],
                "width": image.shape[1],
                "threshold": round(cut, 6),
                "vessel_fraction": round(float(mask.mean()), 6),
                **{kind: str(path) for kind, path in paths.items()},
            }
        )
        if bar is not None:
            bar.step(job.name)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    write_table(table, out_dir / TABLE_NAME)
    return table


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write ``segmentations.tsv``, merged with the rows of an earlier run for other names."""
    if path.is_file():
        earlier = pd.read_csv(path, sep="\t", dtype={"name": str})
        table = pd.concat([earlier[~earlier["name"].isin(table["name"])], table], ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: segmentation table not found")
    return pd.read_csv(path, sep="\t", dtype={"name": str})
