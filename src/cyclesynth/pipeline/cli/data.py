"""The data stage's subcommands: ``generate-phantom``, ``check-image``, ``prepare-dataset`` and
``samplesheet`` (the rules of ``workflow/rules/data.smk``, and the samplesheet helper)."""

from __future__ import annotations

import json

from cyclesynth.pipeline.cli.common import _write_table, log


def cmd_generate_phantom(args) -> None:
    from cyclesynth.data.phantom.io import write_phantom_image

    entry = write_phantom_image(args.root, args.split, args.id, height=args.height, width=args.width, seed=args.seed)
    log(f"wrote phantom {args.split} image {args.id} to {args.root} (vessel fraction {entry['vessel_fraction_in_fov']})")


def cmd_check_image(args) -> None:
    from cyclesynth.data.datasets import check_image
    from cyclesynth.data.images import atomic_path

    annotations = {"label": args.label or "", "fov": args.fov or "", "label2": args.label2 or ""}
    summary = check_image(args.image, annotations, min_size=args.min_size, context=args.context)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    for note in summary["notes"]:
        log(f"note: {note}")
    for warning in summary["warnings"]:
        log(f"WARNING: {warning}")
    shares = ", ".join(f"{kind} {share:.1%}" for kind, share in summary["vessel_share"].items())
    log(f"{args.image}: {summary['height']}x{summary['width']}, annotations readable, binary and of its size"
        + (f"; vessel share of the FOV: {shares}" if shares else ""))


def dataset_section(args) -> dict:
    """The config's ``dataset`` section that prepare-dataset plans from: ``--dataset`` (the
    workflow passes its own, so that the job writes the index the Snakefile planned), or one
    made of ``--root`` (a folder in DRIVE's layout) or ``--samplesheet`` and the role flags."""
    if args.dataset:
        return json.loads(args.dataset)
    return {
        "source": "samplesheet" if args.samplesheet else "drive",
        "root": args.root,
        "samplesheet": args.samplesheet,
        "reference": args.reference,
        "include_test_as_unlabeled": args.include_test_as_unlabeled,
        "max_unlabeled": args.max_unlabeled,
        "validation": list(args.validation),
    }


def cmd_prepare_dataset(args) -> None:
    from cyclesynth.data.datasets import input_warnings
    from cyclesynth.pipeline.dataset_plan import dataset_root, plan

    config = {"dataset": dataset_section(args)}
    index = plan(config)  # the function the Snakefile planned its jobs with
    index["warnings"] = input_warnings(index, args.checked)
    for warning in filter(None, index["warnings"]):
        log(f"WARNING: {warning}")
    _write_table(index, args.out)
    counts = index["role"].value_counts().to_dict()
    reference = index.loc[index["role"] == "reference", "id"].iloc[0]
    log(f"dataset {dataset_root(config)}: {counts}; reference {reference}; {int(index['unlabeled'].sum())} "
        "unlabeled images for synthesis")


def cmd_samplesheet(args) -> None:
    from cyclesynth.data.layouts import LAYOUTS, drive_rows, glob_rows, layout_rows
    from cyclesynth.data.samplesheet import write_samplesheet

    layout = args.layout or ("glob" if args.images else None)
    if layout is None:
        raise SystemExit("cyclesynth samplesheet: give --layout (drive, chase_db1, hrf, stare) with --root, "
                         "or --images GLOB --reference PATH --label PATH")
    if layout == "glob":
        missing = [flag for flag, value in (("--images", args.images), ("--reference", args.reference),
                                            ("--label", args.label)) if not value]
        if missing:
            raise SystemExit(f"cyclesynth samplesheet: the glob layout needs {', '.join(missing)}")
        rows = glob_rows(args.images, reference=args.reference, label=args.label, fov=args.fov,
                         labels=args.labels, labels2=args.labels2, fovs=args.fovs, test=args.test)
    else:
        if not args.root:
            raise SystemExit(f"cyclesynth samplesheet: --layout {layout} needs --root (the dataset's folder)")
        if layout == "drive":
            rows = drive_rows(args.root, args.reference)
        else:
            rows = layout_rows(LAYOUTS[layout], args.root, reference=args.reference, n_test=args.n_test,
                               test_ids=args.test_ids)
    table = write_samplesheet(rows, args.out)
    counts = table["role"].value_counts().to_dict()
    log(f"wrote {args.out}: {len(table)} images {counts}; reference "
        f"{table.loc[table['role'] == 'reference', 'id'].iloc[0]}")


