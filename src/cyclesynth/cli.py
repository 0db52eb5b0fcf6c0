"""Command line: one subcommand per workflow step (``cyclesynth <step> ...``).

Every Snakemake rule calls one of these with all its settings on the command line, so that a
changed setting changes the rule's ``params`` and Snakemake reruns exactly what it affects.
Nested settings arrive as JSON objects (``--settings '{"epochs": 10, ...}'``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cyclesynth import __version__


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


# --------------------------------------------------------------------------- data


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


def cmd_prepare_dataset(args) -> None:
    from cyclesynth.data.datasets import (
        RoleSettings,
        check_complete,
        check_no_orphans,
        input_warnings,
        plan_dataset,
    )
    from cyclesynth.data.samplesheet import samplesheet_index

    roles = RoleSettings(args.reference, args.include_test_as_unlabeled, args.max_unlabeled, tuple(args.validation))
    if args.samplesheet:
        index = samplesheet_index(args.samplesheet, roles)
    else:
        index = plan_dataset(args.root, roles)
        check_no_orphans(args.root)
        check_complete(index)
    index["warnings"] = input_warnings(index, args.checked)
    for warning in filter(None, index["warnings"]):
        log(f"WARNING: {warning}")
    _write_table(index, args.out)
    counts = index["role"].value_counts().to_dict()
    source = args.samplesheet or args.root
    reference = index.loc[index["role"] == "reference", "id"].iloc[0]
    log(f"dataset {source}: {counts}; reference {reference}; {int(index['unlabeled'].sum())} unlabeled images "
        "for synthesis")


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


# --------------------------------------------------------------------------- synthesis


def _image_patches(path: str, args) -> np.ndarray:
    """The image's patches on the workflow's grid (--patch-size, --patch-stride)."""
    from cyclesynth.data.images import read_rgb
    from cyclesynth.data.patches import extract_patches

    return extract_patches(read_rgb(path), args.patch_size, args.patch_stride)[0]


def cmd_pretrain_cyclegan(args) -> None:
    from cyclesynth.synthesis.cyclegan import CycleGANSettings, save_pretrained, train_cyclegan
    from cyclesynth.segmentation.experiments import derive_seed

    if len(args.images) != len(args.targets):
        raise SystemExit(f"--images names {len(args.images)} ids but --targets gives {len(args.targets)} files")
    device = _runtime(args)
    settings = CycleGANSettings.from_dict(args.settings)
    reference_patches = _image_patches(args.reference, args)
    pooled = np.concatenate([_image_patches(path, args) for path in args.targets])
    seed = derive_seed(args.seed, "cyclegan-pretrain")
    log(
        f"CycleGAN pretraining: reference {args.reference} ({len(reference_patches)} patches) against "
        f"{len(pooled)} patches pooled from images {', '.join(args.images)}; "
        f"{settings.epochs}+{settings.epochs_decay} epochs, device {device}"
    )
    result = train_cyclegan(
        reference_patches, pooled, settings, device=device, seed=seed, checkpoint_path=args.checkpoint, log=log
    )
    _write_table(result.history, args.history)
    save_pretrained(args.model, result, settings)
    Path(args.checkpoint).unlink(missing_ok=True)
    log(f"saved the pretrained networks to {args.model}")


def cmd_train_cyclegan(args) -> None:
    from cyclesynth.synthesis.cyclegan import (
        CycleGANSettings,
        load_pretrained,
        save_generator,
        train_cyclegan,
    )
    from cyclesynth.segmentation.experiments import derive_seed

    device = _runtime(args)
    settings = CycleGANSettings.from_dict(args.settings)
    init = load_pretrained(args.init) if args.init else None
    if init is not None:
        init.check_architecture(settings)  # before any image is read
    reference_patches = _image_patches(args.reference, args)
    target_patches = _image_patches(args.target, args)
    seed = derive_seed(args.seed, "cyclegan", args.image)
    log(
        f"CycleGAN reference {args.reference} -> image {args.image} ({args.target}): {len(reference_patches)} + "
        f"{len(target_patches)} patches, {settings.epochs}+{settings.epochs_decay} epochs, "
        f"{'fine-tuning ' + args.init if init else 'from scratch'}, device {device}"
    )
    result = train_cyclegan(
        reference_patches,
        target_patches,
        settings,
        device=device,
        seed=seed,
        checkpoint_path=args.checkpoint,
        init=init,
        log=log,
    )
    _write_table(result.history, args.history)
    save_generator(args.model, result.generator_state, settings)
    Path(args.checkpoint).unlink(missing_ok=True)
    log(f"saved generator to {args.model}")


def cmd_synthesize(args) -> None:
    from cyclesynth.data.images import read_binary, read_rgb, write_png
    from cyclesynth.synthesis.synthesize import synthesize_image

    device = _runtime(args)
    fov = read_binary(args.fov) if args.mask_outside_fov and args.fov else None
    image = synthesize_image(
        read_rgb(args.reference),
        args.model,
        patch_size=args.patch_size,
        patch_stride=args.patch_stride,
        device=device,
        fov=fov,
    )
    write_png(args.out, image)
    log(f"wrote {args.out}")


def cmd_filter_synthetic(args) -> None:
    from cyclesynth.data.images import read_rgb
    from cyclesynth.synthesis.quality_filter import judge

    reference_image = read_rgb(args.reference)
    fov = _fov(args.fov, reference_image.shape[:2])
    rows = []
    for image_id, path in zip(args.images, args.synthetic):
        verdict = judge(
            read_rgb(path), reference_image, fov,
            normalize=args.normalize, max_mse=args.max_mse, highpass_sigma=args.highpass_sigma,
        )
        rows.append({"image": image_id, "synthetic": path, **verdict})
        log(f"{image_id}: mse {verdict['mse']:.4f} -> {'kept' if verdict['kept'] else 'rejected: ' + verdict['reason']}")
    columns = ["image", "synthetic", "mse", "kept", "reason"]
    if args.seam_size:
        from cyclesynth.synthesis.blending import seam_ratio

        stride = args.seam_stride or args.seam_size
        log(f"seam ratio of the reference itself: {seam_ratio(reference_image, args.seam_size, stride, fov):.3f}")
        for row in rows:
            row["seam"] = seam_ratio(read_rgb(row["synthetic"]), args.seam_size, stride, fov)
            log(f"{row['image']}: seam ratio {row['seam']:.3f}")
        columns.append("seam")
    table = pd.DataFrame(rows, columns=columns)
    _write_table(table, args.out)
    log(f"kept {int(table['kept'].sum())} of {len(table)} synthetic images")


# --------------------------------------------------------------------------- segmentation


def cmd_train_unet(args) -> None:
    from cyclesynth.data.datasets import read_index
    from cyclesynth.segmentation.experiments import derive_seed, training_pairs
    from cyclesynth.data.images import read_binary, read_rgb
    from cyclesynth.segmentation.pseudo_labels import read_pseudo_label, read_table
    from cyclesynth.synthesis.quality_filter import read_quality
    from cyclesynth.segmentation.settings import UNetSettings
    from cyclesynth.segmentation.saved import save_model
    from cyclesynth.segmentation.training import train_unet

    device = _runtime(args)
    settings = UNetSettings.from_dict(args.settings)
    index = read_index(args.index)
    quality = read_quality(args.quality) if args.quality else None
    pseudo = read_table(args.pseudo_labels) if args.pseudo_labels else None
    pairs = training_pairs(
        index, args.training_set, quality=quality, include_reference=args.include_reference,
        pseudo_labels=pseudo, include_synthetic=args.include_synthetic,
    )
    images = [read_rgb(p.image) for p in pairs]
    labels = [read_pseudo_label(p.label) if p.pseudo else read_binary(p.label) for p in pairs]
    fovs = [_fov(p.fov, label.shape) for p, label in zip(pairs, labels)]
    log(
        f"U-Net '{args.experiment}' ({args.training_set}): {len(pairs)} training images, "
        f"{settings.epochs} epochs, augment {settings.augment}, device {device}"
    )
    result = train_unet(
        images, labels, fovs, settings, device=device, seed=derive_seed(args.seed, "unet", args.experiment),
        checkpoint_path=args.checkpoint, log=log,
    )
    _write_table(result.history, args.history)
    save_model(args.model, result.state, settings)
    Path(args.checkpoint).unlink(missing_ok=True)
    log(f"saved U-Net to {args.model}")


def cmd_pseudo_label(args) -> None:
    from cyclesynth.data.datasets import read_index
    from cyclesynth.segmentation.pseudo_labels import write_pseudo_labels
    from cyclesynth.segmentation.segment import SegmentationError

    device = _runtime(args)
    try:
        table = write_pseudo_labels(
            args.model, read_index(args.index), args.out_dir, band=args.band, stride=args.stride, tta=args.tta,
            device=device, log=log,
        )
    except ValueError as err:  # a bad --stride or --band
        raise SegmentationError(str(err)) from None
    log(f"wrote {len(table)} pseudo-labels into {args.out_dir}")


def _prediction_stride(args, patch_size: int) -> int:
    """``--stride`` in pixels for the model's patch size (``half`` = patch size // 2)."""
    from cyclesynth.segmentation.inference import resolve_stride
    from cyclesynth.segmentation.segment import SegmentationError

    try:
        return resolve_stride(args.stride, patch_size, key="--stride")
    except ValueError as err:
        raise SegmentationError(f"{err} of the model {args.model}") from None


