"""The steps that need no network start without importing torch (1.4 s of a 2 s start on a
2-core CPU, paid by every generate_phantom, check_image, evaluate and report job)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SRC = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src")

PROBE = """
import json, sys
sys.path.insert(0, {src!r})
from cyclesynth.pipeline.cli import main
rc = main({argv!r})
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules}}))
"""


def _run(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(src=SRC, argv=argv)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    result = _run(["generate-phantom", "--root", str(root), "--split", "training", "--id", "21",
                   "--height", "96", "--width", "96", "--seed", "3"])
    return root, result


def test_generate_phantom_does_not_import_torch(phantom):
    root, result = phantom
    assert result == {"rc": 0, "torch": False}
    assert (root / "training" / "images").is_dir()


def test_check_image_does_not_import_torch(phantom, tmp_path):
    root, _ = phantom
    image = next((root / "training" / "images").iterdir())
    label = next((root / "training" / "1st_manual").iterdir())
    out = tmp_path / "checked.json"
    result = _run(["check-image", "--image", str(image), "--label", str(label),
                   "--min-size", "16", "--out", str(out)])
    assert result == {"rc": 0, "torch": False}
    assert json.loads(out.read_text())["height"] == 96


def test_training_steps_still_import_torch_when_they_run():
    # the probe would report a false negative if torch were never importable from it
    probe = PROBE.replace("rc = main({argv!r})", "import cyclesynth.runtime; rc = 0")
    out = subprocess.run([sys.executable, "-c", probe.format(src=SRC, argv=[])],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"rc": 0, "torch": True}
