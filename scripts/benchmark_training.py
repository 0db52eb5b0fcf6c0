#!/usr/bin/env python3
"""Training speed: step throughput of both networks and wall time per unlabeled image.

    python scripts/benchmark_training.py                       # drive-cpu preset, DRIVE if present
    python scripts/benchmark_training.py --sections steps      # throughput only (~3 min on 2 cores)
    python scripts/benchmark_training.py --pretrained results/cyclegan/pretrained/networks.pt

Every figure is the median (with min and max) of ``--repeats`` runs (at least 5) made in this
invocation:

* steps: the CycleGAN training step (DomainPatches.batch + CycleGANModel.optimize_parameters,
  all four networks) in patches per second, at the paper's sizes (ngf/ndf 64, 9 blocks,
  70x70 PatchGAN, 64x64 patches resized to 286 and cropped to 256, batch 1) and at the
  preset's; the U-Net step (unet_training.training_step) at the paper's sizes (base 64,
  depth 4, batch 64) and the preset's. Each run times a fixed number of steps after warm-up.
* per-image: the wall time of one per-image CycleGAN job, run as the workflow runs it
  (``python -m cyclesynth train-cyclegan`` with the preset's settings, one process per
  image, the preset's threads), from scratch and fine-tuning pretrained networks, on
  ``--repeats`` different unlabeled images (DRIVE's 22, 23, ... when ``--drive`` exists,
  else phantom images of the config's dataset.phantom size). The pretrained networks come from ``--pretrained``
  or from one pretrain-cyclegan run of the preset here (its time is reported once).
  ``--jobs 2`` runs two jobs at a time, as ``snakemake --cores 2`` does with 1-thread jobs.

The table is printed and, with ``--out``, written as Markdown.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cyclesynth import runtime  # noqa: E402
from cyclesynth import workflow_config as wc  # noqa: E402
from cyclesynth.cyclegan_training import CycleGANModel, CycleGANSettings, DomainPatches  # noqa: E402
from cyclesynth.unet_training import UNetSettings, build_model, training_step  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_drive import cpu_model, usable_cores  # noqa: E402


def load_config(path: Path) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"), set_default=True)
    return config


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


# --------------------------------------------------------------------------- step throughput


def cyclegan_throughput(settings: CycleGANSettings, device, repeats: int, steps: int, side: int,
                        warmup: int = 2) -> dict:
    rng = np.random.default_rng(0)
    patches = rng.random((16, side, side, 3), dtype=np.float32)
    model = CycleGANModel(settings, device, runtime.seed_everything(0))
    model.train()
    data_a = DomainPatches(patches, settings, device)
    data_b = DomainPatches(patches[::-1].copy(), settings, device)
    b = settings.batch_size

    def step():
        index = rng.integers(0, len(patches), size=b)
        model.optimize_parameters(data_a.batch(index, rng), data_b.batch(index, rng))

    return timed_rates(step, device, repeats, steps, warmup, b)


def unet_throughput(settings: UNetSettings, device, repeats: int, steps: int, side: int, warmup: int = 2) -> dict:
    torch.manual_seed(0)
    p, b = settings.patch_size, settings.batch_size
    x = torch.rand((4 * b, 3, p, p), device=device)
    y = (torch.rand((4 * b, p, p), device=device) < 0.12).to(torch.uint8)
    model = build_model(settings).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    generator = torch.Generator(device=device).manual_seed(0)
    counter = iter(range(10**9))

    def step():
        start = (next(counter) % 4) * b
        training_step(model, optimizer, x[start : start + b], y[start : start + b], settings, generator)

    return timed_rates(step, device, repeats, steps, warmup, b)


def timed_rates(step, device, repeats: int, steps: int, warmup: int, per_step: int) -> dict:
    """``warmup`` untimed calls of ``step``, then ``repeats`` runs of ``steps`` calls each;
    the summary of the runs' rates (``per_step`` patches per call)."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        rates.append(steps * per_step / (time.perf_counter() - started))
    return summary(rates)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rows(config: dict, device, repeats: int, threads: int, sizes: set[str]) -> list[dict]:
    runtime.set_threads(threads)
    preset_cyclegan = CycleGANSettings.from_dict(wc.cyclegan_settings(config))
    paper_cyclegan = CycleGANSettings()  # the dataclass defaults are the paper's
    preset_unet = UNetSettings(**wc.unet_settings(config, next(iter(config["experiments"]))))
    paper_unet = UNetSettings()
    slow = device.type == "cpu"
    cases = [
        ("CycleGAN step", "paper", paper_cyclegan, cyclegan_throughput, 2 if slow else 20),
        ("CycleGAN step", "preset", preset_cyclegan, cyclegan_throughput, 15 if slow else 100),
        ("U-Net step", "paper", paper_unet, unet_throughput, 1 if slow else 20),
        ("U-Net step", "preset", preset_unet, unet_throughput, 8 if slow else 100),
    ]
    rows = []
    for what, which, settings, measure, steps in cases:
        if which not in sizes:
            continue
        print(f"  {what} at the {which} sizes ({steps} steps x {repeats} runs) ...", flush=True)
        result = measure(settings, device, repeats, steps, config["patches"]["size"])
        rows.append({"what": what, "sizes": which, "unit": "patches/s", "describe": describe(settings), **result})
    return rows


