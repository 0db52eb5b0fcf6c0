"""Datasets: finding images, labels and FOV masks, assigning roles, validating contents.

A dataset is a table with one row per image: ``id`` (str), ``split`` (training/test),
``image``, ``label``, ``fov`` and ``label2`` (second observer; test only) paths, empty where
absent. :func:`plan_drive` builds it from file names alone (cheap: the Snakefile plans its jobs
from it, through :func:`cyclesynth.pipeline.dataset_plan.plan`); :func:`validate_dataset` reads every file and checks sizes and binarity before
any training starts; :func:`assign_roles` marks the reference, the unlabeled images and the
test images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cyclesynth.data import naming
from cyclesynth.data.images import ImageReadError, read_binary, read_rgb

INDEX_COLUMNS = ["id", "split", "image", "label", "fov", "label2", "role", "unlabeled"]
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm")


class DatasetError(ValueError):
    """The dataset on disk is incomplete or inconsistent."""


@dataclass(frozen=True)
class RoleSettings:
    """Which images play which part (config section ``dataset``)."""

    reference: str | None = None  # None: the first training image
    include_test_as_unlabeled: bool = False
    max_unlabeled: int | None = None  # None: every candidate
    # labeled training images held out of everything (no CycleGAN, no pseudo-label, no
    # training) and scored apart: where settings are chosen without the test images
    validation: tuple[str, ...] = ()


def _sort_key(image_id: str):
    return (0, int(image_id), image_id) if image_id.isdigit() else (1, 0, image_id)


def _find_one(folder: Path, stem: str) -> str:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return str(candidate)
    return ""


def plan_drive(root: str | Path) -> pd.DataFrame:
    """List a dataset in the DRIVE layout (:mod:`cyclesynth.data.naming`) from its file names:
    each split's images with their label, FOV mask and, for test, second observer's label, in
    any of :data:`IMAGE_SUFFIXES`. Missing labels or masks are left empty here and reported by
    :func:`check_complete`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} does not exist or is not a folder (config key dataset.root)")
    rows = []
    for split in naming.SPLITS:
        folder = naming.folder(root, split, "image")
        if not folder.is_dir():
            continue
        pattern = naming.id_pattern(split, "image")
        for path in sorted(folder.iterdir()):
            match = pattern.match(path.stem)
            if path.suffix.lower() not in IMAGE_SUFFIXES or not match:
                continue
            row = {"id": match["id"], "split": split, "image": str(path), "label": "", "fov": "", "label2": ""}
            for kind in naming.kinds_of(split)[1:]:
                row[kind] = _find_one(naming.folder(root, split, kind), naming.stem(match["id"], split, kind))
            rows.append(row)
    if not rows:
        expected = " and ".join(f"{root}/{naming.relative_path('<id>', split, 'image')}" for split in naming.SPLITS)
        raise DatasetError(f"dataset root {root} holds no images: expected {expected} (the DRIVE layout)")
    table = pd.DataFrame(rows)
    duplicated = table["id"][table["id"].duplicated()].tolist()
    if duplicated:
        raise DatasetError(f"dataset root {root}: image ids occur in both splits: {duplicated}")
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["split"] != "training", _sort_key(rows[i]["id"])))
    return table.iloc[order].reset_index(drop=True)


def orphan_labels(root: str | Path) -> list[str]:
    """Label or mask files whose image is missing (DRIVE layout)."""
    orphans = []
    for split in naming.SPLITS:
        images = naming.folder(root, split, "image")
        for kind in ("label", "label2", "fov"):
            folder = naming.folder(root, split, kind)
            if not folder.is_dir():
                continue
            pattern = naming.id_pattern(split, kind)
            for path in sorted(folder.iterdir()):
                match = pattern.match(path.stem)
                if match and not _find_one(images, naming.stem(match["id"], split, "image")):
                    orphans.append(str(path))
    return orphans


def check_no_orphans(root: str | Path) -> None:
    """Raise :class:`DatasetError` listing the labels and masks whose image is missing."""
    orphans = orphan_labels(root)
    if orphans:
        raise DatasetError(
            f"labels or masks without their image (expected <root>/{naming.template('image')}):\n  "
            + "\n  ".join(orphans)
        )


