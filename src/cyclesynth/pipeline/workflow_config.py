"""What the Snakefile needs from the config: file plan, job lists, per-rule settings.

The Snakefile validates the config against ``workflow/schemas/config.schema.yaml`` and then asks this module
for everything else, so that the rules stay thin and every setting reaches them through
``params:``. :func:`check_config` adds the checks a JSON schema cannot express.
"""

from __future__ import annotations

import copy
import glob as globbing
import json
import re
import shlex
from pathlib import Path

import pandas as pd

from cyclesynth.data.datasets import (
    IMAGE_SUFFIXES,
    DatasetError,
    RoleSettings,
    assign_roles,
    check_complete,
    check_no_orphans,
    plan_drive,
    scored_tests,
    validation_ids,  # noqa: F401  (the rules ask this module for every job list)
)
from cyclesynth.data.samplesheet import samplesheet_index

PHANTOM_ROOT = "results/data/phantom"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
RESERVED_EXPERIMENT_NAMES = {"human", "summary", "table1", "frangi", "paired"}


class ConfigError(ValueError):
    """A config value is invalid in a way the schema cannot express."""


def run_experiments(default: dict | None, configfiles: list[dict], overrides: dict | None = None) -> dict:
    """The experiments of a run, from the workflow's default config, the ``--configfile``
    files (in order) and the ``--config`` values.

    An experiment that a config file defines replaces the default's experiment of that name
    as a whole: Snakemake merges config files key by key, which would hand a preset's
    experiment every setting of the demo's experiment of the same name that the preset does
    not repeat (its ``epochs``, say). Config files merge among themselves key by key, and
    ``--config`` values merge into the result key by key (``experiments={synthetic: {epochs:
    10}}`` changes one setting). An experiment set to null is removed.
    """

    from snakemake.utils import update_config  # the merge Snakemake applies to configs

    experiments = copy.deepcopy(default or {})
    from_files: dict = {}
    for values in configfiles:
        update_config(from_files, copy.deepcopy((values or {}).get("experiments") or {}))
    experiments.update(from_files)
    update_config(experiments, copy.deepcopy((overrides or {}).get("experiments") or {}))
    return {name: experiment for name, experiment in experiments.items() if experiment is not None}


def dataset_root(config: dict) -> str:
    dataset = config["dataset"]
    if dataset["source"] == "phantom":
        return PHANTOM_ROOT
    if dataset["source"] == "samplesheet":
        return samplesheet_path(config)
    if not dataset.get("root"):
        raise ConfigError(
            "config key dataset.root: required when dataset.source is 'drive'; set it on the command "
            "line, e.g. --config dataset='{root: /path/to/DRIVE}'"
        )
    return str(dataset["root"])


def samplesheet_path(config: dict) -> str:
    path = config["dataset"].get("samplesheet")
    if not path:
        raise ConfigError(
            "config key dataset.samplesheet: required when dataset.source is 'samplesheet'; set it on the "
            "command line, e.g. --config dataset='{source: samplesheet, samplesheet: my_images.tsv}' "
            "(`cyclesynth samplesheet` writes one from a folder)"
        )
    return str(path)


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


def ignore_preset_reference(config: dict, overrides: dict | None) -> str | None:
    """With a samplesheet, the sheet names the reference. A ``dataset.reference`` that only a
    config file set (the DRIVE presets' "21") is cleared in ``config`` and a note saying so is
    returned; one given with ``--config`` stays, and must agree with the sheet (checked when
    the sheet is read). Returns None when nothing was cleared."""
    dataset = config["dataset"]
    if dataset.get("source") != "samplesheet" or dataset.get("reference") is None:
        return None
    given = (overrides or {}).get("dataset")
    if isinstance(given, dict) and "reference" in given:
        return None
    cleared, dataset["reference"] = dataset["reference"], None
    return (
        f"dataset.reference '{cleared}' of a config file is not used: samplesheet "
        f"{dataset.get('samplesheet')} names the reference (its row with role 'reference')"
    )


def role_settings(config: dict) -> RoleSettings:
    dataset = config["dataset"]
    reference = dataset.get("reference")
    return RoleSettings(
        reference=None if reference is None else str(reference),
        include_test_as_unlabeled=bool(dataset["include_test_as_unlabeled"]),
        max_unlabeled=dataset.get("max_unlabeled"),
        validation=tuple(str(i) for i in dataset.get("validation") or ()),
    )


def validation_option(config: dict) -> str:
    """``--validation ID ...`` for prepare-dataset ('' without validation images)."""
    ids = role_settings(config).validation
    return ("--validation " + " ".join(map(shlex.quote, ids))) if ids else ""


