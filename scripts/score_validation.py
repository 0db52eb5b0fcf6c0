#!/usr/bin/env python3
"""Score trained U-Nets on a run's validation images only: choose settings without the
test images, and without predicting the test images first.

    python scripts/score_validation.py --run bench/probe teacher=results/unet/reference_geometric/model.pt \\
        student=results/unet/self_trained/model.pt [--stride half] [--no-tta] [--out scores.tsv]

Each NAME=MODEL (a path relative to --run, or absolute) predicts every image of the run's
index (``RUN/results/data/index.tsv``) with the role ``validation``, the way rule ``predict``
does (tiles at ``--stride``, test-time augmentation unless ``--no-tta``, the precision and
layout the model was trained in), and is scored as rule ``evaluate_validation`` scores it
(``evaluate_probabilities`` within the FOV). Printed per model: the mean AUC within the FOV,
each image's AUC and the mean F1 at ``--threshold`` (by default w/(1+w) of the model's vessel
weight); ``--out`` writes one row per model and image. The same numbers as the workflow's
``results/validation/metrics/{experiment}.tsv``, without its prediction of the test images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from cyclesynth.data.datasets import read_index, scored_rows
from cyclesynth.data.images import read_binary, read_fov, read_rgb
from cyclesynth.evaluation.metrics import evaluate_probabilities, scored_regions
from cyclesynth.segmentation.inference import predict_image
from cyclesynth.segmentation.saved import load_model, prediction_setup


def parse_models(specs: list[str], run: Path) -> dict[str, Path]:
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"score_validation: '{spec}' is not NAME=MODEL")
        models[name] = Path(path) if Path(path).is_absolute() else run / path
    return models


def score(run: Path, models: dict[str, Path], *, stride, tta: bool, threshold: float | None, device: str) -> pd.DataFrame:
    rows = scored_rows(read_index(run / "results" / "data" / "index.tsv"), "validation")
    if rows.empty:
        raise SystemExit(f"score_validation: {run}/results/data/index.tsv has no labeled validation image")
    records = []
    for name, path in models.items():
        model, settings = load_model(path, device)
        precision, channels_last, _ = prediction_setup(model, settings, device)
        cut = threshold if threshold is not None else settings.vessel_weight / (1.0 + settings.vessel_weight)
        started = time.perf_counter()
        scored = []
        for row in rows.itertuples():
            probability = predict_image(
                model, read_rgb(row.image), patch_size=settings.patch_size, stride=stride, tta=tta, device=device,
                precision=precision, channels_last=channels_last,
            )
            truth = read_binary(row.label)
            fov = read_fov(row.fov, truth.shape)
            result = next(
                r for r in evaluate_probabilities(probability, truth, scored_regions(fov), {"t": cut})
                if r["region"] == "fov"
            )
            scored.append({"model": name, "image": row.id, "auc": result["auc"], "f1": result["f1"], "threshold": cut})
        records += scored
        table = pd.DataFrame(scored)
        print(
            f"{name}: validation AUC {table['auc'].mean():.4f} "
            f"({' / '.join(f'{a:.4f}' for a in table['auc'])}; images {', '.join(map(str, table['image']))}), "
            f"F1 {table['f1'].mean():.3f} at {cut:.3f} [{time.perf_counter() - started:.0f} s]",
            flush=True,
        )
    return pd.DataFrame.from_records(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="a run folder (holds results/data/index.tsv)")
    parser.add_argument("models", nargs="+", help="NAME=MODEL, MODEL relative to --run or absolute")
    parser.add_argument("--stride", default="half", help="tile stride: half (the default, as prediction.stride) or pixels")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="no test-time augmentation")
    parser.add_argument("--threshold", type=float, default=None, help="for F1 (default w/(1+w) of the model)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="TSV: one row per model and image")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    stride = args.stride if args.stride == "half" else int(args.stride)
    table = score(args.run, parse_models(args.models, args.run), stride=stride, tta=args.tta,
                  threshold=args.threshold, device=args.device)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, sep="\t", index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