def assign_roles(table: pd.DataFrame, roles: RoleSettings) -> pd.DataFrame:
    """Add ``role`` (reference / unlabeled / validation / test / unused) and ``unlabeled``
    (bool) columns. Validation images (``roles.validation``: labeled training images, not the
    reference) are never candidates for synthesis."""
    table = table.copy()
    training = table[table["split"] == "training"]
    if training.empty:
        raise DatasetError("the dataset has no training images: a reference image is needed")
    labeled_ids = training.loc[training["label"] != "", "id"].tolist()
    reference = roles.reference if roles.reference is not None else (labeled_ids or [None])[0]
    reference = None if reference is None else str(reference)
    if reference not in labeled_ids:
        raise DatasetError(
            f"config key dataset.reference: '{reference}' is not a labeled training image; "
            f"labeled training ids are {labeled_ids}"
        )
    validation = [str(i) for i in roles.validation]
    unknown = [i for i in validation if i not in labeled_ids]
    if unknown:
        raise DatasetError(
            f"config key dataset.validation: {unknown} not among the labeled training images "
            f"(a validation image needs its label); labeled training ids are {labeled_ids}"
        )
    if reference in validation:
        raise DatasetError(
            f"config key dataset.validation: '{reference}' is the reference; the reference cannot be held out"
        )
    table["role"] = np.where(table["split"] == "test", "test", "unlabeled")
    table.loc[table["id"] == reference, "role"] = "reference"
    table.loc[table["id"].isin(validation), "role"] = "validation"
    if not (table["role"] == "unlabeled").any() and validation and not roles.include_test_as_unlabeled:
        raise DatasetError(
            f"config key dataset.validation: holding out {validation} leaves no unlabeled training image"
        )
    candidates = (table["role"] == "unlabeled") | (
        (table["role"] == "test") & roles.include_test_as_unlabeled
    )
    candidate_ids = table.loc[candidates, "id"].tolist()
    if roles.max_unlabeled is not None:
        candidate_ids = candidate_ids[: roles.max_unlabeled]
    table["unlabeled"] = table["id"].isin(candidate_ids)
    table.loc[(table["role"] == "unlabeled") & ~table["unlabeled"], "role"] = "unused"
    if not table["unlabeled"].any():
        raise DatasetError(
            "no unlabeled images: the dataset has only the reference among its training images "
            "(add images, or set dataset.include_test_as_unlabeled)"
        )
    extra = [c for c in table.columns if c not in INDEX_COLUMNS]  # e.g. a samplesheet's origin
    return table[INDEX_COLUMNS + extra].reset_index(drop=True)


def check_complete(index: pd.DataFrame, *, require_fov: bool = True, require_test_labels: bool = True) -> None:
    """Every file the workflow needs is named: a label for the reference and (with
    ``require_test_labels``, DRIVE and phantom) the test images, a FOV mask for every image in
    use (with ``require_fov``). Other training images may lack labels: the ``all_labels``
    experiment uses those that have them. A samplesheet needs neither: an image without a FOV
    mask is used whole, and a test image without a label is segmented but not scored."""
    problems = []
    for row in index.itertuples():
        if row.role == "unused":
            continue
        if require_fov and not row.fov:
            problems.append(f"image {row.image} has no FOV mask (expected {_expected(row, 'fov')})")
        needs_label = row.role == "reference" or (row.role == "test" and require_test_labels)
        if needs_label and not row.label:
            problems.append(f"image {row.image} has no label (expected {_expected(row, 'label')})")
    if problems:
        raise DatasetError("incomplete dataset:\n  " + "\n  ".join(problems))


def _expected(row, kind: str) -> str:
    return naming.path(Path(row.image).parent.parent.parent, row.id, row.split, kind)


# A label whose vessels cover more than this share of its FOV is probably inverted (vessels
# are about 8-14 % of a fundus photograph's FOV: DRIVE 12 %, CHASE_DB1 7 %, HRF 8-10 %).
INVERTED_LABEL_SHARE = 0.5