def check_phantom_files(table: pd.DataFrame) -> None:
    """The phantom dataset is generated by the workflow, one job per image writing the image,
    its label(s) and FOV mask. Files of an image that exist only in part were deleted or
    damaged since: stop and name them rather than regenerate behind the user's back."""
    problems = []
    for row in table.itertuples():
        paths = [path for path in (row.image, row.label, row.fov, row.label2) if path]
        missing = [path for path in paths if not Path(path).exists()]
        if missing and len(missing) < len(paths):
            problems += [f"{path} is missing (its image {row.id} has the other files)" for path in missing]
    if problems:
        raise DatasetError(
            "phantom dataset is incomplete:\n  " + "\n  ".join(problems) + f"\nDelete {PHANTOM_ROOT} "
            "(or the other files of these images) to generate them again."
        )


def plan(config: dict, *, check_generated: bool = True) -> pd.DataFrame:
    """The dataset index as planned from file names (no image is read). Missing labels or FOV
    masks, labels or masks without their image, and partly deleted phantom images are reported
    here, before any job is planned. ``check_generated=False`` skips the phantom files' check:
    jobs that Snakemake runs in a process of their own (cluster jobs) parse the workflow again
    while other jobs may be generating those files."""
    source = config["dataset"]["source"]
    if source == "samplesheet":
        return samplesheet_index(samplesheet_path(config), role_settings(config))
    if source == "phantom":
        table = phantom_table(config)
        if check_generated:
            check_phantom_files(table)
    else:
        root = dataset_root(config)
        table = plan_drive(root)
        check_no_orphans(root)
    index = assign_roles(table, role_settings(config))
    check_complete(index)
    return index


def scored_ids(index: pd.DataFrame) -> list[str]:
    """Test images with a label: the images the experiments are scored on."""
    return scored_tests(index)["id"].tolist()


def segmented_ids(index: pd.DataFrame) -> list[str]:
    """Every image but the reference: unlabeled (used or not) and test images get a
    segmentation, labeled or not."""
    return index.loc[index["role"] != "reference", "id"].tolist()


def check_context_option(index: pd.DataFrame, image_id: str) -> str:
    """``--context '<samplesheet row>'`` for check-image (the row an image comes from, for its
    messages), or '' (DRIVE, phantom: no such row)."""
    context = str(index.set_index("id").loc[image_id, "origin"] or "") if "origin" in index.columns else ""
    return f"--context {shlex.quote(context)}" if context else ""


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


# --------------------------------------------------------------------------- self-training


def students(config: dict) -> dict[str, dict]:
    """The self-training experiments (training set ``pseudo_labels``), each with its
    ``pseudo_labels`` settings (teacher, band, include_synthetic), in config order."""
    return {
        name: dict(experiment.get("pseudo_labels") or {})
        for name, experiment in config["experiments"].items()
        if experiment["training_set"] == "pseudo_labels"
    }


def teachers(config: dict) -> list[str]:
    """The experiments whose U-Nets pseudo-label the unlabeled images (one pseudo_label job
    each), in the order their first student is listed."""
    return list(dict.fromkeys(str(settings["teacher"]) for settings in students(config).values()))


def teacher_band(config: dict, teacher: str) -> float:
    """The band of the pseudo-labels of ``teacher`` (its students agree on it, check_config)."""
    return float(next(s.get("band", 0.1) for s in students(config).values() if s["teacher"] == teacher))


def transductive(config: dict) -> bool:
    """Whether test images are pseudo-labeled (dataset.include_test_as_unlabeled with a
    self-training experiment)."""
    return bool(config["dataset"]["include_test_as_unlabeled"]) and bool(students(config))


def self_training_round(config: dict, name: str) -> int:
    """0 for an experiment trained on labels or syntheses, 1 + its teacher's round for a
    student (after check_config, which rules out cycles)."""
    rounds = 0
    while config["experiments"][name]["training_set"] == "pseudo_labels":
        name = str(config["experiments"][name]["pseudo_labels"]["teacher"])
        rounds += 1
    return rounds


def paired_order(config: dict, names: list[str]) -> list[str]:
    """``names`` in the paired comparison's order (each pair is a - b, a listed first): later
    self-training rounds first, so that a student comes before its teacher and the other
    experiments (``<student> - <teacher>``, ``<student> - reference_augmented``); otherwise
    as listed."""
    rounds = {n: self_training_round(config, n) if n in config["experiments"] else 0 for n in names}
    return sorted(names, key=lambda n: -rounds[n])


