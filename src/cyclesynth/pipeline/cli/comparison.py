"""The comparison subcommands: ``frangi`` (the zero-label floor) and ``paired`` (paired AUC
differences; the rules of ``workflow/rules/comparison.smk``)."""

from __future__ import annotations

from pathlib import Path

from cyclesynth.pipeline.cli.common import _pairs, _write_table, log


def cmd_frangi(args) -> None:
    from cyclesynth.data.datasets import read_index
    from cyclesynth.evaluation.vesselness import score_test_images

    table = score_test_images(read_index(args.index), args.sigmas, Path(args.out_dir), log=log)
    _write_table(table, args.out)
    log(f"scored {len(table) // 2} test images")


def cmd_paired(args) -> None:
    from cyclesynth.evaluation.paired import paired_table
    from cyclesynth.evaluation.inputs import read_metrics

    metrics = {name: read_metrics(path) for name, path in _pairs(args.metrics).items()}
    table = paired_table(metrics)
    _write_table(table, args.out)
    for row in table.itertuples():
        log(f"{row.a} - {row.b}: mean AUC difference {row.mean_difference:+.4f} over {row.n_images} images, "
            f"{row.a_better}/{row.b_better} better, Wilcoxon p {row.p_value:.4g}")


def register(sub) -> None:
    """Add this stage's subcommands to ``sub`` (the parser's subparsers)."""
    p = sub.add_parser("frangi", help="zero-label floor: Frangi vesselness of the test images, threshold from the reference")
    p.add_argument("--index", required=True)
    p.add_argument("--sigmas", type=float, nargs="+", required=True, help="Gaussian scales in pixels")
    p.add_argument("--out-dir", required=True, help="writes {test}.png and {test}_probability.png (ranks)")
    p.add_argument("--out", required=True, help="per-image metrics table")
    p.set_defaults(func=cmd_frangi)

    p = sub.add_parser("paired", help="paired AUC differences and Wilcoxon p-values between experiments")
    p.add_argument("--metrics", nargs="*", default=[], help="experiment=metrics.tsv, in table order")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_paired)