def cmd_predict(args) -> None:
    from cyclesynth.data.datasets import read_index, scored_rows
    from cyclesynth.data.images import read_rgb, write_png, write_probability
    from cyclesynth.segmentation.inference import predict_image
    from cyclesynth.segmentation.saved import load_model, prediction_precision

    device = _runtime(args)
    model, settings = load_model(args.model, device)
    stride = _prediction_stride(args, settings.patch_size)
    precision, reason = prediction_precision(settings, device)
    log(f"predicting in {precision.name} ({reason})")
    index = read_index(args.index)
    out = Path(args.out_dir)
    scored = pd.concat([scored_rows(index, "test"), scored_rows(index, "validation")])
    log(
        f"predicting with tiles of {settings.patch_size} at stride {stride}, "
        f"test-time augmentation {'on' if args.tta else 'off'}"
    )
    for row in scored.itertuples():
        probability = predict_image(
            model, read_rgb(row.image), patch_size=settings.patch_size, stride=stride, tta=args.tta, device=device,
            precision=precision,
        )
        write_probability(out / f"{row.id}_probability.png", probability)
        write_png(out / f"{row.id}.png", probability >= 0.5)
    log(f"predicted {len(scored)} labeled test and validation images into {out}")


def _regions(fov: np.ndarray) -> dict:
    return {"fov": fov, "image": None}