def describe(settings) -> str:
    if isinstance(settings, CycleGANSettings):
        side = f"{settings.crop_size} crops" if settings.preprocess == "resize_crop" else "native patches"
        return (f"ngf {settings.ngf}, {settings.n_blocks} blocks, D layers {settings.n_layers_d}, "
                f"{side}, batch {settings.batch_size}")
    return (f"base {settings.base_channels}, depth {settings.depth}, {settings.patch_size}x{settings.patch_size}, "
            f"batch {settings.batch_size}, augment {settings.augment}")


# --------------------------------------------------------------------------- per-image wall time


def images_for(config: dict, drive: Path | None, count: int, workdir: Path) -> tuple[str, dict[str, str], str]:
    """(reference image, {id: unlabeled image}, where they come from): DRIVE's other training
    images, or ``count`` phantom images of DRIVE's size."""
    if drive is not None:
        reference = str(config["dataset"].get("reference") or "21")
        table = wc.plan_drive(drive)
        training = table[table["split"] == "training"].sort_values("id")
        ref = training.loc[training["id"] == reference, "image"].item()
        others = {r.id: r.image for r in training.itertuples() if r.id != reference}
        return ref, others, f"DRIVE {drive} (reference {reference})"
    from cyclesynth.phantom import write_phantom_image

    root, phantom = workdir / "phantom", config["dataset"]["phantom"]
    ids = list(range(21, 22 + count))
    for image_id in ids:
        write_phantom_image(root, "training", image_id, height=phantom["height"], width=phantom["width"], seed=0)
    path = lambda i: str(root / "training" / "images" / f"{i:02d}_training.tif")  # noqa: E731
    where = f"phantom images of {phantom['width']}x{phantom['height']} (dataset.phantom; no DRIVE given)"
    return path(ids[0]), {f"{i:02d}": path(i) for i in ids[1:]}, where


def run_job(command: list[str], log: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"job failed (exit {code}); see {log}")
    return seconds


def cyclegan_command(kind: str, settings: dict, reference: str, patch: dict, threads: int, device: str,
                     out: Path, **files) -> list[str]:
    command = [sys.executable, "-m", "cyclesynth", kind, "--reference", reference,
               "--settings", json.dumps(settings), "--patch-size", str(patch["size"]),
               "--patch-stride", str(patch["stride"]), "--seed", "0", "--device", device,
               "--threads", str(threads), "--checkpoint", str(out / "checkpoint.pt"),
               "--model", str(out / "model.pt"), "--history", str(out / "history.tsv")]
    for key, value in files.items():
        command += [f"--{key}", *(value if isinstance(value, list) else [value])]
    return command


