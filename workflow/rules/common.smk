import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

import yaml

from cyclesynth.data import naming
from cyclesynth.pipeline import (
    config_validation,
    dataset_plan,
    rule_settings,
    self_training_plan,
)
from cyclesynth.pipeline import workflow_config as wc

# An experiment of a --configfile replaces the default's of that name whole (Snakemake's merge
# would add the demo's settings the preset leaves out); null removes it; --config merges.
with open(Path(workflow.basedir) / "config" / "config.yaml") as default_file:
    DEFAULT_EXPERIMENTS = (yaml.safe_load(default_file) or {}).get("experiments")
CONFIGFILES = []
for configfile_path in workflow.config_settings.configfiles:
    with open(configfile_path) as overlay_file:
        CONFIGFILES.append(yaml.safe_load(overlay_file) or {})
config["experiments"] = wc.run_experiments(
    DEFAULT_EXPERIMENTS, CONFIGFILES, dict(workflow.config_settings.config)
)
# Every schema violation with the key it concerns (and text from --config turned into the
# numbers and booleans the schema asks for), then Snakemake's validate fills in defaults.
with open(config_validation.SCHEMA) as schema_file:
    config.update(
        config_validation.check_against_schema(config, yaml.safe_load(schema_file))
    )
validate(config, schema=str(config_validation.SCHEMA), set_default=True)
wc.check_config(config)

# A samplesheet names its reference: a preset's dataset.reference (DRIVE's "21") gives way to
# it, one given with --config must agree with it.
REFERENCE_NOTE = dataset_plan.ignore_preset_reference(
    config, dict(workflow.config_settings.config)
)
# Only the main process checks the generated phantom files: a cluster job parses the workflow
# again while other jobs may be writing them.
INDEX = dataset_plan.plan(config, check_generated=workflow.is_main_process)
UNLABELED = INDEX.loc[INDEX["unlabeled"], "id"].tolist()
# Test images with a label are scored; every image but the reference is segmented.
TESTS = dataset_plan.scored_ids(INDEX)
# Labeled training images held out of everything and scored apart (dataset.validation).
VALIDATION = dataset_plan.validation_ids(INDEX)
SEGMENTED = dataset_plan.segmented_ids(INDEX)
EXPERIMENTS = list(config["experiments"])
SEGMENTATION_EXPERIMENTS = rule_settings.segmentation_experiments(config)
# Self-training: the students (training set pseudo_labels) and the teachers whose U-Nets
# pseudo-label the unlabeled images (one pseudo_label job each).
STUDENTS = self_training_plan.students(config)
TEACHERS = self_training_plan.teachers(config)
NEW_IMAGES = dataset_plan.new_images(config)
PATCH_SIZE = config["patches"]["size"]
PATCH_STRIDE = config["patches"]["stride"]

# Runs the package from this checkout (with or without `pip install -e .`, inside or outside
# the conda environment of envs/cyclesynth.yaml).
# The conda environment of every rule; Snakemake resolves the path relative to the rule's
# file (all of them in workflow/rules/), whether written there or given through this name.
CONDA_ENV = "../../envs/cyclesynth.yaml"
CYCLESYNTH = f"PYTHONPATH='{SRC}'${{PYTHONPATH:+:$PYTHONPATH}} python -m cyclesynth"


REFERENCE = INDEX.loc[INDEX["role"] == "reference"].iloc[0]
if REFERENCE_NOTE and workflow.is_main_process:
    logger.info(f"cyclesynth: reference {REFERENCE['id']}; {REFERENCE_NOTE}")
PRETRAINED = "results/cyclegan/pretrained/networks.pt"
PRETRAIN_IMAGES = (
    rule_settings.pretrain_images(config, UNLABELED)
    if rule_settings.pretrained(config)
    else []
)


wildcard_constraints:
    id="[A-Za-z0-9_-]+",
    image="|".join(UNLABELED) or "NO_UNLABELED_IMAGE",
    experiment="|".join(EXPERIMENTS),
    teacher="|".join(TEACHERS) or "NO_TEACHER",


def resource(rule_name, key):
    """A resource of a rule from config['resources'] (falling back to 'default')."""
    return config["resources"].get(rule_name, config["resources"]["default"])[key]


def final_outputs():
    """Rule all's targets: the report (tables, front page, figures) and new images' segmentations."""
    return [*rules.report.output, *new_segmentation_outputs()]


def segmentation_outputs(experiment, kind):
    """One kind (mask, probability, overlay) of an experiment's segmentations."""
    return [f"results/segmentations/{experiment}/{i}_{kind}.png" for i in SEGMENTED]


def new_segmentation_outputs():
    if not NEW_IMAGES:
        return []
    return expand(
        "results/new_segmentations/{experiment}/segmentations.tsv",
        experiment=SEGMENTATION_EXPERIMENTS,
    )


def reference_fov(wildcards):
    """The reference's FOV mask, where it has one (a samplesheet's may not)."""
    return {"fov": REFERENCE["fov"]} if REFERENCE["fov"] else {}


def reference_fov_option(wildcards, input):
    return f"--fov {shlex.quote(input.fov)}" if "fov" in input.keys() else ""


def cyclegan_init(wildcards):
    """The pretrained networks a per-image CycleGAN fine-tunes (none from scratch)."""
    return [PRETRAINED] if rule_settings.pretrained(config) else []


