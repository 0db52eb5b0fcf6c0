"""The synthesis stage's subcommands: ``pretrain-cyclegan``, ``train-cyclegan``, ``synthesize`` and
``filter-synthetic`` (the rules of ``workflow/rules/synthesis.smk``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cyclesynth.data.images import read_fov
from cyclesynth.pipeline.cli.common import _json, _runtime, _write_table, log, patch_args, runtime_args


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
        whole_image=args.whole_image,
    )
    write_png(args.out, image)
    log(f"wrote {args.out}")


def cmd_filter_synthetic(args) -> None:
    from cyclesynth.data.images import read_rgb
    from cyclesynth.synthesis.quality_filter import judge

    reference_image = read_rgb(args.reference)
    fov = read_fov(args.fov, reference_image.shape[:2])
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


def register(sub) -> None:
    """Add this stage's subcommands to ``sub`` (the parser's subparsers)."""
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
    p.add_argument("--whole-image", action="store_true", help="translate the reference in one pass, not tile by tile")
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
