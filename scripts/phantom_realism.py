#!/usr/bin/env python3
"""How close the phantom's appearance is to DRIVE's: background texture per band and vessel
contrast (``cyclesynth.evaluation.image_statistics``), DRIVE resampled to the phantom's size.

    python scripts/phantom_realism.py --drive ../shared/data/DRIVE            # 192 px, 20 phantoms
    python scripts/phantom_realism.py --drive ../shared/data/DRIVE --size 128 --phantoms 40

Prints a markdown table: min, quartiles and max over DRIVE's 40 images and over the phantoms
(seeds 1000, 1001, ...; the demo's own images are never used).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cyclesynth.data.datasets import DatasetError, plan_drive  # noqa: E402
from cyclesynth.evaluation.image_statistics import at_size, background_bands  # noqa: E402
from cyclesynth.data.images import read_binary, read_rgb  # noqa: E402
from cyclesynth.data.phantom.render import generate_phantom  # noqa: E402


def drive_images(root: Path):
    for row in plan_drive(root).itertuples():
        yield read_rgb(row.image).astype(np.float64), read_binary(row.label), read_binary(row.fov)


def summary(name: str, rows: list[dict]) -> list[str]:
    lines = []
    for key in rows[0]:
        values = np.percentile([row[key] for row in rows], [0, 25, 50, 75, 100])
        lines.append(f"| {name} | {key} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drive", default=str(ROOT.parent / "shared" / "data" / "DRIVE"), help="DRIVE root folder")
    parser.add_argument("--size", type=int, default=192, help="phantom side; DRIVE is resampled to it")
    parser.add_argument("--phantoms", type=int, default=20, help="number of phantoms (seeds 1000...)")
    args = parser.parse_args(argv)
    try:
        drive = [background_bands(*at_size(*image, args.size)).as_dict() for image in drive_images(Path(args.drive))]
    except DatasetError as err:
        parser.error(f"--drive {args.drive}: {err}")
    phantoms = [
        background_bands(*generate_phantom(1000 + seed, args.size, args.size)).as_dict()
        for seed in range(args.phantoms)
    ]
    print(f"| images ({args.size} px) | statistic | min | 25 % | median | 75 % | max |")
    print("|---|---|--:|--:|--:|--:|--:|")
    print("\n".join(summary(f"DRIVE ({len(drive)})", drive) + summary(f"phantom ({len(phantoms)})", phantoms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
