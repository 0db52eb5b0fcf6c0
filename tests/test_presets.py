"""The presets (config/*.yaml, tests/data/tiny.yaml) resolve to the configs they resolved to
before they were cut down to what departs from their defaults.

``resolve`` (cyclesynth.pipeline.resolved_config) repeats what a run does to its config.
tests/data/resolved_presets/*.json hold the resolved configs of the presets as they were at
6d05518, rewritten since where the presets were meant to change (bf19def: one thread per job
in the CPU presets, drive-cpu's self-training teacher; then the key synthesis.whole_image;
then drive-cpu's whole-image synthesis, reference_geometric_long and no second round;
then reference_geometric_long at 3200 epochs; then the key pseudo_labels.init, its default
scratch in every student but tiny's self_trained, which starts from its teacher; then the
key experiments.<name>.lr, null in every experiment; then drive-cpu's self_trained from its
teacher, 10 epochs; then drive-cpu's final_experiment self_trained, chosen on validation
images 37-40)
(``python tests/test_presets.py`` writes them; run it only where the presets' resolved
configs are meant to change). ``test_resolve_is_the_workflows_resolution`` checks ``resolve``
against the MD5 that Snakemake prints of the config the workflow ended up with.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake.utils import validate

from cyclesynth.pipeline import config_validation
from cyclesynth.pipeline.resolved_config import resolve

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = config_validation.SCHEMA
FIXTURES = Path(__file__).resolve().parent / "data" / "resolved_presets"
# the DRIVE presets need a root (check_config asks for one); the folder is not read
DRIVE_ROOT = ["dataset={root: /path/to/DRIVE}"]
# name -> the --configfile (None: the demo, no --configfile) and --config of a run
PRESETS = {
    "demo": (None, []),
    "config": ("config/config.yaml", []),
    "drive": ("config/drive.yaml", DRIVE_ROOT),
    "drive-cpu": ("config/drive-cpu.yaml", DRIVE_ROOT),
    "drive-gpu": ("config/drive-gpu.yaml", DRIVE_ROOT),
    "drive-cpu-scratch": ("config/drive-cpu.yaml", [*DRIVE_ROOT, "cyclegan={init: scratch}"]),
    "tiny": ("tests/data/tiny.yaml", []),
}
# resources keys added after 6d05518: before, the U-Net rules predict, segment and
# pseudo_label took train_unet's threads, mem_mb and gpu and the default runtime
ADDED_RESOURCES = ("predict", "segment", "pseudo_label")


def canonical(config: dict) -> dict:
    return json.loads(json.dumps(config, sort_keys=True))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_resolves_as_before(name):
    assert canonical(resolve(*PRESETS[name])) == fixture(name)


def test_unet_prediction_rules_default_to_what_they_got_before():
    """Without a preset's resources (the schema's defaults), predict, segment and pseudo_label
    get what train_unet's defaults gave them."""
    config = {"experiments": {"x": {"training_set": "reference_only"}}}
    validate(config, schema=str(SCHEMA), set_default=True)
    resources = config["resources"]
    for rule in ADDED_RESOURCES:
        assert resources[rule] == {**resources["train_unet"], "runtime": resources["default"]["runtime"]}


def snakemake_config_md5(configfile: str | None, config_args: list[str]) -> str:
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(ROOT), "--quiet", "rules"]
    if configfile:
        command += ["--configfile", str(ROOT / configfile)]
    if config_args:
        command += ["--config", *config_args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    match = re.search(r"Config MD5: (\w+)", result.stdout + result.stderr)
    assert match, (result.stdout + result.stderr)[-3000:]
    return match.group(1)


@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_resolve_is_the_workflows_resolution(name):
    """Snakemake prints the MD5 of the config as the Snakefile left it (json.dumps with sorted
    keys): ``resolve`` gives the same config. (The DRIVE presets plan their images, so a dry
    run of them needs the dataset.)"""
    expected = hashlib.md5(json.dumps(resolve(*PRESETS[name]), sort_keys=True).encode()).hexdigest()
    assert snakemake_config_md5(*PRESETS[name]) == expected


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for preset_name, spec in PRESETS.items():
        (FIXTURES / f"{preset_name}.json").write_text(json.dumps(canonical(resolve(*spec)), indent=1, sort_keys=True) + "\n")
        print("wrote", FIXTURES / f"{preset_name}.json")
