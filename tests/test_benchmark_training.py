"""scripts/benchmark_training.py end to end on tiny settings: every measure is there, with
5 runs, and its median lies between its min and max."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark_training.py"
CONFIG = ROOT / "tests" / "data" / "tiny_benchmark.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_benchmark_prints_medians_of_five_runs(tmp_path):
    out = tmp_path / "bench.md"
    result = run("--configfile", str(CONFIG), "--sizes", "preset", "--drive", str(tmp_path / "none"),
                 "--jobs", "2", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert text in result.stdout
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and re.match(r"^[0-9.]+$", cells[3]):
            rows[(cells[0], cells[1])] = [float(c) for c in cells[3:]]
    assert set(rows) == {
        ("CycleGAN step (patches/s)", "preset"),
        ("U-Net step (patches/s)", "preset"),
        ("pretrain-cyclegan (once) (s)", "preset"),
        ("per-image CycleGAN job (s)", "scratch"),
        ("per-image CycleGAN job (s)", "pretrained"),
    }
    for key, (median, low, high, runs) in rows.items():
        assert 0 < low <= median <= high, key
        assert runs == (1 if "once" in key[0] else 5), key
    ratio = float(re.search(r"scratch / pretrained \(medians\): ([0-9.]+)x", text)[1])
    scratch, tuned = rows[("per-image CycleGAN job (s)", "scratch")][0], rows[("per-image CycleGAN job (s)", "pretrained")][0]
    # the table rounds seconds to 0.1 s: the ratio of the unrounded medians lies within
    assert (scratch - 0.05) / (tuned + 0.05) - 0.005 <= ratio <= (scratch + 0.05) / (tuned - 0.05) + 0.005
    assert "phantom images of 64x64" in text and "2 at a time" in text


def test_benchmark_refuses_fewer_than_five_runs_and_unknown_sections(tmp_path):
    result = run("--configfile", str(CONFIG), "--repeats", "3")
    assert result.returncode == 2 and "--repeats must be at least 5" in result.stderr
    result = run("--configfile", str(CONFIG), "--sections", "gpu")
    assert result.returncode == 2 and "choose from steps, per-image" in result.stderr
    result = run("--configfile", str(CONFIG), "--pretrained", str(tmp_path / "missing.pt"))
    assert result.returncode == 2 and "missing.pt: no such file" in result.stderr