def register(sub) -> None:
    """Add this stage's subcommands to ``sub`` (the parser's subparsers)."""
    p = sub.add_parser("generate-phantom", help="write one image of the built-in phantom dataset (DRIVE layout)")
    p.add_argument("--root", required=True)
    p.add_argument("--split", choices=["training", "test"], required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=cmd_generate_phantom)

    p = sub.add_parser("check-image", help="validate one image with its label and masks")
    p.add_argument("--image", required=True)
    p.add_argument("--label", default="")
    p.add_argument("--fov", default="")
    p.add_argument("--label2", default="")
    p.add_argument("--min-size", type=int, required=True, help="smallest side allowed (the patch size)")
    p.add_argument("--context", default="", help="where the image is listed (a samplesheet row), for messages")
    p.add_argument("--out", required=True, help="JSON summary written when the image passes")
    p.set_defaults(func=cmd_check_image)

    p = sub.add_parser("prepare-dataset", help="index a dataset (DRIVE layout or samplesheet) with roles")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dataset", help="the config's dataset section as JSON (what the workflow passes)")
    where.add_argument("--root", help="a dataset in the DRIVE layout")
    where.add_argument("--samplesheet", help="a samplesheet (TSV or CSV)")
    p.add_argument("--reference", default=None)
    p.add_argument("--include-test-as-unlabeled", action="store_true")
    p.add_argument("--max-unlabeled", type=int, default=None)
    p.add_argument("--validation", nargs="*", default=[], help="ids of labeled training images held out and scored apart")
    p.add_argument("--checked", nargs="*", default=[],
                   help="the check-image summaries (JSON); their warnings go to the index's warnings column")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare_dataset)

    p = sub.add_parser(
        "samplesheet",
        help="write a samplesheet from a folder",
        description="Write a samplesheet (TSV; CSV if --out ends in .csv) from a folder: --layout drive, "
        "chase_db1, hrf or stare with --root, or any folder with --images GLOB --reference PATH --label PATH.",
    )
    p.add_argument("--out", required=True, help="the samplesheet to write (paths in it are relative to it)")
    p.add_argument("--layout", choices=["drive", "chase_db1", "hrf", "stare", "glob"], default=None,
                   help="the folder's file naming (default: glob when --images is given)")
    p.add_argument("--root", help="the dataset's folder (named layouts)")
    p.add_argument("--reference", default=None,
                   help="the reference: an id (named layouts; default the first labeled training image) or a file (glob)")
    p.add_argument("--n-test", type=int, default=None,
                   help="named single-folder layouts: the last N images (id order) are test images "
                        "(default: chase_db1 8, hrf and stare 0)")
    p.add_argument("--test-ids", nargs="+", default=None, help="named single-folder layouts: these ids are test images")
    p.add_argument("--images", help="glob layout: the images (quote it), e.g. 'imgs/*.jpg'")
    p.add_argument("--label", help="glob layout: the reference's label")
    p.add_argument("--fov", help="glob layout: the reference's FOV mask (optional)")
    p.add_argument("--labels", help="glob layout: other labels, a pattern with {id} = the image's file stem")
    p.add_argument("--labels2", help="glob layout: second-observer labels, a pattern with {id} = the image's file "
                   "stem (scored as the human row where a test image has one)")
    p.add_argument("--fovs", help="glob layout: FOV masks, a pattern with {id} = the image's file stem")
    p.add_argument("--test", help="glob layout: test images (a glob; a file that --images also "
                   "matches is a test image); scored where --labels finds a label")
    p.set_defaults(func=cmd_samplesheet)