def _fov(path: str, shape) -> np.ndarray:
    """The FOV mask, or the whole image where there is none."""
    from cyclesynth.data.images import read_binary

    return read_binary(path) if path else np.ones(shape, bool)


def cmd_evaluate(args) -> None:
    from cyclesynth.data.datasets import read_index, scored_rows
    from cyclesynth.data.images import read_binary, read_probability
    from cyclesynth.evaluation.metrics import evaluate_probabilities

    index = read_index(args.index)
    rows = []
    for row in scored_rows(index, args.role).itertuples():
        probability = read_probability(Path(args.predictions_dir) / f"{row.id}_probability.png")
        truth = read_binary(row.label)
        fov = _fov(row.fov, truth.shape)
        for result in evaluate_probabilities(probability, truth, _regions(fov), args.thresholds):
            rows.append({"experiment": args.experiment, "image": row.id, **result})
    _write_table(pd.DataFrame(rows), args.out)
    log(f"evaluated {args.experiment} on {len(rows) // max(1, 2 * len(args.thresholds))} {args.role} images")


def cmd_evaluate_human(args) -> None:
    from cyclesynth.data.datasets import read_index, scored_tests
    from cyclesynth.data.images import read_binary
    from cyclesynth.evaluation.metrics import evaluate_binary

    index = read_index(args.index)
    rows = []
    for row in scored_tests(index)[lambda t: t["label2"] != ""].itertuples():
        second, truth = read_binary(row.label2), read_binary(row.label)
        fov = _fov(row.fov, truth.shape)
        for result in evaluate_binary(second, truth, _regions(fov)):
            rows.append({"experiment": "human (2nd observer)", "image": row.id, **result})
    columns = ["experiment", "image", "region", "threshold_name", "threshold", "sensitivity", "specificity",
               "accuracy", "f1", "auc", "tp", "fp", "tn", "fn"]
    _write_table(pd.DataFrame(rows, columns=columns), args.out)
    log(f"second observer evaluated on {len(rows) // 2} test images")


