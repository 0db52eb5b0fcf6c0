"""scripts/benchmark_training.py end to end on tiny settings: every measure is there, with
5 runs, and its median lies between its min and max."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert result.returncode == 2 and "choose from steps, per-image, modes, share" in result.stderr
    result = run("--configfile", str(CONFIG), "--pretrained", str(tmp_path / "missing.pt"))
    assert result.returncode == 2 and "missing.pt: no such file" in result.stderr


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and re.match(r"^[0-9.]+$", cells[3]):
            rows.append(cells)
    return rows


def test_precision_modes_compilation_and_processes_sharing_the_device_on_tiny_settings(tmp_path):
    """The GPU sections run end to end on the CPU: every precision x compile mode for both
    networks (the CPU trains in float32, uncompiled unless a backend is forced: aot_eager
    here), then K processes started together with their total patches/s per window, in the
    fastest mode measured (auto)."""
    out = tmp_path / "bench.md"
    result = run("--configfile", str(CONFIG), "--sections", "modes,share", "--sizes", "preset", "--device", "cpu",
                 "--precisions", "float32,bfloat16", "--compile", "none,reduce-overhead",
                 "--compile-backend", "aot_eager", "--share", "1,2", "--window-seconds", "1", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert text in result.stdout and "- device: cpu (" in text
    rows = table_rows(text)
    modes = [r for r in rows if r[0] in ("CycleGAN step (patches/s)", "U-Net step (patches/s)")]
    assert len(modes) == 2 * 2 * 2
    for network in ("CycleGAN", "U-Net"):
        described = [r[2] for r in modes if r[0].startswith(network)]
        assert sum("float32, eager" in d for d in described) == 1
        assert sum("float32, compiled (aot_eager backend)" in d for d in described) == 1
        assert sum("asked bfloat16: cpu trains in float32), eager" in d for d in described) == 1
        assert sum("asked bfloat16: cpu trains in float32), compiled" in d for d in described) == 1
    shared = {r[0]: r for r in rows if "at once" in r[0]}
    assert set(shared) == {"1 process(es) at once, CycleGAN step (patches/s total)",
                           "2 process(es) at once, CycleGAN step (patches/s total)"}
    for cells in modes + list(shared.values()):
        median, low, high, runs = map(float, cells[3:])
        assert 0 < low <= median <= high and runs == 5, cells
    # auto: the share section runs the fastest CycleGAN mode of the modes section
    fastest = max((r for r in modes if r[0].startswith("CycleGAN")), key=lambda r: float(r[3]))
    mode = "float32" if "eager" in fastest[2] else "float32+reduce-overhead"
    if "asked bfloat16" in fastest[2]:
        mode = mode.replace("float32", "bfloat16")
    assert all(f"; {mode}; per process" in r[2] for r in shared.values())
    # per process = total / K
    two = shared["2 process(es) at once, CycleGAN step (patches/s total)"]
    assert float(re.search(r"per process ([0-9.]+)", two[2])[1]) == pytest.approx(float(two[3]) / 2, abs=0.01)


def test_benchmark_refuses_unknown_modes():
    result = run("--configfile", str(CONFIG), "--sections", "modes", "--precisions", "half")
    assert result.returncode == 2 and "--precisions 'half': choose from float32, tf32, bfloat16, float16" in result.stderr
    result = run("--configfile", str(CONFIG), "--sections", "share", "--share-mode", "fast")
    assert result.returncode == 2 and "--share-mode 'fast'" in result.stderr