def cyclegan_init_option(wildcards, input):
    return f"--init {input.init}" if input.init else ""


def pseudo_label_table(teacher):
    return f"results/pseudo_labels/{teacher}/pseudo_labels.tsv"


def trains_on_synthetic(experiment):
    """Whether an experiment's U-Net sees the kept synthetic images."""
    settings = config["experiments"][experiment]
    if settings["training_set"] == "pseudo_labels":
        return bool(STUDENTS[experiment].get("include_synthetic"))
    return settings["training_set"] == "synthetic"


def teacher_model(student):
    """The trained U-Net of a student's teacher (its starting weights with init: teacher)."""
    return f"results/unet/{STUDENTS[student]['teacher']}/model.pt"


def unet_training_inputs(wildcards):
    inputs = {"index": "results/data/index.tsv"}
    if trains_on_synthetic(wildcards.experiment):
        inputs["quality"] = "results/synthetic/quality.tsv"
        inputs["synthetic"] = expand("results/synthetic/{image}.png", image=UNLABELED)
    if wildcards.experiment in STUDENTS:
        inputs["pseudo_labels"] = pseudo_label_table(
            STUDENTS[wildcards.experiment]["teacher"]
        )
        if self_training_plan.starts_from_teacher(config, wildcards.experiment):
            inputs["init_model"] = teacher_model(wildcards.experiment)
    return inputs


def unet_training_options(wildcards):
    experiment = config["experiments"][wildcards.experiment]
    options = f"--training-set {experiment['training_set']}"
    if trains_on_synthetic(wildcards.experiment):
        options += " --quality results/synthetic/quality.tsv"
    if experiment.get("include_reference"):
        options += " --include-reference"
    if wildcards.experiment in STUDENTS:
        options += f" --pseudo-labels {pseudo_label_table(STUDENTS[wildcards.experiment]['teacher'])}"
        if STUDENTS[wildcards.experiment].get("include_synthetic"):
            options += " --include-synthetic"
        if self_training_plan.starts_from_teacher(config, wildcards.experiment):
            options += f" --init-model {teacher_model(wildcards.experiment)}"
    return options


def report_inputs(wildcards):
    inputs = {
        "index": "results/data/index.tsv",
        "unet_history": expand(
            "results/unet/{experiment}/history.tsv", experiment=EXPERIMENTS
        ),
        "segmentations": expand(
            "results/segmentations/{experiment}/segmentations.tsv",
            experiment=SEGMENTATION_EXPERIMENTS,
        ),
    }
    if TESTS:
        inputs["human"] = "results/metrics/human.tsv"
        inputs["metrics"] = expand(
            "results/metrics/{experiment}.tsv", experiment=EXPERIMENTS
        )
        inputs["predictions"] = expand(
            "results/predictions/{experiment}/{test}.png",
            experiment=EXPERIMENTS,
            test=TESTS,
        )
        if config["frangi"]["enabled"]:
            inputs["frangi"] = "results/metrics/frangi.tsv"
        inputs["paired"] = "results/metrics/paired.tsv"
    if rule_settings.uses_synthetic(config):
        inputs["quality"] = "results/synthetic/quality.tsv"
        inputs["cyclegan_history"] = expand(
            "results/cyclegan/{image}/history.tsv", image=UNLABELED
        )
    if rule_settings.pretrained(config):
        inputs["pretrain_history"] = "results/cyclegan/pretrained/history.tsv"
    if TEACHERS:
        inputs["pseudo_labels"] = [pseudo_label_table(t) for t in TEACHERS]
    if VALIDATION:
        inputs["validation_metrics"] = expand(
            "results/validation/metrics/{experiment}.tsv", experiment=EXPERIMENTS
        )
        if len(VALIDATION_PAIRED) > 1:
            inputs["validation_paired"] = "results/validation/metrics/paired.tsv"
    return inputs


def report_options(wildcards, input):
    unet = " ".join(f"{e}={p}" for e, p in zip(EXPERIMENTS, input.unet_history))
    segmentations = " ".join(
        f"{e}={p}" for e, p in zip(SEGMENTATION_EXPERIMENTS, input.segmentations)
    )
    options = f"--unet-history {unet} --segmentations {segmentations}"
    if TESTS:
        metrics = " ".join(f"{e}={p}" for e, p in zip(EXPERIMENTS, input.metrics))
        if config["frangi"]["enabled"]:
            metrics += f" frangi={input.frangi}"
        options += f" --metrics {metrics} --human {input.human} --paired {input.paired}"
    if rule_settings.uses_synthetic(config):
        cyclegan = " ".join(
            f"{i}={p}" for i, p in zip(UNLABELED, input.cyclegan_history)
        )
        options += f" --quality {input.quality} --cyclegan-history {cyclegan}"
    if rule_settings.pretrained(config):
        options += f" --pretrain-history {input.pretrain_history}"
    if TEACHERS:
        tables = " ".join(f"{t}={p}" for t, p in zip(TEACHERS, input.pseudo_labels))
        options += f" --pseudo-labels {tables}"
    if VALIDATION:
        metrics = " ".join(
            f"{e}={p}" for e, p in zip(EXPERIMENTS, input.validation_metrics)
        )
        options += f" --validation-metrics {metrics}"
        if len(VALIDATION_PAIRED) > 1:
            options += f" --validation-paired {input.validation_paired}"
    return options
