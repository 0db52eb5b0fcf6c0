"""Samplesheets: a user's own images as a table, one row per image.

A samplesheet is a TSV (``.tsv``, ``.txt``) or CSV (``.csv``) file with a header row and the
columns

* ``id``: the image's name in the workflow (letters, digits, ``-`` and ``_``), unique;
* ``image``: the image file, any format imageio reads (PNG, JPEG, TIFF, GIF, BMP, PPM), 8 or
  16 bit, RGB or grayscale, any size;
* ``role``: ``reference`` (exactly one: the labeled image the synthetic images are made
  from), ``unlabeled`` (one CycleGAN each), ``validation`` (labeled, held out of every
  training and synthesis, scored in a table of its own: where settings are chosen) or
  ``test`` (segmented; scored when labeled);
* ``label`` (optional; required for the reference): a two-valued image of the image's size;
* ``fov`` (optional): a two-valued field-of-view mask; without one the whole image is used;
* ``label2`` (optional): a second observer's label, scored as a human baseline.

Relative paths are relative to the samplesheet's folder. :func:`read_samplesheet` checks
everything that needs no image decoding (columns, ids, roles, one reference with a label,
every named file exists) and names the row and column of each problem, all problems at once;
the per-image ``check_image`` jobs then decode every file (readable, sizes agree, labels
two-valued) before any training, naming the row and column through :func:`row_context`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from cyclesynth.data.datasets import DatasetError

COLUMNS = ("id", "image", "label", "fov", "label2", "role")
REQUIRED_COLUMNS = ("id", "image", "role")
FILE_COLUMNS = ("image", "label", "fov", "label2")
ROLES = ("reference", "unlabeled", "validation", "test")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
#: Output files are named ``{id}.png``, ``{id}_probability.png``, ``{id}_mask.png`` and
#: ``{id}_overlay.png``: an id ending like that would collide with another image's outputs.
RESERVED_ID_SUFFIXES = ("_probability", "_mask", "_overlay")


class SamplesheetError(DatasetError):
    """A samplesheet is malformed; the message names the file, row and column."""


def separator(path: str | os.PathLike) -> str:
    """``,`` for ``.csv`` files, a tab otherwise (``.tsv``, ``.txt``)."""
    return "," if Path(path).suffix.lower() == ".csv" else "\t"


def row_context(samplesheet: str | os.PathLike, row: int, image_id: str) -> str:
    """How messages name a row: ``samplesheet S, row N (id X)``; rows count from 1 after the
    header."""
    return f"samplesheet {samplesheet}, row {row} (id '{image_id}')"


def _resolve(folder: Path, value: str) -> str:
    path = Path(value)
    return os.path.normpath(path if path.is_absolute() else folder / path)


def read_samplesheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a samplesheet; return a dataset table (``id``, ``split``, ``image``,
    ``label``, ``fov``, ``label2``, ``role``, ``origin``) with paths resolved against the
    sheet's folder. ``split`` is ``test`` for test rows and ``training`` otherwise; ``origin``
    names the sheet and row for later messages. Raises :class:`SamplesheetError` listing every
    problem found."""
    path = Path(path)
    if not path.is_file():
        raise SamplesheetError(
            f"samplesheet {path} not found (config key dataset.samplesheet); "
            "write one with `cyclesynth samplesheet` (see README: Segmenting your own images)"
        )
    try:
        table = pd.read_csv(path, sep=separator(path), dtype=str, keep_default_na=False, skipinitialspace=True,
                            encoding="utf-8-sig")  # spreadsheets often write a byte-order mark
    except pd.errors.EmptyDataError:
        raise SamplesheetError(f"samplesheet {path} is empty: expected a header row with the columns {', '.join(COLUMNS)}") from None
    except pd.errors.ParserError as err:
        raise SamplesheetError(f"samplesheet {path} cannot be parsed as {'CSV' if separator(path) == ',' else 'TSV'}: {err}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(repr(c) for c in missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
        raise SamplesheetError(
            f"samplesheet {path}: {' and '.join(problems)}; the columns are id, image, role (required) "
            f"and label, fov, label2 (optional); found {', '.join(repr(c) for c in table.columns)}"
            + ("" if separator(path) == "\t" or len(table.columns) > 1 else " (a .csv file is read with commas, any other with tabs)")
        )
    for column in COLUMNS:
        if column not in table.columns:
            table[column] = ""
        table[column] = table[column].astype(str).str.strip()
    if table.empty:
        raise SamplesheetError(f"samplesheet {path} has a header but no rows")

    folder = path.parent
    problems: list[str] = []
    first_row_of: dict[str, int] = {}
    rows = []
    for number, row in enumerate(table.itertuples(index=False), start=1):
        where = row_context(path, number, row.id)
        if not row.id:
            problems.append(f"samplesheet {path}, row {number}, column id: empty")
        elif not ID_PATTERN.match(row.id):
            problems.append(f"{where}, column id: ids may hold only letters, digits, '-' and '_'")
        elif row.id.endswith(RESERVED_ID_SUFFIXES):
            problems.append(
                f"{where}, column id: an id may not end in {', '.join(RESERVED_ID_SUFFIXES)} "
                "(the names of the segmentation outputs)"
            )
        elif row.id in first_row_of:
            problems.append(f"{where}, column id: duplicate id, also in row {first_row_of[row.id]}")
        else:
            first_row_of[row.id] = number
        role = row.role.lower()
        if role not in ROLES:
            problems.append(
                f"{where}, column role: unknown role '{row.role}'; expected one of {', '.join(ROLES)}"
            )
        resolved = {}
        for column in FILE_COLUMNS:
            value = getattr(row, column)
            if not value:
                if column == "image":
                    problems.append(f"{where}, column image: empty")
                resolved[column] = ""
                continue
            resolved[column] = _resolve(folder, value)
            if Path(resolved[column]).is_dir():
                problems.append(f"{where}, column {column}: {resolved[column]} is a folder; a file is expected")
            elif not Path(resolved[column]).is_file():
                problems.append(f"{where}, column {column}: file {resolved[column]} does not exist")
        if role == "reference" and not row.label:
            problems.append(f"{where}, column label: the reference needs a label")
        if role == "validation" and not row.label:
            problems.append(f"{where}, column label: a validation image needs a label (it is only scored)")
        rows.append(
            {
                "id": row.id,
                "split": "test" if role == "test" else "training",
                **resolved,
                "role": role,
                "origin": where,
            }
        )
    references = [(n, r["id"]) for n, r in enumerate(rows, start=1) if r["role"] == "reference"]
    if not references:
        problems.append(
            f"samplesheet {path}, column role: no row has role 'reference'; exactly one is required "
            "(the labeled image the synthetic images are made from)"
        )
    elif len(references) > 1:
        listed = ", ".join(f"row {n} (id '{i}')" for n, i in references)
        problems.append(f"samplesheet {path}, column role: {len(references)} rows have role 'reference' ({listed}); exactly one is required")
    if problems:
        raise SamplesheetError(
            f"samplesheet {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        )
    return pd.DataFrame(rows, columns=["id", "split", "image", "label", "fov", "label2", "role", "origin"])


def reference_id(table: pd.DataFrame) -> str:
    return str(table.loc[table["role"] == "reference", "id"].iloc[0])


def write_samplesheet(rows: list[dict], path: str | os.PathLike) -> pd.DataFrame:
    """Write rows (``id``, ``image``, ``role`` and optional ``label``, ``fov``, ``label2``;
    paths absolute or relative to the working directory) as a samplesheet at ``path``, with
    paths relative to the sheet's folder. Columns that no row uses are left out. The file is
    written atomically; it is read back (and so checked) before it is returned."""
    from cyclesynth.data.images import atomic_path

    path = Path(path)
    folder = path.parent.resolve()
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table.fillna("")
    for column in FILE_COLUMNS:
        table[column] = [os.path.relpath(Path(v).resolve(), folder) if v else "" for v in table[column]]
    used = [c for c in COLUMNS if c in REQUIRED_COLUMNS or (table[c] != "").any()]
    with atomic_path(path) as tmp:
        table[used].to_csv(tmp, sep=separator(path), index=False)
    return read_samplesheet(path)


def samplesheet_index(path: str | os.PathLike, roles) -> pd.DataFrame:
    """The dataset index of a samplesheet: :func:`read_samplesheet`, then the roles
    (:class:`cyclesynth.data.datasets.RoleSettings`: ``include_test_as_unlabeled`` and
    ``max_unlabeled`` apply as for DRIVE; the reference is the sheet's, and a
    ``dataset.reference`` that names another image is an error)."""
    from dataclasses import replace

    from cyclesynth.data.datasets import assign_roles, check_complete

    table = read_samplesheet(path)
    reference = reference_id(table)
    if roles.reference is not None and str(roles.reference) != reference:
        raise SamplesheetError(
            f"config key dataset.reference: '{roles.reference}' differs from the reference of samplesheet "
            f"{path} ('{reference}'); leave dataset.reference empty or change the sheet's role column"
        )
    held_out = tuple(table.loc[table["role"] == "validation", "id"].astype(str))
    validation = held_out + tuple(str(i) for i in roles.validation if str(i) not in held_out)
    index = assign_roles(table, replace(roles, reference=reference, validation=validation))
    check_complete(index, require_fov=False, require_test_labels=False)
    return index
