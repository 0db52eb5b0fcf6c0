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
  preset's; the U-Net step (segmentation.training.training_step) at the paper's sizes (base 64,
  depth 4, batch 64) and the preset's. Each run times a fixed number of steps after warm-up.
* per-image: the wall time of one per-image CycleGAN job, run as the workflow runs it
  (``python -m cyclesynth train-cyclegan`` with the preset's settings, one process per
  image, the preset's threads), from scratch and fine-tuning pretrained networks, on
  ``--repeats`` different unlabeled images (DRIVE's 22, 23, ... when ``--drive`` exists,
  else phantom images of the config's dataset.phantom size). The pretrained networks come from ``--pretrained``
  or from one pretrain-cyclegan run of the preset here (its time is reported once).
  ``--jobs 2`` runs two jobs at a time, as ``snakemake --cores 2`` does with 1-thread jobs.

* modes (GPUs): the CycleGAN and U-Net steps at the paper's sizes (``--sizes``) in every
  mode of ``--modes``: a precision (float32 with TF32 off, tf32, bfloat16, float16), alone
  (eager) or with ``+reduce-overhead`` (torch.compile with CUDA graphs); each row also gives
  the seconds its first (warm-up, compiling) steps took. On a CPU tf32 and float16 train in
  float32 and every mode uncompiled, as in the workflow (the rows say so).
* cpu-precision: the CycleGAN and U-Net steps at each of ``--sizes`` in float32, bfloat16
  (autocast) and bfloat16 + channels_last, in the workflow's code paths: channels_last only
  where the layout check passes on this machine (the row says which layout ran). The header
  names the CPU and its native bfloat16 support (amx_bf16 / avx512_bf16).

    python scripts/benchmark_training.py --sections cpu-precision           # ~10 min on 2 cores

* share (GPUs): K = ``--share`` (1, 2, 4, 8) processes each run the CycleGAN step at once on the
  device, in the mode ``--share-mode`` (``auto``: the fastest CycleGAN row of this run's modes
  section); the total patches per second of all K in each of ``--repeats`` windows of
  ``--window-seconds``, started together after every process has warmed up.

    python scripts/benchmark_training.py --device cuda --sections modes,share   # on a GPU

The device (with the card's name), torch and CUDA versions head the table. The table is
printed and, with ``--out``, written as Markdown, and its rows as JSON beside it (``.json``),
after every row, so that a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
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
from cyclesynth.pipeline import dataset_plan, rule_settings  # noqa: E402
from cyclesynth.synthesis.cyclegan import CycleGANModel, CycleGANSettings, DomainPatches  # noqa: E402
from cyclesynth.segmentation.settings import UNetSettings  # noqa: E402
from cyclesynth.segmentation.training import build_model, layout_samples, training_step  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_drive import cpu_model, usable_cores  # noqa: E402


def load_config(path: Path) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


# --------------------------------------------------------------------------- step throughput


def cyclegan_stepper(settings: CycleGANSettings, device, side: int, compile_backend: str | None = None):
    """One CycleGAN training step (batch drawn from 16 random patches, all four networks) as a
    function, and whether the networks were compiled."""
    rng = np.random.default_rng(0)
    patches = rng.random((16, side, side, 3), dtype=np.float32)
    backend = compile_backend if settings.compile != "none" else None
    model = CycleGANModel(settings, device, runtime.seed_everything(0), compile_backend=backend)
    model.train()
    data_a = DomainPatches(patches, settings, device, channels_last=model.channels_last)
    data_b = DomainPatches(patches[::-1].copy(), settings, device, channels_last=model.channels_last)
    b = settings.batch_size

    def step():
        index = rng.integers(0, len(patches), size=b)
        model.optimize_parameters(data_a.batch(index, rng), data_b.batch(index, rng))

    step.layout = model.layout_reason
    step.precision = model.precision.name
    return step, model.compiled


def cyclegan_throughput(settings: CycleGANSettings, device, repeats: int, steps: int, side: int,
                        warmup: int = 2, compile_backend: str | None = None) -> dict:
    step, compiled = cyclegan_stepper(settings, device, side, compile_backend)
    return {**timed_rates(step, device, repeats, steps, warmup_for(compiled, warmup), settings.batch_size),
            "compiled": compiled, "layout": step.layout, "precision": step.precision}


def unet_throughput(settings: UNetSettings, device, repeats: int, steps: int, side: int, warmup: int = 2,
                    compile_backend: str | None = None) -> dict:
    torch.manual_seed(0)
    p, b = settings.patch_size, settings.batch_size
    x = torch.rand((4 * b, 3, p, p), device=device)
    y = (torch.rand((4 * b, p, p), device=device) < 0.12).to(torch.uint8)
    model = build_model(settings).to(device)
    model.train()
    precision = runtime.training_precision(settings.precision, device)
    channels_last, layout = runtime.choose_channels_last(
        settings.channels_last, model, layout_samples(x), precision, cpu_default=True
    )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = precision.scaler()
    backend = compile_backend if settings.compile != "none" else None
    compiled = runtime.compile_for_training(model, settings.compile, device, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    generator = torch.Generator(device=device).manual_seed(0)
    counter = iter(range(10**9))

    def step():
        start = (next(counter) % 4) * b
        training_step(model, optimizer, x[start : start + b], y[start : start + b], settings, generator,
                      precision=precision, scaler=scaler, compiled=compiled, channels_last=channels_last)

    return {**timed_rates(step, device, repeats, steps, warmup_for(compiled, warmup), b), "compiled": compiled,
            "layout": layout, "precision": precision.name}


def warmup_for(compiled: bool, warmup: int) -> int:
    """Compiled steps need more warm-up: compilation, then CUDA-graph warm-up and recording."""
    return max(warmup, 6) if compiled else warmup


def timed_rates(step, device, repeats: int, steps: int, warmup: int, per_step: int) -> dict:
    """``warmup`` untimed calls of ``step``, then ``repeats`` runs of ``steps`` calls each;
    the summary of the runs' rates (``per_step`` patches per call)."""
    _sync(device)
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    first_steps = time.perf_counter() - started
    rates = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        rates.append(steps * per_step / (time.perf_counter() - started))
    return {**summary(rates), "first_steps_s": first_steps}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rows(config: dict, device, repeats: int, threads: int, sizes: set[str]) -> list[dict]:
    runtime.set_threads(threads)
    preset_cyclegan = CycleGANSettings.from_dict(rule_settings.cyclegan_settings(config))
    paper_cyclegan = CycleGANSettings()  # the dataclass defaults are the paper's
    preset_unet = UNetSettings(**rule_settings.unet_settings(config, next(iter(config["experiments"]))))
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


# --------------------------------------------------------------------------- precision modes, compilation


def mode_settings(config: dict, sizes: str):
    """The CycleGAN and U-Net settings the modes and share sections start from: the paper's
    (the dataclass defaults) or the preset's, with its patch side."""
    if sizes == "paper":
        return CycleGANSettings(), UNetSettings(), config["patches"]["size"]
    cyclegan = CycleGANSettings.from_dict(rule_settings.cyclegan_settings(config))
    unet = UNetSettings(**rule_settings.unet_settings(config, next(iter(config["experiments"]))))
    return cyclegan, unet, config["patches"]["size"]


def mode_name(precision: str, compile_mode: str) -> str:
    return precision if compile_mode == "none" else f"{precision}+{compile_mode}"


def parse_mode(mode: str) -> tuple[str, str]:
    precision, _, compile_mode = mode.partition("+")
    return precision, compile_mode or "none"


def mode_rows(config: dict, args, device, rows: list[dict], report) -> None:
    """Both networks' steps in every mode of ``--modes``; appended to ``rows``, reported after
    each."""
    runtime.set_threads(args.threads)
    sizes = args.sizes.split(",")[0].strip()
    cyclegan, unet, side = mode_settings(config, sizes)
    slow = device.type == "cpu"
    for mode in args.modes:
        precision, compile_mode = parse_mode(mode)
        used = runtime.training_precision(precision, device).name
        for what, base, measure, steps in (
            ("CycleGAN step", cyclegan, cyclegan_throughput, (2 if sizes == "paper" else 15) if slow else 30),
            ("U-Net step", unet, unet_throughput, (1 if sizes == "paper" else 8) if slow else 30),
        ):
            settings = dataclasses.replace(base, precision=precision, compile=compile_mode)
            print(f"  {what}, {sizes} sizes, {mode_name(precision, compile_mode)} "
                  f"({steps} steps x {args.repeats} runs) ...", flush=True)
            result = measure(settings, device, args.repeats, steps, side, compile_backend=args.compile_backend)
            note = f"{used}" + (f" (asked {precision}: {device.type} trains in {used})" if used != precision else "")
            how = f"{args.compile_backend} backend" if args.compile_backend else compile_mode
            note += f", compiled ({how})" if result["compiled"] else ", eager"
            if compile_mode != "none" and not result["compiled"]:
                note += f" (asked {compile_mode}: {device.type} runs uncompiled)"
            rows.append({
                "what": what, "sizes": sizes, "unit": "patches/s", "mode": mode_name(precision, compile_mode),
                "describe": f"{describe(settings)}; {note}; first {warmup_for(result['compiled'], 2)} steps "
                            f"{result['first_steps_s']:.1f} s",
                **result,
            })
            report()


# --------------------------------------------------------------------------- CPU precision

CPU_PRECISION_MODES = (("float32", False), ("bfloat16", False), ("bfloat16", True))


def cpu_precision_rows(config: dict, args, device, rows: list[dict], report) -> None:
    """Both networks' training steps at each of ``--sizes`` in float32, bfloat16 and bfloat16
    with channels_last (after the workflow's layout check; a row says when the check kept the
    default layout), one process with ``--threads`` threads; appended to ``rows``."""
    runtime.set_threads(args.threads)
    for sizes in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        cyclegan, unet, side = mode_settings(config, sizes)
        for precision, channels_last in CPU_PRECISION_MODES:
            for what, base, measure, steps in (
                ("CycleGAN step", cyclegan, cyclegan_throughput, 2 if sizes == "paper" else 15),
                ("U-Net step", unet, unet_throughput, 1 if sizes == "paper" else 8),
            ):
                settings = dataclasses.replace(base, precision=precision, channels_last=channels_last, compile="none")
                mode = precision + ("+channels_last" if channels_last else "")
                print(f"  {what}, {sizes} sizes, {mode} ({steps} steps x {args.repeats} runs) ...", flush=True)
                result = measure(settings, device, args.repeats, steps, side)
                rows.append({
                    "what": what, "sizes": sizes, "unit": "patches/s", "mode": mode,
                    "describe": f"{describe(settings)}; {result['precision']}, {result['layout']}",
                    **result,
                })
                report()


# --------------------------------------------------------------------------- K processes sharing the device


def fastest_mode(rows: list[dict]) -> str | None:
    """The mode of the fastest CycleGAN step among ``rows`` of a modes section."""
    measured = [r for r in rows if r["what"] == "CycleGAN step" and "mode" in r]
    return max(measured, key=lambda r: r["median"])["mode"] if measured else None


def share_mode(args, rows: list[dict]) -> tuple[str, str]:
    """(precision, compile) of the share section: ``--share-mode``; with ``auto`` the fastest
    CycleGAN step of this run's modes section (float32 uncompiled if there is none); with
    ``FILE.json`` the fastest in the rows an earlier run wrote there."""
    if args.share_mode.endswith(".json"):
        return parse_mode(fastest_mode(json.loads(Path(args.share_mode).read_text())) or "float32")
    if args.share_mode != "auto":
        return parse_mode(args.share_mode)
    return parse_mode(fastest_mode(rows) or "float32")


def share_rows(config: dict, args, device, rows: list[dict], report) -> None:
    """K processes at once, each running CycleGAN steps; the total patches/s per window;
    appended to ``rows``, reported after each K."""
    precision, compile_mode = share_mode(args, rows)
    sizes = args.sizes.split(",")[0].strip()
    cyclegan, _, side = mode_settings(config, sizes)
    settings = dataclasses.replace(cyclegan, precision=precision, compile=compile_mode)
    spec = {"settings": settings.to_dict(), "side": side, "device": str(device), "threads": args.threads,
            "windows": args.repeats, "window_seconds": args.window_seconds, "compile_backend": args.compile_backend}
    for k in args.share:
        print(f"  {k} process(es) sharing the device, CycleGAN step, {mode_name(precision, compile_mode)} "
              f"({args.repeats} windows of {args.window_seconds} s) ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="cyclesynth-share-") as folder:
            folder = Path(folder)
            (folder / "spec.json").write_text(json.dumps(spec))
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
            workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(folder), "--worker-id", str(i)],
                                        env=env) for i in range(k)]
            try:
                deadline = time.monotonic() + args.worker_timeout
                while len(list(folder.glob("ready.*"))) < k:
                    if time.monotonic() > deadline or any(w.poll() not in (None, 0) for w in workers):
                        raise SystemExit(f"share K={k}: a worker failed or did not warm up in {args.worker_timeout} s")
                    time.sleep(0.2)
                (folder / "go").write_text(str(time.time() + 1.0))
                for w in workers:
                    if w.wait(timeout=args.worker_timeout) != 0:
                        raise SystemExit(f"share K={k}: a worker failed")
            finally:
                for w in workers:
                    if w.poll() is None:
                        w.kill()
            results = [json.loads((folder / f"result.{i}.json").read_text()) for i in range(k)]
        totals = [sum(r["rates"][window] for r in results) for window in range(args.repeats)]
        rows.append({"what": f"{k} process(es) at once, CycleGAN step", "sizes": sizes, "unit": "patches/s total",
                     "describe": f"{describe(settings)}; {mode_name(precision, compile_mode)}; "
                                 f"per process {statistics.median(totals) / k:.2f}", "share": k,
                     "mode": mode_name(precision, compile_mode), **summary(totals)})
        report()


def worker(folder: Path, index: int) -> int:
    """One process of the share section: warm up, report ready, wait for the common start,
    then count CycleGAN steps in each window (synchronising the device at its end)."""
    spec = json.loads((folder / "spec.json").read_text())
    device = torch.device(spec["device"])
    runtime.set_threads(spec["threads"])
    settings = CycleGANSettings.from_dict(spec["settings"])
    step, compiled = cyclegan_stepper(settings, device, spec["side"], spec["compile_backend"])
    for _ in range(warmup_for(compiled, 2)):
        step()
    _sync(device)
    (folder / f"ready.{index}").touch()
    while not (folder / "go").is_file():
        time.sleep(0.05)
    start = float((folder / "go").read_text())
    while time.time() < start:
        time.sleep(0.001)
    width, rates, begin = spec["window_seconds"], [], start
    for window in range(spec["windows"]):
        steps, end = 0, start + (window + 1) * width
        while time.time() < end:
            step()
            steps += 1
        _sync(device)
        now = time.time()
        rates.append(steps * settings.batch_size / (now - begin))
        begin = now
    (folder / f"result.{index}.json").write_text(json.dumps({"rates": rates, "compiled": compiled}))
    return 0


# --------------------------------------------------------------------------- per-image wall time


def images_for(config: dict, drive: Path | None, count: int, workdir: Path) -> tuple[str, dict[str, str], str]:
    """(reference image, {id: unlabeled image}, where they come from): DRIVE's other training
    images, or ``count`` phantom images of DRIVE's size."""
    if drive is not None:
        reference = str(config["dataset"].get("reference") or "21")
        table = dataset_plan.plan_drive(drive)
        training = table[table["split"] == "training"].sort_values("id")
        ref = training.loc[training["id"] == reference, "image"].item()
        others = {r.id: r.image for r in training.itertuples() if r.id != reference}
        return ref, others, f"DRIVE {drive} (reference {reference})"
    from cyclesynth.data.phantom.io import write_phantom_image

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
        pool = rule_settings.pretrain_images(tuned_config, list(unlabeled))
        out = workdir / "pretrain"
        out.mkdir()
        settings = rule_settings.cyclegan_settings(tuned_config, "pretrain")
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
        settings = rule_settings.cyclegan_settings(job_config)
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


SECTIONS = ("steps", "per-image", "modes", "share", "cpu-precision")
MODES = tuple(p + c for c in ("", "+reduce-overhead") for p in runtime.MODES)


def comma_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: choose from {', '.join(allowed)}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "drive-cpu.yaml", help="preset")
    parser.add_argument("--drive", type=Path, default=ROOT.parent / "shared" / "data" / "DRIVE",
                        help="DRIVE root for the per-image jobs (phantom images when absent)")
    parser.add_argument("--sections", default="steps,per-image",
                        help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", default="paper,preset",
                        help="step measures: paper, preset or both (modes and share: the first)")
    parser.add_argument("--repeats", type=int, default=5, help="runs (share: windows) per measure (at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the step measures")
    parser.add_argument("--jobs", type=int, default=1, help="per-image jobs at a time")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--pretrained", type=Path, default=None,
                        help="pretrained networks (results/cyclegan/pretrained/networks.pt) instead of pretraining here")
    parser.add_argument("--modes", type=lambda s: comma_list(s, MODES, "--modes"), default=list(MODES),
                        help="modes section: precision[+reduce-overhead], comma-separated")
    parser.add_argument("--share", type=lambda s: [int(k) for k in s.split(",")], default=[1, 2, 4, 8],
                        help="share section: numbers of processes")
    parser.add_argument("--share-mode", default="auto",
                        help="share section: precision[+reduce-overhead]; auto: the fastest CycleGAN mode "
                             "measured here; FILE.json: the fastest in an earlier run's rows")
    parser.add_argument("--window-seconds", type=float, default=5.0, help="share section: window length")
    parser.add_argument("--worker-timeout", type=float, default=600.0, help="share section: seconds to warm up")
    parser.add_argument("--compile-backend", default=None,
                        help="compile with this torch.compile backend on any device (tests: aot_eager)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args.worker_id)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if not sections <= set(SECTIONS) or not sections:
        parser.error(f"--sections {args.sections!r}: choose from {', '.join(SECTIONS)}")
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (medians of at least 5 runs)")
    if args.pretrained is not None and not args.pretrained.is_file():
        parser.error(f"--pretrained {args.pretrained}: no such file")
    if args.share_mode.endswith(".json"):
        if not Path(args.share_mode).is_file():
            parser.error(f"--share-mode {args.share_mode}: no such file")
    elif args.share_mode != "auto" and args.share_mode not in MODES:
        parser.error(f"--share-mode {args.share_mode!r}: a precision, optionally +reduce-overhead, or auto")
    config = load_config(args.configfile)
    if args.drive is not None and not (args.drive / "training" / "images").is_dir():
        args.drive = None
    device = runtime.select_device(args.device)
    args.device = device.type

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        card = f"{torch.cuda.get_device_name(device)}, {props.total_memory / 2**30:.0f} GiB; CUDA {torch.version.cuda}"
    else:
        native = runtime.cpu_bf16_features()
        card = (f"{cpu_model()}, {usable_cores()} usable cores; native bfloat16: "
                + (", ".join(native) if native else "none (neither amx_bf16 nor avx512_bf16)"))
    header = [
        f"# Training benchmark: {args.configfile.name}",
        "",
        f"- device: {device.type} ({card}); torch {torch.__version__}; Python {platform.python_version()}",
        f"- step measures: {args.threads} torch thread(s); medians of {args.repeats} runs",
    ]
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    started = time.perf_counter()

    def report(final: bool = False) -> str:
        text = "\n".join(header + ([f"- benchmark wall time: {time.perf_counter() - started:.0f} s"] if final else [])
                         + ["", markdown(rows), ""])
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
            args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
        return text

    if "steps" in sections:
        rows += step_rows(config, device, args.repeats, args.threads, {s.strip() for s in args.sizes.split(",")})
        report()
    if "modes" in sections:
        mode_rows(config, args, device, rows, report)
    if "cpu-precision" in sections:
        cpu_precision_rows(config, args, device, rows, report)
    if "share" in sections:
        header.append(f"- share: {args.repeats} windows of {args.window_seconds:g} s, all processes started together")
        share_rows(config, args, device, rows, report)
    if "per-image" in sections:
        with tempfile.TemporaryDirectory(prefix="cyclesynth-bench-") as tmp:
            image_rows, source = per_image_rows(config, args, Path(tmp))
        rows += image_rows
        header.append(f"- per-image jobs: {source}; {args.jobs} at a time")
        scratch = next(r for r in image_rows if r["sizes"] == "scratch")["median"]
        tuned = next(r for r in image_rows if r["sizes"] == "pretrained")["median"]
        header.append(f"- per-image wall time, scratch / pretrained (medians): {scratch / tuned:.2f}x")
    print("\n" + report(final=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
