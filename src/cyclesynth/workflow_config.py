"""What the Snakefile needs from the config: file plan, job lists, per-rule settings.

The Snakefile validates the config against ``config/schema.yaml`` and then asks this module
for everything else, so that the rules stay thin and every setting reaches them through
``params:``. :func:`check_config` adds the checks a JSON schema cannot express.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cyclesynth.datasets import RoleSettings, assign_roles, check_complete, plan_drive

PHANTOM_ROOT = "results/data/phantom"
RESERVED_EXPERIMENT_NAMES = {"human", "summary", "table1"}


class ConfigError(ValueError):
    """A config value is invalid in a way the schema cannot express."""


def dataset_root(config: dict) -> str:
    dataset = config["dataset"]
    if dataset["source"] == "phantom":
        return PHANTOM_ROOT
    if not dataset.get("root"):
        raise ConfigError(
            "config key dataset.root: required when dataset.source is 'drive'; set it on the command "
            "line, e.g. --config dataset='{root: /path/to/DRIVE}'"
        )
    return str(dataset["root"])


def phantom_table(config: dict) -> pd.DataFrame:
    """File names the phantom generator writes (DRIVE layout and naming)."""
    phantom, root = config["dataset"]["phantom"], Path(PHANTOM_ROOT)
    n_test, n_training = phantom["n_test"], phantom["n_training"]
    rows = []
    for split, ids in (("training", range(n_test + 1, n_test + n_training + 1)), ("test", range(1, n_test + 1))):
        for number in ids:
            image_id = f"{number:02d}"
            rows.append(
                {
                    "id": image_id,
                    "split": split,
                    "image": str(root / split / "images" / f"{image_id}_{split}.tif"),
                    "label": str(root / split / "1st_manual" / f"{image_id}_manual1.gif"),
                    "fov": str(root / split / "mask" / f"{image_id}_{split}_mask.gif"),
                    "label2": str(root / split / "2nd_manual" / f"{image_id}_manual2.gif") if split == "test" else "",
                }
            )
    return pd.DataFrame(rows)


def role_settings(config: dict) -> RoleSettings:
    dataset = config["dataset"]
    reference = dataset.get("reference")
    return RoleSettings(
        reference=None if reference is None else str(reference),
        include_test_as_unlabeled=bool(dataset["include_test_as_unlabeled"]),
        max_unlabeled=dataset.get("max_unlabeled"),
    )


def plan(config: dict) -> pd.DataFrame:
    """The dataset index as planned from file names (no image is read); a missing label or
    FOV mask is reported here, before any job is planned."""
    if config["dataset"]["source"] == "phantom":
        table = phantom_table(config)
    else:
        table = plan_drive(dataset_root(config))
    index = assign_roles(table, role_settings(config))
    check_complete(index)
    return index


def image_files(index: pd.DataFrame, image_id: str) -> dict[str, str]:
    """The image and annotation files of one image (inputs of its check job)."""
    row = index.set_index("id").loc[image_id]
    return {kind: row[kind] for kind in ("image", "label", "fov", "label2") if row[kind]}


def uses_synthetic(config: dict) -> bool:
    return any(e["training_set"] == "synthetic" for e in config["experiments"].values())


def cyclegan_settings(config: dict) -> dict:
    return dict(config["cyclegan"])


def unet_settings(config: dict, experiment: str) -> dict:
    """The shared U-Net settings with the experiment's overrides and the patch grid."""
    settings = dict(config["unet"])
    overrides = config["experiments"][experiment]
    for key in ("epochs", "augment"):
        if overrides.get(key) is not None:
            settings[key] = overrides[key]
    settings["patch_size"] = config["patches"]["size"]
    settings["patch_stride"] = config["patches"]["stride"]
    return settings


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
    return {name: e.get("label") or name for name, e in config["experiments"].items()}


def as_json(value) -> str:
    """Canonical JSON for ``params:`` (sorted keys: a rerun only when a value changes)."""
    return json.dumps(value, sort_keys=True)


def check_config(config: dict) -> None:
    """Cross-key checks the schema cannot express; raises :class:`ConfigError` naming the key."""
    patches = config["patches"]
    if patches["stride"] > patches["size"]:
        raise ConfigError(
            f"config key patches.stride ({patches['stride']}) exceeds patches.size ({patches['size']}): "
            "pixels between patches would never be seen"
        )
    divisor = 2 ** config["unet"]["depth"]
    if patches["size"] % divisor:
        raise ConfigError(
            f"config key patches.size ({patches['size']}) must be divisible by 2^unet.depth = {divisor} "
            "(the U-Net halves the patch unet.depth times)"
        )
    if patches["size"] % 4:
        raise ConfigError(
            f"config key patches.size ({patches['size']}) must be divisible by 4 "
            "(the CycleGAN generator downsamples twice)"
        )
    cyclegan = config["cyclegan"]
    if cyclegan["preprocess"] == "resize_crop" and cyclegan["crop_size"] > cyclegan["load_size"]:
        raise ConfigError(
            f"config key cyclegan.crop_size ({cyclegan['crop_size']}) exceeds cyclegan.load_size "
            f"({cyclegan['load_size']})"
        )
    if cyclegan["epochs"] + cyclegan["epochs_decay"] < 1:
        raise ConfigError("config keys cyclegan.epochs + cyclegan.epochs_decay must be at least 1")
    phantom = config["dataset"]["phantom"]
    if config["dataset"]["source"] == "phantom" and patches["size"] > min(phantom["height"], phantom["width"]):
        raise ConfigError(
            f"config key patches.size ({patches['size']}) is larger than the phantom images "
            f"({phantom['height']}x{phantom['width']})"
        )
    for name, experiment in config["experiments"].items():
        if name in RESERVED_EXPERIMENT_NAMES:
            raise ConfigError(f"config key experiments.{name}: the name '{name}' is reserved for report files")
        if experiment.get("include_reference") and experiment["training_set"] != "synthetic":
            raise ConfigError(
                f"config key experiments.{name}.include_reference only applies to the synthetic training set"
            )
    dataset_root(config)
