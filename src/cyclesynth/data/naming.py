"""File naming of the input datasets: DRIVE's layout, which the built-in phantom also writes.

DRIVE keeps each split in its own folder, one sub-folder per kind of file::

    training/images/21_training.tif       the image
    training/1st_manual/21_manual1.gif    its label (the first observer)
    training/mask/21_training_mask.gif    its field-of-view mask
    test/2nd_manual/01_manual2.gif        the second observer's label (test images only)

This module is the only place that spells these names: the dataset reader, the samplesheet
helper, the phantom writer and the workflow's rules (``data.smk``) all ask it. The results'
own paths are the rules' outputs (``workflow/rules/*.smk``), which reach the package as
command-line arguments.
"""

from __future__ import annotations

import re
from pathlib import Path

SPLITS = ("training", "test")
KINDS = ("image", "label", "fov", "label2")

# kind -> (sub-folder, file stem with {id} and {split})
_FILES = {
    "image": ("images", "{id}_{split}"),
    "label": ("1st_manual", "{id}_manual1"),
    "fov": ("mask", "{id}_{split}_mask"),
    "label2": ("2nd_manual", "{id}_manual2"),
}
#: the suffixes DRIVE (and the phantom) use; the reader also accepts other image suffixes
SUFFIXES = {"image": ".tif", "label": ".gif", "fov": ".gif", "label2": ".gif"}
_ID = "[0-9A-Za-z]+"


def _check(split: str, kind: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if kind not in _FILES:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def folder(root: str | Path, split: str, kind: str) -> Path:
    """The folder that holds the files of one kind of a split, e.g. ``root/training/mask``."""
    _check(split, kind)
    return Path(root) / split / _FILES[kind][0]


def stem(image_id: str, split: str, kind: str) -> str:
    """The file name without suffix, e.g. ``21_training_mask`` (``image_id`` may be a
    wildcard such as ``{id}``)."""
    _check(split, kind)
    return _FILES[kind][1].format(id=image_id, split=split)


def relative_path(image_id: str, split: str, kind: str) -> str:
    """The path under the dataset's root with DRIVE's suffix, e.g.
    ``training/1st_manual/21_manual1.gif``."""
    return f"{split}/{_FILES[kind][0]}/{stem(image_id, split, kind)}{SUFFIXES[kind]}"


def path(root: str | Path, image_id: str, split: str, kind: str) -> str:
    """:func:`relative_path` under ``root``."""
    return str(Path(root) / relative_path(image_id, split, kind))


def template(kind: str) -> str:
    """The naming of one kind of file for messages, e.g. ``<split>/mask/<id>_<split>_mask.gif``."""
    _check("training", kind)
    sub, name = _FILES[kind]
    return f"<split>/{sub}/{name.format(id='<id>', split='<split>')}{SUFFIXES[kind]}"


def id_pattern(split: str, kind: str) -> re.Pattern:
    """A regex matching the file stems of one kind of a split; group ``id`` is the image's id."""
    _check(split, kind)
    template = re.escape(_FILES[kind][1]).replace(r"\{id\}", f"(?P<id>{_ID})").replace(r"\{split\}", split)
    return re.compile(f"^{template}$")


def phantom_id(number: int) -> str:
    """The id of phantom image ``number`` (1, 2, ...): two digits, as DRIVE's ``01`` to ``40``."""
    return f"{int(number):02d}"


def kinds_of(split: str) -> tuple[str, ...]:
    """The kinds of file a split has (the second observer labeled the test images only)."""
    return KINDS if split == "test" else ("image", "label", "fov")
