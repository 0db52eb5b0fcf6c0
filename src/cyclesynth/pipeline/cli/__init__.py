"""Command line: one subcommand per workflow step (``cyclesynth <step> ...``).

Every Snakemake rule calls one of these with all its settings on the command line, so that a
changed setting changes the rule's ``params`` and Snakemake reruns exactly what it affects.
Nested settings arrive as JSON objects (``--settings '{"epochs": 10, ...}'``).

Modules: ``common`` (what the subcommands share) and one per workflow stage, in the order of
the listing, each with its subcommands' ``cmd_*`` functions and a ``register(sub)`` that adds
them to the parser: ``data``, ``synthesis``, ``segmentation``, ``comparison``, ``report``.
"""

from __future__ import annotations

import argparse
import sys

from cyclesynth import __version__
from cyclesynth.pipeline.cli import comparison, data, report, segmentation, synthesis


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclesynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cyclesynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in (data, synthesis, segmentation, comparison, report):  # the order of the listing
        stage.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cyclesynth.data.datasets import DatasetError
    from cyclesynth.data.images import ImageReadError
    from cyclesynth.errors import ConfigError, TrainingDiverged
    from cyclesynth.segmentation.segment import SegmentationError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, DatasetError, ImageReadError, SegmentationError, TrainingDiverged) as err:
        print(f"cyclesynth {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
