#!/usr/bin/env python3
"""Run a DRIVE preset from an empty results folder and record its table and wall time.

    python scripts/benchmark_drive.py                      # drive-cpu preset, 2 cores
    python scripts/benchmark_drive.py --drive /data/DRIVE --out bench/drive-cpu --cores 2

The workflow runs with ``snakemake --directory OUT``, so its results land in ``OUT/results``
and nothing in the checkout's own ``results/`` is touched. At the end ``OUT/benchmark.md``
holds the command, the machine (CPU model, cores), the commit, the wall time, the time spent
per rule (from the rules' ``benchmark:`` files) and the measured Table 1; it is also printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def rule_times(results: Path) -> pd.DataFrame:
    """Jobs, total and median seconds per rule from the benchmark: files."""
    rows = []
    for path in sorted((results / "benchmarks").glob("*/*.tsv")) + sorted((results / "benchmarks").glob("*.tsv")):
        rule = path.parent.name if path.parent.name != "benchmarks" else path.stem
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule, "s": float(frame["s"].iloc[0])})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "total_s", "median_s"])
    table = pd.DataFrame(rows).groupby("rule")["s"].agg(jobs="count", total_s="sum", median_s="median")
    return table.sort_values("total_s", ascending=False).reset_index()


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    rows = [" | ".join(frame.columns), " | ".join("---" for _ in frame.columns)]
    rows += [" | ".join(cell(v) for v in record) for record in frame.itertuples(index=False)]
    return "\n".join(f"| {row} |" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drive", default=str(ROOT.parent / "shared" / "data" / "DRIVE"), help="DRIVE root folder")
    parser.add_argument("--configfile", default=str(ROOT / "config" / "drive-cpu.yaml"), help="preset to run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "drive-cpu"), help="working directory of the run")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--force", action="store_true", help="delete OUT/results first if it exists")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --config values, e.g. --set cyclegan='{init: pretrained}' (repeatable)",
    )
    parser.add_argument("extra", nargs="*", help="further snakemake arguments (after --)")
    args = parser.parse_args(argv)

    drive = Path(args.drive).resolve()
    configfile = Path(args.configfile).resolve()
    out = Path(args.out).resolve()
    if not (drive / "training" / "images").is_dir():
        parser.error(f"--drive {drive}: not a DRIVE folder (no training/images inside)")
    if not configfile.is_file():
        parser.error(f"--configfile {configfile}: no such file")
    results = out / "results"
    if results.exists():
        if not args.force:
            parser.error(f"{results} exists: the benchmark starts from an empty results folder (use --force)")
        shutil.rmtree(results)
    out.mkdir(parents=True, exist_ok=True)
    if (out / ".snakemake").exists():
        shutil.rmtree(out / ".snakemake")

    command = [
        "snakemake",
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(out),
        "--cores", str(args.cores),
        "--configfile", str(configfile),
        "--config", f"dataset={{root: {drive}}}", *args.set,
        *args.extra,
    ]  # fmt: skip
    shown = " ".join(shlex.quote(part) for part in command)
    print(f"running: {shown}\nlog: {out / 'snakemake.log'}", flush=True)
    started_at = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    with open(out / "snakemake.log", "w") as log:
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    if returncode != 0:
        print(f"snakemake failed (exit {returncode}) after {wall:.0f} s; see {out / 'snakemake.log'}", file=sys.stderr)
        return returncode

    times = rule_times(results)
    lines = [
        f"# Benchmark: {configfile.name} on DRIVE",
        "",
        f"- command: `{shown}`",
        f"- started: {started_at:%Y-%m-%d %H:%M} UTC; wall time {wall:.0f} s ({wall / 60:.1f} min)",
        f"- machine: {cpu_model()}, {usable_cores()} usable cores, snakemake --cores {args.cores}",
        f"- commit: {commit()}; Python {platform.python_version()}",
        "",
        "## Time per rule (benchmark: files)",
        "",
        markdown_table(times) if len(times) else "(none)",
        "",
        "## Table 1",
        "",
        (results / "metrics" / "table1.md").read_text(),
    ]
    text = "\n".join(lines)
    (out / "benchmark.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
