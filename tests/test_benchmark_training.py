"""scripts/benchmark_training.py end to end on tiny settings: every measure is there, with
5 runs, and its median lies between its min and max."""

import json
import os
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


@pytest.mark.slow
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
    assert result.returncode == 2 and "choose from steps, per-image, modes, share, cpu-precision" in result.stderr
    result = run("--configfile", str(CONFIG), "--pretrained", str(tmp_path / "missing.pt"))
    assert result.returncode == 2 and "missing.pt: no such file" in result.stderr


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and re.match(r"^[0-9.]+$", cells[3]):
            rows.append(cells)
    return rows


@pytest.mark.slow
def test_precision_modes_compilation_and_processes_sharing_the_device_on_tiny_settings(tmp_path):
    """The GPU sections run end to end on the CPU, as scripts/gpu_check.sh runs them: every
    mode (precision, eager or compiled) for both networks (the CPU trains in float32,
    uncompiled unless a backend is forced: aot_eager here), rows as JSON beside the table;
    then K processes started together, their total patches/s per window, in the fastest
    CycleGAN mode of those rows."""
    modes_md, share_md = tmp_path / "modes.md", tmp_path / "share.md"
    result = run("--configfile", str(CONFIG), "--sections", "modes", "--sizes", "preset", "--device", "cpu",
                 "--modes", "float32,bfloat16,bfloat16+reduce-overhead",
                 "--compile-backend", "aot_eager", "--out", str(modes_md))
    assert result.returncode == 0, result.stdout + result.stderr
    text = modes_md.read_text()
    assert text in result.stdout and "- device: cpu (" in text
    modes = table_rows(text)
    assert len(modes) == 3 * 2
    for network in ("CycleGAN", "U-Net"):
        described = [r[2] for r in modes if r[0].startswith(network)]
        assert sum("; float32, eager" in d for d in described) == 1
        assert sum("; bfloat16, eager" in d for d in described) == 1
        assert sum("; bfloat16, compiled (aot_eager backend)" in d for d in described) == 1
    records = json.loads(modes_md.with_suffix(".json").read_text())
    assert [r["mode"] for r in records] == [m for m in ("float32", "bfloat16", "bfloat16+reduce-overhead")
                                            for _ in range(2)]
    assert [round(r["median"], 2) for r in records] == [float(r[3]) for r in modes]

    result = run("--configfile", str(CONFIG), "--sections", "share", "--sizes", "preset", "--device", "cpu",
                 "--share", "1,2", "--window-seconds", "1", "--share-mode", str(modes_md.with_suffix(".json")),
                 "--out", str(share_md))
    assert result.returncode == 0, result.stdout + result.stderr
    shared = {r[0]: r for r in table_rows(share_md.read_text())}
    assert set(shared) == {"1 process(es) at once, CycleGAN step (patches/s total)",
                           "2 process(es) at once, CycleGAN step (patches/s total)"}
    fastest = max((r for r in records if r["what"] == "CycleGAN step"), key=lambda r: r["median"])["mode"]
    assert all(f"; {fastest}; per process" in r[2] for r in shared.values())
    for cells in modes + list(shared.values()):
        median, low, high, runs = map(float, cells[3:])
        assert 0 < low <= median <= high and runs == 5, cells
    two = shared["2 process(es) at once, CycleGAN step (patches/s total)"]
    assert float(re.search(r"per process ([0-9.]+)", two[2])[1]) == pytest.approx(float(two[3]) / 2, abs=0.01)


def test_benchmark_refuses_unknown_modes(tmp_path):
    result = run("--configfile", str(CONFIG), "--sections", "modes", "--modes", "half")
    assert result.returncode == 2 and "--modes 'half': choose from float32, tf32, bfloat16, float16" in result.stderr
    result = run("--configfile", str(CONFIG), "--sections", "share", "--share-mode", "fast")
    assert result.returncode == 2 and "--share-mode 'fast'" in result.stderr
    result = run("--configfile", str(CONFIG), "--sections", "share", "--share-mode", str(tmp_path / "none.json"))
    assert result.returncode == 2 and "none.json: no such file" in result.stderr


@pytest.mark.slow
def test_gpu_check_pieces_rehearse_on_the_cpu(tmp_path):
    """scripts/gpu_check.sh, the one call a GPU visit makes, with tiny settings on the CPU:
    the CUDA tests (skipped here), then the modes and share sections, each writing under OUT."""
    env = {**os.environ, "GPU_CHECK_TINY": "1", "OUT": str(tmp_path)}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "pieces"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    record = (tmp_path / "record.txt").read_text()
    assert "CUDA tests exit 0" in record and "modes exit 0" in record and "share exit 0" in record
    assert "torch " in record  # the versions (and on a GPU the card) are recorded
    assert len(table_rows((tmp_path / "modes.md").read_text())) == 2 * 2  # compiled modes: the test above
    assert len(table_rows((tmp_path / "share.md").read_text())) == 2
    wrong = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "other"], env=env,
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "usage: bash scripts/gpu_check.sh prepare|pieces|drive" in wrong.stderr


@pytest.mark.slow
def test_cpu_precision_section_measures_both_networks_in_three_modes(tmp_path):
    """float32, bfloat16 and bfloat16 + channels_last for both networks; the header names the
    CPU's native bfloat16 support, each row the precision and the layout that really ran (the
    CycleGAN's channels_last only where the layout check lets it)."""
    out = tmp_path / "cpu.md"
    result = run("--configfile", str(CONFIG), "--sections", "cpu-precision", "--sizes", "preset", "--device", "cpu",
                 "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert "native bfloat16: " in text
    rows = table_rows(text)
    assert len(rows) == 6
    records = json.loads(out.with_suffix(".json").read_text())
    assert [r["mode"] for r in records] == [m for m in ("float32", "bfloat16", "bfloat16+channels_last")
                                            for _ in range(2)]
    assert [r["precision"] for r in records] == ["float32"] * 2 + ["bfloat16"] * 4
    assert all(r["runs"] == 5 and r["min"] <= r["median"] <= r["max"] for r in records)
    unet_cl = [r for r in records if r["what"] == "U-Net step" and r["mode"].endswith("channels_last")][0]
    assert unet_cl["layout"].startswith(("channels_last (checked on this CPU", "default layout (channels_last gives"))