def per_image_rows(config: dict, args, workdir: Path) -> tuple[list[dict], str]:
    reference, unlabeled, source = images_for(config, args.drive, args.repeats, workdir)
    targets = list(unlabeled.items())[: args.repeats]
    threads = config["resources"]["train_cyclegan"]["threads"]
    device = args.device
    rows = []

    scratch_config = {**config, "cyclegan": {**config["cyclegan"], "init": "scratch"}}
    tuned_config = {**config, "cyclegan": {**config["cyclegan"], "init": "pretrained"}}
    pretrained = args.pretrained
    if pretrained is None:
        pool = wc.pretrain_images(tuned_config, list(unlabeled))
        out = workdir / "pretrain"
        out.mkdir()
        settings = wc.cyclegan_settings(tuned_config, "pretrain")
        print(f"  pretraining once on {len(pool)} images ...", flush=True)
        seconds = run_job(
            cyclegan_command("pretrain-cyclegan", settings, reference, config["patches"],
                             config["resources"]["pretrain_cyclegan"]["threads"], device, out,
                             targets=[unlabeled[i] for i in pool], images=pool),
            out / "log.txt",
        )
        pretrained = out / "model.pt"
        rows.append({"what": "pretrain-cyclegan (once)", "sizes": "preset", "unit": "s",
                     "describe": f"{len(pool)} images pooled", **summary([seconds])})

    for label, job_config, init in (("scratch", scratch_config, None), ("pretrained", tuned_config, pretrained)):
        settings = wc.cyclegan_settings(job_config)
        commands = []
        for image_id, target in targets:
            out = workdir / label / image_id
            out.mkdir(parents=True)
            extra = {"target": target, "image": image_id}
            if init is not None:
                extra["init"] = str(init)
            commands.append((cyclegan_command("train-cyclegan", settings, reference, config["patches"], threads,
                                              device, out, **extra), out / "log.txt"))
        print(f"  {len(commands)} per-image CycleGAN jobs, {label} ({args.jobs} at a time) ...", flush=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            seconds = list(pool.map(lambda c: run_job(*c), commands))
        rows.append({"what": "per-image CycleGAN job", "sizes": label, "unit": "s",
                     "describe": f"{settings['epochs']}+{settings['epochs_decay']} epochs, {threads} thread(s)",
                     **summary(seconds)})
    return rows, source


# --------------------------------------------------------------------------- main


def markdown(rows: list[dict]) -> str:
    lines = ["| measure | sizes | settings | median | min | max | runs |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        fmt = "{:.1f}" if r["unit"] == "s" else "{:.2f}"
        lines.append(
            f"| {r['what']} ({r['unit']}) | {r['sizes']} | {r['describe']} | {fmt.format(r['median'])} | "
            f"{fmt.format(r['min'])} | {fmt.format(r['max'])} | {r['runs']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "drive-cpu.yaml", help="preset")
    parser.add_argument("--drive", type=Path, default=ROOT.parent / "shared" / "data" / "DRIVE",
                        help="DRIVE root for the per-image jobs (phantom images when absent)")
    parser.add_argument("--sections", default="steps,per-image", help="steps, per-image or both (comma-separated)")
    parser.add_argument("--sizes", default="paper,preset", help="step measures: paper, preset or both")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measure (at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the step measures")
    parser.add_argument("--jobs", type=int, default=1, help="per-image jobs at a time")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--pretrained", type=Path, default=None,
                        help="pretrained networks (results/cyclegan/pretrained/networks.pt) instead of pretraining here")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if not sections <= {"steps", "per-image"} or not sections:
        parser.error(f"--sections {args.sections!r}: choose from steps, per-image")
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (medians of at least 5 runs)")
    if args.pretrained is not None and not args.pretrained.is_file():
        parser.error(f"--pretrained {args.pretrained}: no such file")
    config = load_config(args.configfile)
    if args.drive is not None and not (args.drive / "training" / "images").is_dir():
        args.drive = None
    device = runtime.select_device(args.device)
    args.device = device.type

    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()}, {usable_cores()} usable cores"
    header = [
        f"# Training benchmark: {args.configfile.name}",
        "",
        f"- device: {device.type} ({card}); torch {torch.__version__}; Python {platform.python_version()}",
        f"- step measures: {args.threads} torch thread(s); medians of {args.repeats} runs",
    ]
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    started = time.perf_counter()
    if "steps" in sections:
        rows += step_rows(config, device, args.repeats, args.threads, {s.strip() for s in args.sizes.split(",")})
    if "per-image" in sections:
        with tempfile.TemporaryDirectory(prefix="cyclesynth-bench-") as tmp:
            image_rows, source = per_image_rows(config, args, Path(tmp))
        rows += image_rows
        header.append(f"- per-image jobs: {source}; {args.jobs} at a time")
        scratch = next(r for r in image_rows if r["sizes"] == "scratch")["median"]
        tuned = next(r for r in image_rows if r["sizes"] == "pretrained")["median"]
        header.append(f"- per-image wall time, scratch / pretrained (medians): {scratch / tuned:.2f}x")
    header.append(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    text = "\n".join(header + ["", markdown(rows), ""])
    print("\n" + text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
