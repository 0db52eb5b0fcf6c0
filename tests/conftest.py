import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

try:
    import cyclesynth  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))


def drive_dir() -> Path | None:
    """DRIVE if present: $DRIVE_DIR, else ../shared/data/DRIVE beside the checkout."""
    candidates = [os.environ.get("DRIVE_DIR"), ROOT.parent / "shared" / "data" / "DRIVE"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "training" / "images").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def drive():
    path = drive_dir()
    if path is None:
        pytest.skip("DRIVE not found (set DRIVE_DIR or place it at ../shared/data/DRIVE)")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished run of the whole workflow on tests/data/tiny.yaml, shared by the tests that
    only read it or dry-run against it (test_workflow, test_reruns, test_slurm's local run)."""
    from helpers import snakemake

    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir, "--cores", "2")
    return workdir
