"""A training process killed part-way (as by a SLURM time limit) resumes from its checkpoint."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from cyclesynth.synthesis.cyclegan import load_generator
from cyclesynth.data.phantom.io import write_phantom_image

pytestmark = pytest.mark.slow  # a 40-epoch CycleGAN training killed, resumed and run again uninterrupted

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "ngf": 8, "ndf": 8, "n_blocks": 1, "n_layers_d": 2, "preprocess": "native",
    "epochs": 20, "epochs_decay": 20, "checkpoint_every": 1,
}


def command(tmp_path: Path, name: str) -> list[str]:
    images = tmp_path / "data"
    return [
        sys.executable, "-m", "cyclesynth", "train-cyclegan",
        "--reference", str(images / "training/images/03_training.tif"),
        "--target", str(images / "training/images/04_training.tif"),
        "--image", "04", "--settings", json.dumps(SETTINGS), "--patch-size", "32", "--patch-stride", "32",
        "--seed", "0", "--device", "cpu", "--threads", "1",
        "--checkpoint", str(tmp_path / f"{name}.ckpt"),
        "--model", str(tmp_path / name / "generator.pt"), "--history", str(tmp_path / name / "history.tsv"),
    ]


def checkpoint_epoch(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # being replaced this very moment
        return 0


@pytest.fixture
def images(tmp_path):
    for image_id in (3, 4):
        write_phantom_image(tmp_path / "data", "training", image_id, height=128, width=128, seed=1)
    return tmp_path


def test_killed_cyclegan_resumes_at_its_checkpoint_and_matches_an_uninterrupted_run(images):
    tmp_path = images
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(command(tmp_path, "killed"), env=env, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "killed.ckpt"
    deadline = time.time() + 240
    while checkpoint_epoch(checkpoint) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert process.poll() is None, "training finished before it could be killed: make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = checkpoint_epoch(checkpoint)
    assert 3 <= saved < 40
    assert not (tmp_path / "killed" / "generator.pt").exists()  # nothing final was left

    rerun = subprocess.run(command(tmp_path, "killed"), env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming CycleGAN training from checkpoint {checkpoint} after epoch {saved}/40" in rerun.stderr
    logged = [int(n) for n in re.findall(r"\] epoch (\d+)/40 ", rerun.stderr)]
    assert logged == list(range(saved + 1, 41))  # continued, not started again
    assert not checkpoint.exists()  # removed once the model is saved
    history = pd.read_csv(tmp_path / "killed" / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == list(range(1, 41))

    straight = subprocess.run(command(tmp_path, "straight"), env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    resumed, _ = load_generator(tmp_path / "killed" / "generator.pt", "cpu")
    uninterrupted, _ = load_generator(tmp_path / "straight" / "generator.pt", "cpu")
    for (name, a), (_, b) in zip(resumed.state_dict().items(), uninterrupted.state_dict().items()):
        assert torch.equal(a, b), name
