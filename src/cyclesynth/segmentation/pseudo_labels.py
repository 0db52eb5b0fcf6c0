"""Self-training: a trained U-Net (the teacher) labels the unlabeled images for the next one.

Every synthetic image carries the reference's vessel tree, so the U-Nets of the one-label
experiments never learn from the unlabeled images' own vessels. An experiment with the
training set ``pseudo_labels`` (the student) trains on the reference with its label plus the
unlabeled images with its teacher's pseudo-labels (and, with ``include_synthetic``, the kept
synthetic images with the reference's label; :mod:`cyclesynth.segmentation.experiments`).

Which images
    The images the index marks ``unlabeled`` (:func:`pseudo_label_rows`): the unlabeled
    training images, and the test images only with ``dataset.include_test_as_unlabeled`` (a
    transductive run: the test images' pixels, never their labels, train the student).
    Validation images, the reference and unused images are never pseudo-labeled.

Probability
    Each image is predicted with :func:`cyclesynth.segmentation.inference.predict_image` (the workflow's
    ``prediction.stride`` and ``prediction.tta``) in the precision and layout of the teacher's training
    (:func:`cyclesynth.segmentation.saved.prediction_setup`).

Pseudo-label, with a band of doubt
    With ``w`` the teacher's vessel weight, its probabilities are shifted towards vessel by
    the weighted loss; the weight-corrected probability ``q = p / (p + w (1 - p))`` undoes
    that shift and puts the threshold ``t = w / (1 + w)`` of ``p`` at ``q = 0.5``. The band
    ``b`` (0 <= b < 0.5) is measured on ``q``: a pixel is vessel where ``q >= 0.5 + b``,
    background where ``q < 0.5 - b``, and ignored in between (left out of the student's
    loss). On ``p`` these are the edges of :func:`band_edges`; with ``w = 1`` they are
    exactly ``p >= t + b`` and ``p < t - b``, and ``b = 0`` is the plain threshold ``t`` for
    every ``w``. (The band is not laid on ``p`` itself: with the presets' ``w = 10``,
    ``t = 0.909`` and ``t + 0.1`` lies above 1, so no pixel would be a vessel.) The
    pseudo-label is computed from the float32 map, before it is written at 16 bits.

Files (in the teacher's folder, ``results/pseudo_labels/{teacher}/``)
    ``{id}_probability.png``: the teacher's probability (16-bit PNG, 0..65535);
    ``{id}_pseudo_label.png``: the pseudo-label as an 8-bit PNG, 0 = background,
    255 = vessel, 128 = ignored (:data:`FILE_VALUES`; :func:`read_pseudo_label` turns it into
    the training codes 0, 1 and :data:`IGNORE`); ``pseudo_labels.tsv``: one row per image
    (:data:`TABLE_COLUMNS`: id, role, the files, the fractions of vessel and ignored pixels,
    the band and its edges on ``p``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from cyclesynth.data.images import ImageReadError, atomic_path, read_rgb, write_png, write_probability

#: The label value the U-Net's loss ignores (training code of an ignored pixel).
IGNORE = 255
#: Values of the pseudo-label PNG.
FILE_VALUES = {"background": 0, "vessel": 255, "ignored": 128}
TABLE_NAME = "pseudo_labels.tsv"
TABLE_COLUMNS = [
    "id", "role", "image", "probability", "pseudo_label", "vessel_fraction", "ignored_fraction", "band", "low", "high",
]


def check_band(band: float, key: str = "band") -> float:
    """``band`` as a float in [0, 0.5); raises ValueError naming ``key`` otherwise."""
    if isinstance(band, bool) or not isinstance(band, (int, float, np.number)) or not 0.0 <= float(band) < 0.5:
        raise ValueError(f"{key} {band!r}: expected a number from 0 up to (not including) 0.5")
    return float(band)


def band_edges(vessel_weight: float, band: float) -> tuple[float, float]:
    """The edges (low, high) on the probability ``p``: background where ``p < low``, vessel
    where ``p >= high``, ignored in between (the module docstring: ``q = 0.5 -+ band`` on the
    weight-corrected probability)."""
    w, b = float(vessel_weight), check_band(band)
    if not np.isfinite(w) or w <= 0:
        raise ValueError(f"vessel weight {vessel_weight!r}: expected a positive number")
    high = w * (0.5 + b) / (w * (0.5 + b) + (0.5 - b))
    low = w * (0.5 - b) / (w * (0.5 - b) + (0.5 + b))
    return float(low), float(high)


def pseudo_label(probability: np.ndarray, vessel_weight: float, band: float) -> np.ndarray:
    """Training codes (uint8 (H, W)) from a probability map: 1 = vessel (``p >= high``),
    0 = background (``p < low``), :data:`IGNORE` in between (:func:`band_edges`)."""
    low, high = band_edges(vessel_weight, band)
    p = np.asarray(probability, dtype=np.float64)
    codes = np.full(p.shape, IGNORE, dtype=np.uint8)
    codes[p < low] = 0
    codes[p >= high] = 1
    return codes


def encode(codes: np.ndarray) -> np.ndarray:
    """Training codes (0, 1, :data:`IGNORE`) as the PNG's values (:data:`FILE_VALUES`)."""
    out = np.full(codes.shape, FILE_VALUES["ignored"], dtype=np.uint8)
    out[codes == 0] = FILE_VALUES["background"]
    out[codes == 1] = FILE_VALUES["vessel"]
    return out