def _check_self_training(config: dict) -> None:
    experiments = config["experiments"]
    for name, experiment in experiments.items():
        key = f"config key experiments.{name}.pseudo_labels"
        if experiment["training_set"] != "pseudo_labels":
            if experiment.get("pseudo_labels") is not None:
                raise ConfigError(f"{key} only applies to the pseudo_labels training set")
            continue
        settings = experiment.get("pseudo_labels")
        if not isinstance(settings, dict) or not settings.get("teacher"):
            raise ConfigError(
                f"{key}: required for training_set pseudo_labels, e.g. pseudo_labels: {{teacher: reference_augmented, "
                "band: 0.1, include_synthetic: false}"
            )
        teacher = str(settings["teacher"])
        if teacher == "frangi":
            raise ConfigError(f"{key}.teacher: 'frangi' is the zero-label Frangi baseline, not a U-Net that can teach")
        if teacher not in experiments:
            raise ConfigError(
                f"{key}.teacher: '{teacher}' is not an experiment; experiments are {', '.join(experiments)}"
            )
        if experiments[teacher]["training_set"] == "all_labels":
            raise ConfigError(
                f"{key}.teacher: '{teacher}' trains on every label (all_labels); a teacher must see one label only"
            )
        band = settings.get("band", 0.1)
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 <= band < 0.5:
            raise ConfigError(f"{key}.band ({band!r}) must lie in [0, 0.5)")
        chain = [name]
        while experiments[chain[-1]]["training_set"] == "pseudo_labels":
            following = str((experiments[chain[-1]].get("pseudo_labels") or {}).get("teacher"))
            if following not in experiments:
                break  # reported for that experiment
            if following in chain:
                raise ConfigError(
                    f"{key}.teacher: the teachers form a cycle ({' -> '.join(chain + [following])}); "
                    "the first round needs a teacher trained without pseudo-labels"
                )
            chain.append(following)
    for teacher in teachers(config):
        bands = {n: float(s.get("band", 0.1)) for n, s in students(config).items() if s["teacher"] == teacher}
        if len(set(bands.values())) > 1:
            raise ConfigError(
                f"config keys experiments.<name>.pseudo_labels.band: the students of '{teacher}' share its "
                f"pseudo-labels (one pseudo_label job) but ask for different bands: "
                + ", ".join(f"{n} {b:g}" for n, b in bands.items())
            )


def new_images(config: dict) -> dict[str, str]:
    """The images of segmentation.new_images (a folder, or a glob), by output name (the file
    stem), in name order; empty when the key is not set."""
    where = config["segmentation"].get("new_images")
    if not where:
        return {}
    folder = Path(where)
    if folder.is_dir():
        paths = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        paths = [Path(p) for p in globbing.glob(str(where)) if Path(p).is_file()]
        if not paths and not any(ch in str(where) for ch in "*?["):
            raise ConfigError(f"config key segmentation.new_images: {where} does not exist")
    if not paths:
        raise ConfigError(
            f"config key segmentation.new_images: {where} holds no image ({', '.join(IMAGE_SUFFIXES)})"
        )
    images: dict[str, str] = {}
    for path in sorted(paths):
        name = path.stem
        if not SAFE_NAME.match(name):
            raise ConfigError(
                f"config key segmentation.new_images: {path}: file names may hold only letters, digits, "
                "'-', '_' and '.' before the extension (the outputs are named after them)"
            )
        if name in images:
            raise ConfigError(f"config key segmentation.new_images: {images[name]} and {path} have the same name '{name}'")
        images[name] = str(path)
    return images


def image_files(index: pd.DataFrame, image_id: str) -> dict[str, str]:
    """The image and annotation files of one image (inputs of its check job)."""
    row = index.set_index("id").loc[image_id]
    return {kind: row[kind] for kind in ("image", "label", "fov", "label2") if row[kind]}


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
    for key in ("epochs", "augment"):
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


def check_config(config: dict) -> None:
    """Cross-key checks the schema cannot express; raises :class:`ConfigError` naming the key."""
    patches = config["patches"]
    if patches["stride"] > patches["size"]:
        raise ConfigError(
            f"config key patches.stride ({patches['stride']}) exceeds patches.size ({patches['size']}): "
            "pixels between patches would never be seen"
        )
    synthesis_stride = config.get("synthesis", {}).get("stride")
    if synthesis_stride is not None and synthesis_stride > patches["size"]:
        raise ConfigError(
            f"config key synthesis.stride ({synthesis_stride}) exceeds patches.size "
            f"({patches['size']}): pixels between tiles would never be translated"
        )
    prediction_settings(config)
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
    geometric = config["unet"].get("geometric") or {}
    scale_min, scale_max = geometric.get("scale_min"), geometric.get("scale_max")
    if scale_min is not None and scale_max is not None and scale_min > scale_max:
        raise ConfigError(
            f"config key unet.geometric.scale_min ({scale_min}) exceeds unet.geometric.scale_max ({scale_max})"
        )
    schedules = {"cyclegan": cyclegan}
    if cyclegan["init"] == "pretrained":
        schedules.update({"cyclegan.pretrain": cyclegan["pretrain"], "cyclegan.finetune": cyclegan["finetune"]})
    for key, schedule in schedules.items():
        if schedule["epochs"] + schedule["epochs_decay"] < 1:
            raise ConfigError(f"config keys {key}.epochs + {key}.epochs_decay must be at least 1")
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
    _check_self_training(config)
    final = config.get("final_experiment")
    if final is not None and str(final) not in config["experiments"]:
        raise ConfigError(
            f"config key final_experiment: '{final}' is not an experiment; experiments are "
            f"{', '.join(config['experiments'])}"
        )
    for name in segmentation_experiments(config):
        if name not in config["experiments"]:
            raise ConfigError(
                f"config key segmentation.experiments: '{name}' is not an experiment; experiments are "
                f"{', '.join(config['experiments'])}"
            )
    dataset_root(config)
