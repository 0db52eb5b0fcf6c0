"""Folder layouts: which files of a folder are images, labels and masks, as samplesheet rows.

``cyclesynth samplesheet`` writes a samplesheet from a folder with one of these:

* ``drive``: DRIVE's two splits, named as :mod:`cyclesynth.data.naming` says (images, first
  and, for test, second observer's labels, FOV masks). Training images are ``unlabeled`` (their labels are
  kept for the ``all_labels`` experiment), one of them the ``reference``; test images ``test``.
* the public fundus sets in one folder each, as the patterns of :data:`LAYOUTS` say
  (CHASE_DB1, HRF, STARE); every image's label is kept, the last ``n_test`` images (in id
  order) are ``test``, the others ``unlabeled``, one of them the ``reference``;
* ``glob``: any folder: a glob of images, the reference and its label, optional label and
  mask patterns with ``{id}`` (the file's stem) and a glob of test images.
"""

from __future__ import annotations

import glob as globbing
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cyclesynth.data import naming
from cyclesynth.data.datasets import DatasetError, _sort_key, plan_drive


class LayoutError(DatasetError):
    """The folder does not match the layout asked for."""


@dataclass(frozen=True)
class Layout:
    """A dataset's file naming: ``images`` is a glob under the root, ``image_name`` a regex on
    the file name whose group ``id`` is the image's id; ``label``, ``label2`` and ``fov`` are
    paths under the root with ``{id}`` (None where the dataset has no such file)."""

    name: str
    title: str
    images: str
    image_name: str
    label: str | None
    label2: str | None = None
    fov: str | None = None
    n_test: int = 0  # default number of test images (the last ones in id order)
    note: str = ""


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            name="chase_db1",
            title="CHASE_DB1",
            images="*.[jJ][pP][gG]",
            image_name=r"^(?P<id>Image_\d+[LR])\.jpe?g$",
            label="{id}_1stHO.png",
            label2="{id}_2ndHO.png",
            n_test=8,
            note="28 images of 14 children; the usual split: the first 20 for training, the last 8 for test",
        ),
        Layout(
            name="hrf",
            title="HRF (High-Resolution Fundus)",
            images="images/*",
            image_name=r"^(?P<id>\d+_(?:dr|g|h))\.jpe?g$",
            label="manual1/{id}.tif",
            fov="mask/{id}_mask.tif",
            note="45 images (15 healthy _h, 15 diabetic retinopathy _dr, 15 glaucoma _g); no standard split",
        ),
        Layout(
            name="stare",
            title="STARE",
            images="*.ppm",
            image_name=r"^(?P<id>im\d{4})\.ppm$",
            label="{id}.ah.ppm",
            label2="{id}.vk.ppm",
            note="20 images labeled by A. Hoover (.ah) and V. Kouznetsova (.vk); no standard split",
        ),
    )
}
LAYOUT_NAMES = ("drive", *LAYOUTS, "glob")


def _existing(path: Path) -> str:
    return str(path) if path.is_file() else ""


def _choose_reference(ids: list[str], reference: str | None, where: str) -> str:
    if reference is None:
        return ids[0]
    reference = Path(reference).stem if reference not in ids and Path(reference).stem in ids else reference
    if reference not in ids:
        raise LayoutError(f"--reference {reference!r} is not among the {where} ids: {', '.join(ids)}")
    return reference


def drive_rows(root: str | os.PathLike, reference: str | None = None) -> list[dict]:
    """Rows for a dataset in DRIVE's layout: reference (``--reference`` or the first training
    image), the other training images unlabeled (labels kept), the test images test."""
    table = plan_drive(root)
    training = table.loc[(table["split"] == "training") & (table["label"] != ""), "id"].tolist()
    if not training:
        expected = naming.relative_path("<id>", "training", "label")
        raise LayoutError(f"{root}: no labeled training image (expected {expected})")
    chosen = _choose_reference(training, reference, "labeled training")
    rows = []
    for row in table.itertuples():
        role = "test" if row.split == "test" else ("reference" if row.id == chosen else "unlabeled")
        rows.append({"id": row.id, "image": row.image, "label": row.label, "fov": row.fov, "label2": row.label2, "role": role})
    return rows