def read_pseudo_label(path: str | os.PathLike) -> np.ndarray:
    """A pseudo-label PNG as training codes: uint8 (H, W) of 0, 1 and :data:`IGNORE`. Raises
    :class:`ImageReadError` for a file with other values (not written by this module)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: pseudo-label not found")
    values = np.asarray(iio.imread(path, plugin="pillow"))
    unknown = sorted(set(np.unique(values).tolist()) - set(FILE_VALUES.values()))
    if values.ndim != 2 or unknown:
        raise ImageReadError(
            f"{path}: not a pseudo-label (expected one channel of 0 = background, 255 = vessel, 128 = ignored"
            + (f"; found {unknown[:5]}" if unknown else f"; shape {values.shape}") + ")"
        )
    codes = np.full(values.shape, IGNORE, dtype=np.uint8)
    codes[values == FILE_VALUES["background"]] = 0
    codes[values == FILE_VALUES["vessel"]] = 1
    return codes


def pseudo_label_rows(index: pd.DataFrame) -> pd.DataFrame:
    """The images a teacher labels: those marked ``unlabeled`` in the index (the unlabeled
    training images; test images only with dataset.include_test_as_unlabeled), never a
    validation image or the reference."""
    chosen = index["unlabeled"].astype(bool) & ~index["role"].isin(["validation", "reference"])
    return index[chosen]


def output_paths(out_dir: str | os.PathLike, image_id: str) -> dict[str, Path]:
    return {
        "probability": Path(out_dir) / f"{image_id}_probability.png",
        "pseudo_label": Path(out_dir) / f"{image_id}_pseudo_label.png",
    }


def write_pseudo_labels(
    model_path: str | os.PathLike,
    index: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    band: float,
    stride: int | str = "half",
    tta: bool = True,
    device="cpu",
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Predict every image of :func:`pseudo_label_rows` with the U-Net at ``model_path``; write
    its probability map and pseudo-label into ``out_dir`` and the table ``pseudo_labels.tsv``
    (module docstring). Returns the table."""
    from cyclesynth.segmentation.inference import predict_image, resolve_stride
    from cyclesynth.segmentation.saved import load_model, prediction_setup

    model, settings = load_model(model_path, device)
    step = resolve_stride(stride, settings.patch_size, key="--stride")
    precision, channels_last, reason = prediction_setup(model, settings, device)
    low, high = band_edges(settings.vessel_weight, band)
    rows_in = pseudo_label_rows(index)
    log(
        f"pseudo-labeling {len(rows_in)} image(s) with {model_path}: band {band} on the weight-corrected "
        f"probability (w {settings.vessel_weight:g}): background p < {low:.4f}, vessel p >= {high:.4f}; tiles of "
        f"{settings.patch_size} at stride {step}, test-time augmentation {'on' if tta else 'off'}"
    )
    log(f"predicting in {precision.name} ({reason})")
    rows = []
    for row in rows_in.itertuples():
        probability = predict_image(
            model, read_rgb(row.image), patch_size=settings.patch_size, stride=step, tta=tta, device=device,
            precision=precision, channels_last=channels_last,
        )
        codes = pseudo_label(probability, settings.vessel_weight, band)
        paths = output_paths(out_dir, row.id)
        write_probability(paths["probability"], probability)
        write_png(paths["pseudo_label"], encode(codes))
        rows.append(
            {
                "id": row.id,
                "role": row.role,
                "image": row.image,
                **{kind: str(path) for kind, path in paths.items()},
                "vessel_fraction": round(float((codes == 1).mean()), 6),
                "ignored_fraction": round(float((codes == IGNORE).mean()), 6),
                "band": float(band),
                "low": round(low, 6),
                "high": round(high, 6),
            }
        )
        log(f"{row.id} ({row.role}): vessel {rows[-1]['vessel_fraction']:.3f}, ignored {rows[-1]['ignored_fraction']:.3f}")
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    with atomic_path(Path(out_dir) / TABLE_NAME) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pseudo-label table not found (rule pseudo_label writes it)")
    return pd.read_csv(path, sep="\t", dtype={"id": str, "role": str, "image": str, "pseudo_label": str})


def render_markdown(
    students: Mapping[str, Mapping], tables: Mapping[str, pd.DataFrame], labels: Mapping[str, str],
    *, transductive: bool,
) -> str:
    """The Self-training section of table1.md: per student its teacher, band, starting weights
    (``init``: its teacher's or a fresh initialisation) and how much of the pseudo-labeled
    images was vessel and ignored; says when the run is transductive."""
    lines = [
        "## Self-training",
        "",
        "Each student U-Net trains on the reference with its label and on the unlabeled images with",
        "its teacher's pseudo-labels: vessel where the teacher's weight-corrected probability is at",
        "least 0.5 + band, background below 0.5 - band, the pixels in between left out of the loss.",
        "",
    ]
    if transductive:
        lines += [
            "This run is transductive: dataset.include_test_as_unlabeled is true, so the test images",
            "were pseudo-labeled and their pixels (never their labels) trained the students.",
            "",
        ]
    lines += [
        "| Student | Teacher | Band | Synthetic too | Starts from | Images | Vessel fraction | Ignored fraction |",
        "|---|---|--:|---|---|--:|--:|--:|",
    ]
    for student, settings in students.items():
        teacher = str(settings["teacher"])
        table = tables.get(teacher)
        n = len(table) if table is not None else 0
        vessel = f"{table['vessel_fraction'].mean():.3f}" if n else "—"
        ignored = f"{table['ignored_fraction'].mean():.3f}" if n else "—"
        lines.append(
            f"| {labels.get(student, student)} (`{student}`) | {labels.get(teacher, teacher)} (`{teacher}`) "
            f"| {float(settings['band']):g} | {'yes' if settings.get('include_synthetic') else 'no'} "
            f"| {'its teacher' if settings.get('init', 'scratch') == 'teacher' else 'scratch'} | {n} "
            f"| {vessel} | {ignored} |"
        )
    lines.append("")
    return "\n".join(lines)
