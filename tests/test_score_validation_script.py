"""scripts/score_validation.py on a tiny run folder: the validation images only, and the same
AUC as the workflow's own predict + evaluate --role validation commands."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import torch

from cyclesynth.segmentation.saved import save_model
from cyclesynth.segmentation.settings import UNetSettings
from cyclesynth.segmentation.training import build_model

ROOT = Path(__file__).resolve().parents[1]


def make_run(run: Path) -> None:
    rng = np.random.default_rng(0)
    data = run / "results" / "data"
    data.mkdir(parents=True)
    rows = []
    for name, role in (("ref", "reference"), ("v1", "validation"), ("v2", "validation"), ("t1", "test")):
        image, label = data / f"{name}.png", data / f"{name}_label.png"
        iio.imwrite(image, (rng.random((48, 40, 3)) * 255).astype(np.uint8))
        iio.imwrite(label, ((rng.random((48, 40)) < 0.2) * 255).astype(np.uint8))
        rows.append({"id": name, "split": "training", "image": str(image), "label": str(label), "fov": "",
                     "label2": "", "role": role, "unlabeled": False})
    pd.DataFrame(rows).to_csv(data / "index.tsv", sep="\t", index=False)
    settings = UNetSettings(base_channels=4, depth=2, patch_size=16, patch_stride=16)
    torch.manual_seed(0)
    (run / "results" / "unet" / "a").mkdir(parents=True)
    save_model(run / "results" / "unet" / "a" / "model.pt", build_model(settings).state_dict(), settings)


def test_scores_the_validation_images_as_the_workflow_does(tmp_path):
    run = tmp_path / "run"
    make_run(run)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "score_validation.py"), "--run", str(run),
         "a=results/unet/a/model.pt", "--stride", "8", "--out", str(tmp_path / "scores.tsv")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scores = pd.read_csv(tmp_path / "scores.tsv", sep="\t", dtype={"image": str})
    assert list(scores["image"]) == ["v1", "v2"] and set(scores["model"]) == {"a"}  # never the test image
    assert done.stdout.startswith("a: validation AUC")

    index, out = run / "results" / "data" / "index.tsv", tmp_path / "predictions"
    cli = [sys.executable, "-m", "cyclesynth"]
    for command in (
        ["predict", "--index", str(index), "--model", str(run / "results/unet/a/model.pt"), "--out-dir", str(out),
         "--stride", "8", "--device", "cpu", "--threads", "1"],
        ["evaluate", "--index", str(index), "--experiment", "a", "--role", "validation", "--predictions-dir",
         str(out), "--thresholds", '{"w/(1+w)": 0.9090909090909091}', "--out", str(tmp_path / "a.tsv")],
    ):
        step = subprocess.run(cli + command, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert step.returncode == 0, step.stderr[-3000:]
    workflow = pd.read_csv(tmp_path / "a.tsv", sep="\t", dtype={"image": str})
    workflow = workflow[workflow["region"] == "fov"].set_index("image")
    # the workflow scores the 16-bit probability file, the script the map itself
    np.testing.assert_allclose(scores.set_index("image")["auc"], workflow.loc[["v1", "v2"], "auc"], atol=1e-4)
    np.testing.assert_allclose(scores.set_index("image")["f1"], workflow.loc[["v1", "v2"], "f1"], atol=1e-2)
