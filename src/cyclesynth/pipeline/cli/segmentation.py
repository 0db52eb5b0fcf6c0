"""The segmentation stage's subcommands: ``train-unet``, ``pseudo-label``, ``predict``, ``evaluate``,
``evaluate-human`` and ``segment`` (the rules of ``workflow/rules/segmentation.smk``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cyclesynth.data.images import read_fov
from cyclesynth.evaluation.metrics import scored_regions
from cyclesynth.pipeline.cli.common import _json, _runtime, _write_table, log, prediction_args, runtime_args


def cmd_train_unet(args) -> None:
    from cyclesynth.data.datasets import read_index
    from cyclesynth.segmentation.experiments import derive_seed, training_pairs
    from cyclesynth.data.images import read_binary, read_rgb
    from cyclesynth.segmentation.pseudo_labels import read_pseudo_label, read_table
    from cyclesynth.synthesis.quality_filter import read_quality
    from cyclesynth.segmentation.settings import UNetSettings
    from cyclesynth.segmentation.saved import load_starting_weights, save_model
    from cyclesynth.segmentation.training import train_unet

    device = _runtime(args)
    settings = UNetSettings.from_dict(args.settings)
    index = read_index(args.index)
    quality = read_quality(args.quality) if args.quality else None
    pseudo = read_table(args.pseudo_labels) if args.pseudo_labels else None
    init_state = load_starting_weights(args.init_model, settings) if args.init_model else None
    pairs = training_pairs(
        index, args.training_set, quality=quality, include_reference=args.include_reference,
        pseudo_labels=pseudo, include_synthetic=args.include_synthetic,
    )
    images = [read_rgb(p.image) for p in pairs]
    labels = [read_pseudo_label(p.label) if p.pseudo else read_binary(p.label) for p in pairs]
    fovs = [read_fov(p.fov, label.shape) for p, label in zip(pairs, labels)]
    log(
        f"U-Net '{args.experiment}' ({args.training_set}): {len(pairs)} training images, "
        f"{settings.epochs} epochs, augment {settings.augment}, device {device}"
        + (f", starting from {args.init_model}" if args.init_model else "")
    )
    result = train_unet(
        images, labels, fovs, settings, device=device, seed=derive_seed(args.seed, "unet", args.experiment),
        checkpoint_path=args.checkpoint, init_state=init_state, log=log,
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
    from cyclesynth.segmentation.saved import load_model, prediction_setup

    device = _runtime(args)
    model, settings = load_model(args.model, device)
    stride = _prediction_stride(args, settings.patch_size)
    precision, channels_last, reason = prediction_setup(model, settings, device)
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
            precision=precision, channels_last=channels_last,
        )
        write_probability(out / f"{row.id}_probability.png", probability)
        write_png(out / f"{row.id}.png", probability >= 0.5)
    log(f"predicted {len(scored)} labeled test and validation images into {out}")


def cmd_evaluate(args) -> None:
    from cyclesynth.data.datasets import read_index, scored_rows
    from cyclesynth.data.images import read_binary, read_probability
    from cyclesynth.evaluation.metrics import evaluate_probabilities

    index = read_index(args.index)
    rows = []
    for row in scored_rows(index, args.role).itertuples():
        probability = read_probability(Path(args.predictions_dir) / f"{row.id}_probability.png")
        truth = read_binary(row.label)
        fov = read_fov(row.fov, truth.shape)
        for result in evaluate_probabilities(probability, truth, scored_regions(fov), args.thresholds):
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
        fov = read_fov(row.fov, truth.shape)
        for result in evaluate_binary(second, truth, scored_regions(fov)):
            rows.append({"experiment": "human (2nd observer)", "image": row.id, **result})
    columns = ["experiment", "image", "region", "threshold_name", "threshold", "sensitivity", "specificity",
               "accuracy", "f1", "auc", "tp", "fp", "tn", "fn"]
    _write_table(pd.DataFrame(rows, columns=columns), args.out)
    log(f"second observer evaluated on {len(rows) // 2} test images")


def cmd_segment(args) -> None:
    from cyclesynth.segmentation.segment import segment_files

    device = _runtime(args)
    table = segment_files(
        args.model, args.images, args.out, names=args.names, threshold=args.threshold, stride=args.stride,
        tta=args.tta, device=device, progress=not args.no_progress, log=log,
    )
    log(f"wrote masks, probabilities and overlays of {len(table)} image(s) and segmentations.tsv to {args.out}")


def register(sub) -> None:
    """Add this stage's subcommands to ``sub`` (the parser's subparsers)."""
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
    p.add_argument("--init-model", default=None,
                   help="a saved U-Net (model.pt) to start from instead of a fresh initialisation, e.g. the teacher's")
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
