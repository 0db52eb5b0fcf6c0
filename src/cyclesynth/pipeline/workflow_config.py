"""What the Snakefile needs from the config, in one call each: the experiments of a run and the
checks of the keys across sections.

The Snakefile validates the config against ``workflow/schemas/config.schema.yaml``, merges the
experiments with :func:`run_experiments`, and calls :func:`check_config` for what a JSON schema
cannot express. The rest comes from :mod:`~cyclesynth.pipeline.dataset_plan` (the files and
job lists), :mod:`~cyclesynth.pipeline.self_training_plan` (students and teachers) and
:mod:`~cyclesynth.pipeline.rule_settings` (each rule's ``params:``), so that the rules stay thin.
"""

from __future__ import annotations

import copy

from cyclesynth.errors import ConfigError
from cyclesynth.pipeline.dataset_plan import dataset_root
from cyclesynth.pipeline.rule_settings import prediction_settings, segmentation_experiments
from cyclesynth.pipeline.self_training_plan import check_self_training

__all__ = ["ConfigError", "check_config", "run_experiments"]


RESERVED_EXPERIMENT_NAMES = {"human", "summary", "table1", "frangi", "paired"}


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
    if config.get("synthesis", {}).get("whole_image") and config["cyclegan"]["preprocess"] != "native":
        raise ConfigError(
            "config key synthesis.whole_image needs cyclegan.preprocess native (it is "
            f"{config['cyclegan']['preprocess']!r}): a resize_crop generator works at crop_size, "
            "not at the image's scale"
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
    check_self_training(config)
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
