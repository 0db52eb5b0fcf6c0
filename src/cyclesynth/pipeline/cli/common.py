"""What every subcommand shares: the log line, JSON options, writing a table, the device and
threads, ``key=path`` pairs, and the option groups several subcommands take."""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _write_table(table: pd.DataFrame, path: str) -> None:
    from cyclesynth.data.images import atomic_path

    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def _runtime(args):
    from cyclesynth.runtime import select_device, set_threads

    set_threads(args.threads)
    return select_device(args.device)


def _pairs(values: list[str]) -> dict[str, str]:
    result = {}
    for value in values or []:
        key, _, path = value.partition("=")
        result[key] = path
    return result


def runtime_args(p):
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")


def prediction_args(p):
    p.add_argument("--stride", default="half",
                   help="step of the overlapping tiles the U-Net predicts: an integer from 1 to its patch "
                        "size, or half (patch size // 2; default); the patch size is the training grid")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                   help="average over the 8 flips and quarter turns of each image (default: on)")


def patch_args(p):
    p.add_argument("--patch-size", type=int, required=True)
    p.add_argument("--patch-stride", type=int, required=True)