def cmd_frangi(args) -> None:
    from cyclesynth.data.datasets import read_index, reference_row, scored_tests
    from cyclesynth.data.images import read_binary, read_rgb, write_png, write_probability
    from cyclesynth.evaluation.metrics import evaluate_probabilities
    from cyclesynth.evaluation.vesselness import (
        EXPERIMENT,
        THRESHOLD_NAME,
        best_threshold,
        green_vesselness,
        rank_score,
    )

    index = read_index(args.index)
    reference = reference_row(index)
    reference_label = read_binary(reference["label"])
    fov = _fov(reference["fov"], reference_label.shape)
    score = rank_score(green_vesselness(read_rgb(reference["image"]), fov, args.sigmas), fov)
    threshold, f1 = best_threshold(score, reference_label, fov)
    log(f"reference {reference['id']}: threshold {threshold:.4f} (top {1 - threshold:.1%} of the FOV), "
        f"F1 {f1:.4f} within its FOV; sigmas {args.sigmas}")
    out, rows = Path(args.out_dir), []
    for row in scored_tests(index).itertuples():
        truth = read_binary(row.label)
        fov = _fov(row.fov, truth.shape)
        score = rank_score(green_vesselness(read_rgb(row.image), fov, args.sigmas), fov)
        write_probability(out / f"{row.id}_probability.png", score)
        write_png(out / f"{row.id}.png", score >= threshold)
        for result in evaluate_probabilities(score, truth, _regions(fov), {THRESHOLD_NAME: threshold}):
            rows.append({"experiment": EXPERIMENT, "image": row.id, **result})
    _write_table(pd.DataFrame(rows), args.out)
    log(f"scored {len(rows) // 2} test images")


def cmd_paired(args) -> None:
    from cyclesynth.evaluation.paired import paired_table
    from cyclesynth.evaluation.inputs import read_metrics

    metrics = {name: read_metrics(path) for name, path in _pairs(args.metrics).items()}
    table = paired_table(metrics)
    _write_table(table, args.out)
    for row in table.itertuples():
        log(f"{row.a} - {row.b}: mean AUC difference {row.mean_difference:+.4f} over {row.n_images} images, "
            f"{row.a_better}/{row.b_better} better, Wilcoxon p {row.p_value:.4g}")


# --------------------------------------------------------------------------- report


def _pairs(values: list[str]) -> dict[str, str]:
    result = {}
    for value in values or []:
        key, _, path = value.partition("=")
        result[key] = path
    return result


