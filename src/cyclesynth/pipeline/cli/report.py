"""The report's subcommand, ``report`` (the rule of ``workflow/rules/report.smk``)."""

from __future__ import annotations

from cyclesynth.pipeline.cli.common import _json, _pairs, log


def cmd_report(args) -> None:
    from cyclesynth.evaluation.report import write_report

    write_report(
        index_tsv=args.index,
        quality_tsv=args.quality,
        metrics_tsvs=_pairs(args.metrics),
        human_tsv=args.human,
        cyclegan_histories=_pairs(args.cyclegan_history),
        pretrain_history=args.pretrain_history,
        unet_histories=_pairs(args.unet_history),
        predictions_dir=args.predictions_dir,
        experiment_labels=args.labels,
        mse_threshold=args.max_mse,
        out_summary=args.summary,
        out_table1=args.table1,
        figures_dir=args.figures_dir,
        segmentation_tables=_pairs(args.segmentations),
        paired_tsv=args.paired,
        validation_tsvs=_pairs(args.validation_metrics),
        validation_paired_tsv=args.validation_paired,
        prediction=args.prediction,
        self_training=args.self_training,
        pseudo_label_tables=_pairs(args.pseudo_labels),
        segmented_by=args.segmented_by,
        out_headline=args.headline,
    )
    headline = f", {args.headline}" if args.headline else ""
    log(f"wrote {args.summary}, {args.table1}{headline} and figures in {args.figures_dir}")


def register(sub) -> None:
    """Add this stage's subcommands to ``sub`` (the parser's subparsers)."""
    p = sub.add_parser("report", help="summary table, Table 1 and figures")
    p.add_argument("--index", required=True)
    p.add_argument("--quality", default=None)
    p.add_argument("--metrics", nargs="*", default=[], help="experiment=path.tsv ... (none when no image is scored)")
    p.add_argument("--segmentations", nargs="*", default=[], help="experiment=segmentations.tsv ...")
    p.add_argument("--human", default=None)
    p.add_argument("--cyclegan-history", nargs="*", default=[], help="image=path.tsv ...")
    p.add_argument("--pretrain-history", default=None, help="the pretrained CycleGAN's history.tsv")
    p.add_argument("--unet-history", nargs="*", default=[], help="experiment=path.tsv ...")
    p.add_argument("--predictions-dir", required=True)
    p.add_argument("--labels", type=_json, default={}, help='JSON {"experiment": "row label"}')
    p.add_argument("--max-mse", type=float, default=None)
    p.add_argument("--paired", default=None, help="paired.tsv (cyclesynth paired), appended to Table 1")
    p.add_argument("--validation-metrics", nargs="*", default=[],
                   help="experiment=path.tsv ... over the validation images (a table of their own)")
    p.add_argument("--validation-paired", default=None, help="paired.tsv over the validation images")
    p.add_argument("--prediction", type=_json, default=None,
                   help='JSON {"patch_size": 64, "stride": 32, "tta": true}: how the U-Nets predicted (for table1.md)')
    p.add_argument("--self-training", type=_json, default=None,
                   help='JSON {"students": {name: pseudo_labels settings}, "transductive": false} (for table1.md)')
    p.add_argument("--pseudo-labels", nargs="*", default=[], help="teacher=pseudo_labels.tsv ...")
    p.add_argument("--segmented-by", type=_json, default=None,
                   help='JSON {"experiments": [...], "source": "final_experiment"}: which made the segmentations, why')
    p.add_argument("--summary", required=True)
    p.add_argument("--table1", required=True)
    p.add_argument("--headline", default=None, help="the front page's results table (reStructuredText)")
    p.add_argument("--figures-dir", required=True)
    p.set_defaults(func=cmd_report)
