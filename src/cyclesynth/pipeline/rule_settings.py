"""The settings each rule passes to its step through ``params:``: CycleGAN and U-Net training,
prediction, evaluation thresholds, labels, and which experiments segment.

Each function returns only what its rule's jobs depend on, so that Snakemake reruns exactly
the jobs a config change affects (:func:`as_json` makes the text canonical).
"""

from __future__ import annotations

import json

from cyclesynth.errors import ConfigError


def segmentation_experiments(config: dict) -> list[str]:
    """The experiments whose U-Nets segment every image: segmentation.experiments; by default
    ``[final_experiment]``; where that is null too, ``synthetic`` where the config has it,
    else every experiment."""
    chosen = config["segmentation"].get("experiments")
    if chosen is None:
        if config.get("final_experiment") is not None:
            return [str(config["final_experiment"])]
        return ["synthetic"] if "synthetic" in config["experiments"] else list(config["experiments"])
    return [str(name) for name in chosen]


def segmentation_source(config: dict) -> str:
    """Which key chose the segmenting experiments (for table1.md): ``segmentation.experiments``,
    ``final_experiment``, or ``default`` (neither set)."""
    if config["segmentation"].get("experiments") is not None:
        return "segmentation.experiments"
    return "final_experiment" if config.get("final_experiment") is not None else "default"


def uses_synthetic(config: dict) -> bool:
    """Whether an experiment trains on the synthetic images (synthetic, or a pseudo_labels
    student with include_synthetic)."""
    return any(
        e["training_set"] == "synthetic"
        or (e["training_set"] == "pseudo_labels" and (e.get("pseudo_labels") or {}).get("include_synthetic"))
        for e in config["experiments"].values()
    )


CYCLEGAN_STAGE_KEYS = ("init", "pretrain", "finetune")  # workflow keys, not training settings


def cyclegan_settings(config: dict, stage: str = "per_image") -> dict:
    """Training settings of a CycleGAN job. ``stage`` ``per_image`` is a train_cyclegan job
    (from scratch, or fine-tuning when cyclegan.init is pretrained); ``pretrain`` the
    pretrain_cyclegan job. The schedule (and fine-tuning's lr and layers) come from
    cyclegan.pretrain / cyclegan.finetune; everything else is shared."""
    cyclegan = config["cyclegan"]
    settings = {k: v for k, v in cyclegan.items() if k not in CYCLEGAN_STAGE_KEYS}
    if stage == "pretrain":
        settings["epochs"] = cyclegan["pretrain"]["epochs"]
        settings["epochs_decay"] = cyclegan["pretrain"]["epochs_decay"]
    elif stage == "per_image":
        if cyclegan["init"] == "pretrained":
            finetune = cyclegan["finetune"]
            settings["epochs"] = finetune["epochs"]
            settings["epochs_decay"] = finetune["epochs_decay"]
            settings["train_layers"] = finetune["layers"]
            if finetune.get("lr") is not None:
                settings["lr"] = finetune["lr"]
    else:
        raise ValueError(f"unknown CycleGAN stage {stage!r}")
    return settings


def pretrained(config: dict) -> bool:
    return uses_synthetic(config) and config["cyclegan"]["init"] == "pretrained"


def pretrain_images(config: dict, unlabeled: list[str]) -> list[str]:
    """The unlabeled images whose patches the pretrain_cyclegan job pools."""
    chosen = config["cyclegan"]["pretrain"]["images"]
    if chosen is None:
        return list(unlabeled)
    if isinstance(chosen, int):
        return sorted(unlabeled)[:chosen]
    unknown = [image for image in chosen if image not in unlabeled]
    if unknown:
        raise ConfigError(
            f"config key cyclegan.pretrain.images: {', '.join(map(repr, unknown))} not among the unlabeled "
            f"images ({', '.join(unlabeled)})"
        )
    return [str(image) for image in chosen]


# Augment modes that use unet.geometric (as cyclesynth.segmentation.augmentation.GEOMETRIC_MODES; this
# module does not import torch).
GEOMETRIC_AUGMENT_MODES = ("geometric", "photometric_geometric")


def unet_settings(config: dict, experiment: str) -> dict:
    """The shared U-Net settings with the experiment's overrides and the patch grid.

    ``geometric`` is passed only to experiments whose augment mode uses it, so that changing
    unet.geometric retrains those and leaves the others' ``params:`` (and results) as they are."""
    settings = dict(config["unet"])
    overrides = config["experiments"][experiment]
    for key in ("epochs", "augment", "lr"):
        if overrides.get(key) is not None:
            settings[key] = overrides[key]
    if settings.get("augment") not in GEOMETRIC_AUGMENT_MODES:
        settings.pop("geometric", None)
    settings["patch_size"] = config["patches"]["size"]
    settings["patch_stride"] = config["patches"]["stride"]
    return settings


def prediction_settings(config: dict) -> dict:
    """How the U-Nets predict whole images (rules predict, segment, segment_new and the report):
    ``patch_size`` (patches.size), ``stride`` in pixels (prediction.stride, ``half`` =
    patches.size // 2) and ``tta``. Raises :class:`ConfigError` naming prediction.stride when it
    is not ``half`` or an integer from 1 to patches.size."""
    from cyclesynth.segmentation.inference import resolve_stride  # torch-free until a prediction runs

    prediction, size = config["prediction"], config["patches"]["size"]
    try:
        stride = resolve_stride(prediction["stride"], size, key="config key prediction.stride")
    except ValueError as err:
        raise ConfigError(f"{err} (patches.size)") from None
    return {"patch_size": size, "stride": stride, "tta": bool(prediction["tta"])}


def prediction_options(config: dict) -> str:
    """``--stride N --tta`` (or ``--no-tta``) for predict and segment."""
    settings = prediction_settings(config)
    return f"--stride {settings['stride']} {'--tta' if settings['tta'] else '--no-tta'}"


def thresholds(config: dict) -> dict[str, float]:
    """Named probability thresholds for evaluation."""
    weight = float(config["unet"]["vessel_weight"])
    result = {}
    for name in config["evaluation"]["thresholds"]:
        if name == "weight_corrected":
            result["w/(1+w)"] = weight / (1.0 + weight)
        else:
            result[name] = float(name)
    return result


def experiment_labels(config: dict) -> dict[str, str]:
    labels = {name: e.get("label") or name for name, e in config["experiments"].items()}
    if config.get("frangi", {}).get("enabled"):
        labels["frangi"] = config["frangi"]["label"]
    return labels


def as_json(value) -> str:
    """Canonical JSON for ``params:`` (sorted keys: a rerun only when a value changes)."""
    return json.dumps(value, sort_keys=True)
