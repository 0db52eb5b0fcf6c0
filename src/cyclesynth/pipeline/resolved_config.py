"""The config a workflow run works with, resolved outside Snakemake (for the scripts and tests).

:func:`resolve` repeats what a run does to its config: Snakemake loads config/config.yaml (the
Snakefile's ``configfile:``) and merges the ``--configfile`` files and ``--config`` values over
it key by key; workflow/rules/common.smk then takes the experiments from
:func:`workflow_config.run_experiments` (a preset's experiment replaces the demo's whole),
coerces and checks the config against the schema (:data:`config_validation.SCHEMA`), lets
Snakemake's ``validate`` fill in the schema's defaults, runs ``check_config`` and
``ignore_preset_reference``. tests/test_presets.py checks the result against the MD5 that
Snakemake prints of the config the workflow ended up with.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from cyclesynth.pipeline import config_validation, dataset_plan
from cyclesynth.pipeline import workflow_config as wc

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "config.yaml"  # the Snakefile's configfile:


def resolve(configfile: str | Path | None = None, config_args: list[str] | tuple[str, ...] = ()) -> dict:
    """The config of a run with ``--configfile configfile --config *config_args``; a relative
    ``configfile`` is taken from the checkout's root, as the README's commands give it."""
    from snakemake.cli import parse_config  # how Snakemake reads --config
    from snakemake.utils import update_config, validate

    overrides = parse_config(list(config_args))
    demo = yaml.safe_load(DEMO.read_text()) or {}
    files = []
    if configfile is not None:
        path = Path(configfile)
        files.append(yaml.safe_load((path if path.is_absolute() else ROOT / path).read_text()) or {})
    overwrite: dict = {}
    for values in files:
        update_config(overwrite, copy.deepcopy(values))
    update_config(overwrite, copy.deepcopy(overrides))
    config = copy.deepcopy(demo)
    update_config(config, overwrite)
    config["experiments"] = wc.run_experiments(demo.get("experiments"), files, overrides)
    schema = config_validation.SCHEMA
    config.update(config_validation.check_against_schema(config, yaml.safe_load(schema.read_text())))
    validate(config, schema=str(schema), set_default=True)
    wc.check_config(config)
    dataset_plan.ignore_preset_reference(config, overrides)
    return config
