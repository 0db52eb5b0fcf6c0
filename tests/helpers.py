"""What several test modules share; test modules import it (`from helpers import ...`), never
each other. tests/ is on sys.path through pyproject.toml's `[tool.pytest.ini_options] pythonpath`.

- ROOT, TINY: the checkout and tests/data/tiny.yaml (the tiny phantom workflow config).
- snakemake(workdir, *args, configfile=TINY, check=True): the `snakemake` command on the
  workflow in ``workdir``; planned_jobs(output): a dry run's "Job stats" as {rule: count}.
- samplesheet_cli(*args, cwd=None): `cyclesynth samplesheet ...` in this process, its exit code
  and stderr.
- FLAT, SIZES, write_flat_folder, write_sheet, config_file: a user's own flat folder of mixed
  image formats with one label, its samplesheet and the config that points at it.
- measured_table1(text), expected_table1(metric_frames): Table 1's measured cells as the
  report wrote them, and as they follow from the per-image metrics TSVs (mean ± sample std
  to 3 decimals), each as {(region, experiment, threshold_name): {metric: cell}}, so a test
  compares the report's numbers with what it was built from instead of with constants.

Fixtures live in conftest.py (drive, tiny_run: the session's one run of the tiny workflow).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


# ----------------------------------------------------------------------------- snakemake


def snakemake(
    workdir: Path, *args: str, configfile: Path | list[Path] = TINY, check: bool = True
) -> subprocess.CompletedProcess:
    """``snakemake`` in ``workdir`` with ``configfile`` (one file or several, later ones win)."""
    configfiles = configfile if isinstance(configfile, list) else [configfile]
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", *map(str, configfiles), *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_jobs(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def unet_priorities(output: str) -> dict[str, int]:
    """The train_unet jobs of a dry run that print a priority: {experiment: priority}."""
    blocks = re.split(r"^\s*(?:local)?rule ", output, flags=re.M)
    found = {}
    for block in blocks:
        if not block.startswith("train_unet:"):
            continue
        block = block.split("\n\n")[0]
        priority = re.search(r"^\s*priority: (\d+)$", block, re.M)
        if priority:
            found[re.search(r"wildcards: experiment=(\w+)", block)[1]] = int(priority[1])
    return found


# ----------------------------------------------------------------------------- samplesheets


def samplesheet_cli(*args, cwd=None):
    """`cyclesynth samplesheet ...` in this process (as the console script runs it): its exit
    code and what it wrote to stderr."""
    import contextlib
    import io
    import os
    import types

    from cyclesynth.pipeline.cli import main

    stderr, here = io.StringIO(), os.getcwd()
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stderr(stderr):
            try:
                code = main(["samplesheet", *map(str, args)])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
                if not isinstance(exit_.code, int):
                    print(exit_.code, file=sys.stderr)
    finally:
        os.chdir(here)
    return types.SimpleNamespace(returncode=code, stderr=stderr.getvalue())


# name: (seed, height, width, how it is written)
FLAT = {
    "ref": (1, 64, 64, "jpg"),
    "u1": (2, 64, 64, "jpg"),
    "u2": (3, 80, 72, "tif16"),  # 16-bit grayscale TIFF of another size
    "u3": (4, 64, 64, "grey"),  # 8-bit grayscale PNG
    "t1": (5, 80, 72, "jpg"),
    "t2": (6, 64, 64, "bmp"),
}
SIZES = {name: (h, w) for name, (_, h, w, _) in FLAT.items()}


def write_flat_folder(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    from cyclesynth.data.phantom.render import generate_phantom
    from cyclesynth.data.phantom.style import phantom_style

    folder.mkdir(parents=True, exist_ok=True)
    for name, (seed, height, width, kind) in FLAT.items():
        rgb, label, _ = generate_phantom(seed, height, width, phantom_style(seed))
        rgb8 = (rgb * 255).round().astype(np.uint8)
        if kind == "jpg":
            Image.fromarray(rgb8).save(folder / f"{name}.jpg", quality=95)
        elif kind == "tif16":
            Image.fromarray((rgb[:, :, 1] * 65535).round().astype(np.uint16)).save(folder / f"{name}.tif")
        elif kind == "grey":
            Image.fromarray(rgb8[:, :, 1]).save(folder / f"{name}.png")
        else:
            Image.fromarray(rgb8).save(folder / f"{name}.{kind}")
        if name == "ref":  # the one label: a PNG with values 0 and 1
            Image.fromarray(label.astype(np.uint8)).save(folder / "ref_label.png")


def write_sheet(workdir: Path, folder: str = "flat") -> Path:
    """`cyclesynth samplesheet` for the flat folder (in this process, in ``workdir``)."""
    result = samplesheet_cli("--images", f"{folder}/u*", "--reference", f"{folder}/ref.jpg",
                             "--label", f"{folder}/ref_label.png", "--test", f"{folder}/t*", "--out", "sheet.tsv",
                             cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "sheet.tsv"


def config_file(workdir: Path, extra: str = "") -> Path:
    path = workdir / "own.yaml"
    path.write_text("dataset: {source: samplesheet, samplesheet: sheet.tsv}\n" + extra)
    return path


# ----------------------------------------------------------------------------- Table 1

TABLE1_METRICS = ("sensitivity", "specificity", "accuracy", "auc", "f1")  # the measured columns, in order
REGIONS = {"within FOV": "fov", "whole image": "image"}


def measured_table1(text: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """The rows of table1.md's "## Measured (...)" sections: (region, experiment,
    threshold_name) -> {"n": ..., metric: cell} with the cells as written ("0.700 ± 0.100")."""
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    region = None
    for line in text.splitlines():
        if line.startswith("#"):
            match = re.fullmatch(r"## Measured \((.+)\)", line.strip())
            region = REGIONS.get(match[1], match[1]) if match else None
            continue
        if region is None or not line.startswith("| ") or line.startswith("| Training set |"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        experiment, threshold, n = cells[1].strip("`"), cells[2].split(" = ")[0], cells[3]
        key = (region, experiment, threshold)
        assert key not in rows, f"two rows for {key} in Table 1"
        rows[key] = {"n": n, **dict(zip(TABLE1_METRICS, cells[4:9]))}
    return rows


def _cell(values) -> str:
    values = values.dropna()
    if len(values) == 0:
        return "—"
    std = 0.0 if len(values) == 1 else float(values.std(ddof=1))
    return f"{float(values.mean()):.3f} ± {std:.3f}"


def expected_table1(metric_frames) -> dict[tuple[str, str, str], dict[str, str]]:
    """What :func:`measured_table1` should find for these per-image metrics tables (one row
    per image, region and threshold): each group's mean ± sample std over its images."""
    import pandas as pd

    data = pd.concat(list(metric_frames), ignore_index=True)
    expected = {}
    for (experiment, region, threshold), group in data.groupby(["experiment", "region", "threshold_name"], sort=False):
        cells = {"n": str(group["image"].nunique())}
        cells.update({m: _cell(pd.to_numeric(group[m], errors="coerce")) if m in group else "—" for m in TABLE1_METRICS})
        expected[(str(region), str(experiment), str(threshold))] = cells
    return expected
