"""scripts/restyling_artefacts.py on a tiny finished-run folder: one generator, three ways,
the filter's settings taken from the run's preset (resolved as the workflow resolves it)."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import torch

from cyclesynth.synthesis.cyclegan import CycleGANSettings, save_generator
from cyclesynth.synthesis.cyclegan.networks import ResnetGenerator, init_weights

ROOT = Path(__file__).resolve().parents[1]


def make_run(run: Path) -> None:
    rng = np.random.default_rng(0)
    data = run / "results" / "data"
    data.mkdir(parents=True)
    rows = []
    for name, role in (("ref", "reference"), ("u1", "unlabeled")):
        path = data / f"{name}.png"
        iio.imwrite(path, (rng.random((128, 128, 3)) * 255).astype(np.uint8))
        rows.append({"id": name, "role": role, "image": str(path), "fov": "", "label": ""})
    pd.DataFrame(rows).to_csv(data / "index.tsv", sep="\t", index=False)
    (run / "results" / "cyclegan" / "u1").mkdir(parents=True)
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1))
    save_generator(run / "results" / "cyclegan" / "u1" / "generator.pt", generator.state_dict(),
                   CycleGANSettings(ngf=4, n_blocks=1, ndf=4, preprocess="native"))


def run_script(run: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "restyling_artefacts.py"), "--run", str(run),
                           "--out", str(out), *extra], capture_output=True, text=True, timeout=300)


def test_restyling_artefacts_measures_the_three_ways_with_the_runs_filter(tmp_path):
    make_run(tmp_path / "run")
    done = run_script(tmp_path / "run", tmp_path / "a.tsv", "--configfile", "config/drive-cpu.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert list(table["way"]) == ["reference", "tiled", "blended", "whole"]
    assert (table["seam"] > 0).all() and (table["checkerboard"] > 0).all()
    assert table.loc[0, "mse"] == 0.0 and table.loc[0, "checkerboard"] == 1.0
    assert (table.loc[1:, "mse"] > 0).all()
    # a threshold below every MSE, given as the run gave it: nothing is kept
    done = run_script(tmp_path / "run", tmp_path / "b.tsv", "--configfile", "config/drive-cpu.yaml",
                      "--config", "filter={max_mse: 0.0000001}")
    assert done.returncode == 0, done.stderr[-3000:]
    strict = pd.read_csv(tmp_path / "b.tsv", sep="\t")
    assert not strict.loc[1:, "kept"].any()
    np.testing.assert_allclose(strict["mse"], table["mse"])
