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


# Parallel runs (pytest-xdist; pyproject's addopts run as many workers as cores, at most 4):
# a fixture that builds a run once per module or per session must not be built again on
# another worker, so its tests share an xdist group (``--dist loadgroup``): the tests of the
# finished tiny run (test_workflow, test_reruns, test_slurm) one group, each module with a
# module-scoped fixture its own group. Every other test is scheduled on its own.
SHARED_RUN_FIXTURES = ("tiny_run",)


def xdist_group_of(item) -> str | None:
    for name in SHARED_RUN_FIXTURES:
        if name in item.fixturenames:
            return name
    definitions = getattr(item, "_fixtureinfo", None)
    for name in item.fixturenames:
        for fixture in (definitions.name2fixturedefs.get(name, ()) if definitions else ()):
            if fixture.scope == "module":
                return item.module.__name__
    return None


def pytest_configure(config):
    """A worker's share of the cores: torch's intra-op threads default to every core, so N
    workers would run N x cores threads. Under xdist each worker takes cores // N (at least 1)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(workers)))  # sched_getaffinity: Linux only


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