def layout_rows(
    layout: Layout | str,
    root: str | os.PathLike,
    *,
    reference: str | None = None,
    n_test: int | None = None,
    test_ids: list[str] | None = None,
) -> list[dict]:
    """Rows for a folder in one of :data:`LAYOUTS`. Test images are ``test_ids`` if given,
    else the last ``n_test`` (default: the layout's) in id order; the reference is
    ``reference`` or the first of the others."""
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root} does not exist or is not a folder")
    pattern = re.compile(layout.image_name, re.IGNORECASE)
    found = {}
    for path in sorted(root.glob(layout.images)):
        match = pattern.match(path.name)
        if match and path.is_file():
            found[match["id"]] = path
    if not found:
        raise LayoutError(
            f"{root}: no {layout.title} image found (expected files {layout.images} named like "
            f"{layout.image_name!r} under {root})"
        )
    ids = sorted(found, key=_sort_key)
    if test_ids is not None:
        unknown = [i for i in test_ids if i not in found]
        if unknown:
            raise LayoutError(f"--test: {', '.join(unknown)} not among the images: {', '.join(ids)}")
        tests = set(test_ids)
    else:
        count = layout.n_test if n_test is None else n_test
        if count >= len(ids):
            raise LayoutError(f"--n-test {count} leaves no training image among the {len(ids)} images")
        tests = set(ids[len(ids) - count :]) if count else set()
    training = [i for i in ids if i not in tests]
    labeled = [i for i in training if layout.label and (root / layout.label.format(id=i)).is_file()]
    if not labeled:
        raise LayoutError(f"{root}: no training image has a label (expected {root / (layout.label or '')})")
    chosen = _choose_reference(labeled, reference, "labeled training")
    rows = []
    for image_id in ids:
        files = {
            kind: _existing(root / pattern_.format(id=image_id)) if pattern_ else ""
            for kind, pattern_ in (("label", layout.label), ("fov", layout.fov), ("label2", layout.label2))
        }
        role = "test" if image_id in tests else ("reference" if image_id == chosen else "unlabeled")
        rows.append({"id": image_id, "image": str(found[image_id]), **files, "role": role})
    return rows


def _sanitised_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)


def _match(pattern: str, what: str) -> list[Path]:
    paths = sorted(Path(p) for p in globbing.glob(pattern) if Path(p).is_file())
    if not paths:
        raise LayoutError(f"{what} {pattern!r} matches no file")
    return paths


def glob_rows(
    images: str,
    *,
    reference: str,
    label: str,
    fov: str | None = None,
    labels: str | None = None,
    labels2: str | None = None,
    fovs: str | None = None,
    test: str | None = None,
) -> list[dict]:
    """Rows for any folder: the files matching ``images`` (a glob) are unlabeled except the
    ``reference`` (a path, or the id = stem of one of them), whose label is ``label`` (and FOV
    mask ``fov``); files matching ``test`` are test images, whether or not ``images`` matches
    them too. ``labels``, ``labels2`` (second observer) and ``fovs`` are optional patterns
    with ``{id}`` (the file's stem) giving the images' labels and masks where such a file
    exists. Ids are the file stems with any character other than a letter, digit, '-' or '_'
    replaced by '_'."""
    image_paths = _match(images, "--images")
    test_paths = _match(test, "--test") if test else []
    reference_path = Path(reference)
    if reference_path.is_dir():
        raise LayoutError(f"--reference {reference} is a folder; a file (the reference image) is expected")
    if not reference_path.is_file():
        by_stem = [p for p in image_paths if p.stem == reference]
        if not by_stem:
            raise LayoutError(f"--reference {reference!r} is neither a file nor the stem of an image matching {images!r}")
        reference_path = by_stem[0]
    for required, what in ((label, "--label"), (fov, "--fov")):
        if required and Path(required).is_dir():
            raise LayoutError(f"{what} {required} is a folder; a file is expected")
        if required and not Path(required).is_file():
            raise LayoutError(f"{what} {required}: file not found")
    same = lambda a, b: os.path.samefile(a, b)  # noqa: E731
    if any(same(p, reference_path) for p in test_paths):
        raise LayoutError(
            f"--reference {reference_path} is also matched by --test {test!r}: the reference cannot be a test "
            "image (narrow the --test pattern)"
        )
    entries = [(reference_path, "reference")]
    entries += [
        (p, "unlabeled")
        for p in image_paths
        if not same(p, reference_path) and not any(same(p, q) for q in test_paths)
    ]
    entries += [(p, "test") for p in test_paths]
    rows, seen = [], {}
    for path, role in entries:
        image_id = _sanitised_id(path)
        if image_id in seen:
            raise LayoutError(f"{path} and {seen[image_id]} both give the id '{image_id}': rename one of them")
        seen[image_id] = path
        row = {"id": image_id, "image": str(path), "label": "", "fov": "", "label2": "", "role": role}
        if role == "reference":
            row["label"], row["fov"] = label, fov or ""
        for kind, pattern in (("label", labels), ("fov", fovs), ("label2", labels2)):
            if pattern and not row[kind]:
                row[kind] = _existing(Path(pattern.format(id=path.stem)))
        rows.append(row)
    return rows