def cmd_segment(args) -> None:
    from cyclesynth.segmentation.segment import segment_files

    device = _runtime(args)
    table = segment_files(
        args.model, args.images, args.out, names=args.names, threshold=args.threshold, stride=args.stride,
        tta=args.tta, device=device, progress=not args.no_progress, log=log,
    )
    log(f"wrote masks, probabilities and overlays of {len(table)} image(s) and segmentations.tsv to {args.out}")


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
    )
    log(f"wrote {args.summary}, {args.table1} and figures in {args.figures_dir}")


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclesynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cyclesynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("pretrain-cyclegan", help="pretrain one CycleGAN: reference <-> patches pooled from images")
    p.add_argument("--reference", required=True, help="the reference image")
    p.add_argument("--targets", nargs="+", required=True, help="the unlabeled images to pool")
    p.add_argument("--images", nargs="+", required=True, help="their ids (same order)")
    p.add_argument("--settings", type=_json, required=True, help="JSON object of CycleGAN settings")
    patch_args(p)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--checkpoint", required=True, help="resumable checkpoint path (outside the outputs)")
    p.add_argument("--model", required=True, help="output: the four networks")
    p.add_argument("--history", required=True)
    runtime_args(p)
    p.set_defaults(func=cmd_pretrain_cyclegan)

    p = sub.add_parser("train-cyclegan", help="train one CycleGAN: reference <-> one unlabeled image")
    p.add_argument("--reference", required=True, help="the reference image")
    p.add_argument("--target", required=True, help="the unlabeled image")
    p.add_argument("--image", required=True, help="id of the unlabeled image (seed, logs)")
    p.add_argument("--settings", type=_json, required=True, help="JSON object of CycleGAN settings")
    patch_args(p)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--checkpoint", required=True, help="resumable checkpoint path (outside the outputs)")
    p.add_argument("--model", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--init", default=None, help="pretrained networks to fine-tune (default: from scratch)")
    runtime_args(p)
    p.set_defaults(func=cmd_train_cyclegan)

    p = sub.add_parser("synthesize", help="restyle the reference with a trained generator")
    p.add_argument("--reference", required=True)
    p.add_argument("--fov", default=None, help="the reference's FOV mask (default: the whole image)")
    p.add_argument("--model", required=True)
    patch_args(p)
    p.add_argument("--mask-outside-fov", action="store_true")
    p.add_argument("--out", required=True)
    runtime_args(p)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("filter-synthetic", help="MSE of each synthetic image against the reference, and a verdict")
    p.add_argument("--reference", required=True)
    p.add_argument("--fov", default=None, help="the reference's FOV mask (default: the whole image)")
    p.add_argument("--images", nargs="+", required=True, help="unlabeled ids, in the order of --synthetic")
    p.add_argument("--synthetic", nargs="+", required=True)
    p.add_argument("--normalize", choices=["zscore", "none"], required=True)
    p.add_argument("--max-mse", type=float, required=True)
    p.add_argument("--highpass-sigma", type=float, required=True, help="pixels; 0 = compare raw grey levels")
    p.add_argument("--seam-size", type=int, default=None, help="tile size: add a 'seam' column (blending.seam_ratio)")
    p.add_argument("--seam-stride", type=int, default=None, help="tile stride of the synthesis (default: --seam-size)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_filter_synthetic)

    p = sub.add_parser("train-unet", help="train one U-Net on an experiment's training set")
    p.add_argument("--index", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--training-set", required=True,
                   choices=["all_labels", "synthetic", "reference_only", "pseudo_labels"])
    p.add_argument("--quality", default=None, help="quality.tsv (synthetic training set, or pseudo_labels with synthetic)")
    p.add_argument("--include-reference", action="store_true")
    p.add_argument("--pseudo-labels", default=None, help="the teacher's pseudo_labels.tsv (pseudo_labels training set)")
    p.add_argument("--include-synthetic", action="store_true",
                   help="pseudo_labels: add the kept synthetic images with the reference's label (needs --quality)")
    p.add_argument("--settings", type=_json, required=True, help="JSON object of U-Net settings")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--history", required=True)
    runtime_args(p)
    p.set_defaults(func=cmd_train_unet)

    p = sub.add_parser("pseudo-label", help="a teacher U-Net's probabilities and pseudo-labels of the unlabeled images")
    p.add_argument("--index", required=True)
    p.add_argument("--model", required=True, help="the teacher, e.g. results/unet/reference_augmented/model.pt")
    p.add_argument("--band", type=float, required=True,
                   help="band of doubt on the weight-corrected probability, in [0, 0.5): ignored pixels")
    p.add_argument("--out-dir", required=True,
                   help="writes {id}_probability.png, {id}_pseudo_label.png and pseudo_labels.tsv")
    prediction_args(p)
    runtime_args(p)
    p.set_defaults(func=cmd_pseudo_label)

    p = sub.add_parser("predict", help="vessel probabilities and masks for every test image")
    p.add_argument("--index", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out-dir", required=True)
    prediction_args(p)
    runtime_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="per-image metrics of one experiment")
    p.add_argument("--index", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--predictions-dir", required=True)
    p.add_argument("--thresholds", type=_json, required=True, help='JSON {"name": value}')
    p.add_argument("--role", choices=["test", "validation"], default="test", help="which labeled images to score")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-human", help="the second observer against the first")
    p.add_argument("--index", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate_human)

    p = sub.add_parser(
        "segment",
        help="segment images with a trained U-Net: mask, probability map and overlay per image",
        description="Segment images of any size with a trained U-Net (results/unet/<experiment>/model.pt). "
        "Writes <name>_mask.png, <name>_probability.png (16-bit) and <name>_overlay.png per image and "
        "segmentations.tsv into --out; <name> is the file stem unless --names gives it.",
    )
    p.add_argument("--model", required=True, help="a trained U-Net, e.g. results/unet/synthetic/model.pt")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("images", nargs="+", help="image files (any format imageio reads)")
    p.add_argument("--names", nargs="+", default=None, help="output names, one per image (default: file stems)")
    p.add_argument("--threshold", default="weight_corrected",
                   help="weight_corrected (w/(1+w), w the model's vessel weight; default) or a number in (0, 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    prediction_args(p)
    runtime_args(p)
    p.set_defaults(func=cmd_segment)

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
    p.add_argument("--figures-dir", required=True)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cyclesynth.data.datasets import DatasetError
    from cyclesynth.data.images import ImageReadError
    from cyclesynth.runtime import TrainingDiverged
    from cyclesynth.segmentation.segment import SegmentationError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DatasetError, ImageReadError, SegmentationError, TrainingDiverged) as err:
        print(f"cyclesynth {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