def check_image(image: str, annotations: dict[str, str], *, min_size: int = 1, context: str = "") -> dict:
    """Read one image and its annotations (label, fov, label2; empty paths skipped): readable,
    sizes agree, masks binary, at least ``min_size`` pixels a side; a FOV mask that is not
    empty; labels with both vessel and background pixels within the FOV (the whole image
    without one). Returns a summary (paths, size, ``notes`` on conversions such as grayscale to
    RGB, ``warnings`` such as a label that looks inverted, and each label's vessel share of
    the FOV); raises :class:`DatasetError` naming the file, and with ``context`` (a
    samplesheet's row) also the row and the column."""
    where = lambda column: f"{context}, column {column}: " if context else ""  # noqa: E731
    notes: list[str] = []
    warnings: list[str] = []
    try:
        height, width = read_rgb(image, notes).shape[:2]
    except ImageReadError as err:
        raise DatasetError(where("image") + str(err)) from err
    if min(height, width) < min_size:
        raise DatasetError(
            f"{where('image')}{image}: image is {height}x{width}, smaller than the patch size {min_size} "
            "(config key patches.size)"
        )
    masks = {}
    for kind, path in annotations.items():
        if not path:
            continue
        try:
            mask = read_binary(path)
        except ImageReadError as err:
            raise DatasetError(where(kind) + str(err)) from err
        if mask.shape != (height, width):
            raise DatasetError(
                f"{where(kind)}{path}: size {mask.shape[0]}x{mask.shape[1]} differs from its image "
                f"{image} ({height}x{width})"
            )
        masks[kind] = mask
    fov = masks.get("fov")
    if fov is not None and not fov.any():
        raise DatasetError(
            f"{where('fov')}{annotations['fov']}: FOV mask is empty (no pixel inside the field of view; "
            "the image's pixels to use should be white)"
        )
    inside = fov if fov is not None else np.ones((height, width), dtype=bool)
    within = "within its FOV" if fov is not None else "(no FOV mask: the whole image)"
    shares = {}
    for kind in ("label", "label2"):
        if kind not in masks:
            continue
        path, vessel = annotations[kind], masks[kind] & inside
        if not vessel.any():
            raise DatasetError(
                f"{where(kind)}{path}: label marks no vessel {within}: every pixel is background "
                "(expected vessels white, or the higher of two values, on a black background)"
            )
        if vessel.sum() == inside.sum():
            raise DatasetError(
                f"{where(kind)}{path}: label marks every pixel {within} as vessel: there is no background"
            )
        share = float(vessel.sum() / inside.sum())
        shares[kind] = round(share, 4)
        if share > INVERTED_LABEL_SHARE:
            warnings.append(
                f"{where(kind)}{path}: vessels cover {share:.0%} of the pixels {within}; vessels are a small "
                "fraction of a fundus image: the label looks inverted (vessels black on white?)"
            )
    return {
        "image": image,
        **annotations,
        "height": height,
        "width": width,
        "vessel_share": shares,
        "notes": notes,
        "warnings": warnings,
    }


def input_warnings(index: pd.DataFrame, checked: list[str | Path]) -> list[str]:
    """The warnings of the :func:`check_image` summaries (JSON files) for each row of
    ``index``, matched by image path and joined with ' | ' ('' where there are none)."""
    import json

    by_image: dict[str, list[str]] = {}
    for path in checked:
        summary = json.loads(Path(path).read_text())
        by_image.setdefault(str(summary["image"]), []).extend(summary.get("warnings", []))
    return [" | ".join(by_image.get(str(image), [])) for image in index["image"]]


def validate_dataset(index: pd.DataFrame, *, min_size: int = 1) -> None:
    """:func:`check_complete`, then :func:`check_image` for every image in use."""
    check_complete(index)
    for row in index[index["role"] != "unused"].itertuples():
        check_image(row.image, {"label": row.label, "fov": row.fov, "label2": row.label2}, min_size=min_size)


def read_index(path: str | Path) -> pd.DataFrame:
    """Read ``index.tsv``: every column as text (empty paths stay empty strings), missing
    annotation columns as empty, ``unlabeled`` as bool."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index table not found")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"id", "split", "image", "role"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: index table lacks column(s) {sorted(missing)}")
    for column in ("label", "fov", "label2"):
        if column not in table.columns:
            table[column] = ""
    table["unlabeled"] = table["unlabeled"].eq("True") if "unlabeled" in table.columns else False
    return table


def scored_tests(index: pd.DataFrame) -> pd.DataFrame:
    """The test images that have a label: the ones the experiments are scored on (the others
    are segmented, not scored)."""
    return scored_rows(index, "test")


def scored_rows(index: pd.DataFrame, role: str = "test") -> pd.DataFrame:
    """The images of ``role`` (test or validation) that have a label: the ones scored."""
    if role not in ("test", "validation"):
        raise ValueError(f"scored images are test or validation images, not {role!r}")
    return index[(index["role"] == role) & (index["label"] != "")]


def validation_ids(index: pd.DataFrame) -> list[str]:
    """The validation images (labeled, held out of every training and synthesis)."""
    return scored_rows(index, "validation")["id"].astype(str).tolist()


def reference_row(index: pd.DataFrame) -> pd.Series:
    return index[index["role"] == "reference"].iloc[0]
