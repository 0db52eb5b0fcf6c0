#!/usr/bin/env python3
"""Restyle the reference with a finished run's CycleGANs in three ways and measure artefacts.

    python scripts/restyling_artefacts.py --run bench/drive-cpu --out bench/artefacts.tsv \
        --configfile config/drive-cpu.yaml

``--run`` is a workflow folder (``snakemake --directory``) whose results/ holds the index
(results/data/index.tsv) and one generator per unlabeled image (results/cyclegan/{id}/).
Each generator restyles the reference tiled on the plain grid (stride = patch size, the
paper's), blended (stride = half the patch size) and whole (one pass, synthesis.whole_image);
the rows 'reference' are the reference itself, unrestyled.
Per image and way: the seam ratio on the patch grid, the checkerboard ratio against the
reference, the colour distance (mean RGB within the FOV) to the unlabeled image, and the
quality filter's MSE and verdict, with the filter and patch settings of the run's
``--configfile`` (resolved as the workflow resolves it; ``--config`` values as the run had
them, e.g. ``--config filter='{max_mse: 1.0}'``). The medians per way are printed; the rows go to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cyclesynth.data.images import read_fov, read_rgb  # noqa: E402
from cyclesynth.pipeline.resolved_config import resolve  # noqa: E402
from cyclesynth.synthesis.artefacts import checkerboard_ratio, colour_distance  # noqa: E402
from cyclesynth.synthesis.blending import seam_ratio  # noqa: E402
from cyclesynth.synthesis.quality_filter import judge  # noqa: E402
from cyclesynth.synthesis.synthesize import synthesize_image  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the workflow folder of a finished run")
    p.add_argument("--out", required=True, help="TSV of the per-image rows")
    p.add_argument("--configfile", default="config/drive-cpu.yaml", help="the preset the run used")
    p.add_argument("--config", nargs="*", default=[], help="the run's --config values, if any")
    args = p.parse_args(argv)
    # the run's settings; a DRIVE preset asks for a root, which is not read here (the images
    # are the run's index's)
    config = resolve(args.configfile, ["dataset={root: /unused}", *args.config])
    settings = config["filter"]
    results = Path(args.run) / "results"
    index = pd.read_csv(results / "data" / "index.tsv", sep="\t", dtype={"id": str}, keep_default_na=False)
    reference_row = index[index["role"] == "reference"].iloc[0]
    reference = read_rgb(reference_row["image"])
    fov = read_fov(reference_row["fov"], reference.shape[:2])
    size = config["patches"]["size"]
    reference_seam = seam_ratio(reference, size, size, fov)
    ways = {"tiled": dict(patch_stride=size), "blended": dict(patch_stride=size // 2),
            "whole": dict(patch_stride=size, whole_image=True)}
    rows = []
    for _, row in index[index["role"] == "unlabeled"].iterrows():
        generator = results / "cyclegan" / row["id"] / "generator.pt"
        if not generator.exists():
            continue
        target = read_rgb(row["image"])
        target_fov = read_fov(row["fov"], target.shape[:2])
        rows.append({"image": row["id"], "way": "reference", "seam": reference_seam,
                     "checkerboard": 1.0, "colour_distance": colour_distance(reference, target, fov, target_fov),
                     "mse": 0.0, "kept": True})
        for way, options in ways.items():
            image = synthesize_image(reference, str(generator), patch_size=size, device="cpu", fov=fov, **options)
            verdict = judge(image, reference, fov, normalize=settings["normalize"], max_mse=settings["max_mse"],
                            highpass_sigma=settings["highpass_sigma"])
            rows.append({
                "image": row["id"], "way": way,
                "seam": seam_ratio(image, size, size, fov),
                "checkerboard": checkerboard_ratio(image, reference, fov),
                "colour_distance": colour_distance(image, target, fov, target_fov),
                "mse": verdict["mse"], "kept": verdict["kept"],
            })
        print(pd.DataFrame(rows[-4:]).to_string(index=False, header=len(rows) == 4), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, sep="\t", index=False)
    summary = table.groupby("way", sort=False).agg(
        seam_median=("seam", "median"), seam_max=("seam", "max"),
        checkerboard_median=("checkerboard", "median"), colour_distance_median=("colour_distance", "median"),
        mse_median=("mse", "median"), kept=("kept", "sum"), images=("kept", "size"))
    print(summary.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
