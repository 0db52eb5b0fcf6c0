import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from cyclesynth.pipeline import config_validation
from cyclesynth.pipeline import dataset_plan, rule_settings
from cyclesynth.pipeline import workflow_config as wc

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(config_validation.SCHEMA)


def load(path="config/config.yaml") -> dict:
    config = yaml.safe_load((ROOT / path).read_text())
    validate(config, SCHEMA, set_default=True)
    return config


def test_default_config_is_valid_and_plans_the_phantom():
    config = load()
    wc.check_config(config)
    index = dataset_plan.plan(config)
    assert index["role"].value_counts().to_dict() == {"unlabeled": 5, "test": 8, "reference": 1}
    assert index.loc[index["role"] == "reference", "id"].item() == "09"
    assert dataset_plan.image_files(index, "01") == {
        "image": "results/data/phantom/test/images/01_test.tif",
        "label": "results/data/phantom/test/1st_manual/01_manual1.gif",
        "fov": "results/data/phantom/test/mask/01_test_mask.gif",
        "label2": "results/data/phantom/test/2nd_manual/01_manual2.gif",
    }


def test_schema_fills_defaults_for_missing_sections():
    config = {"experiments": {"x": {"training_set": "reference_only"}}}
    validate(config, SCHEMA, set_default=True)
    assert config["cyclegan"]["ngf"] == 64 and config["cyclegan"]["n_blocks"] == 9
    assert config["unet"]["vessel_weight"] == 10.0 and config["patches"] == {"size": 64, "stride": 64}
    assert config["experiments"]["x"]["include_reference"] is False
    assert config["resources"]["train_cyclegan"]["threads"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cyclegan": {"ngff": 3}}, "ngff"),
        ({"unet": {"epochs": "many"}}, "many"),
        ({"unet": {"vessel_weight": -1}}, "-1"),
        ({"experiments": {"x": {"training_set": "everything"}}}, "everything"),
    ],
)
def test_schema_rejects_unknown_keys_types_and_ranges(change, message):
    config = copy.deepcopy(yaml.safe_load((ROOT / "config/config.yaml").read_text()))
    for section, values in change.items():
        config[section] = {**config[section], **values} if section != "experiments" else values
    with pytest.raises(Exception, match=message):
        validate(config, SCHEMA, set_default=True)


@pytest.mark.parametrize(
    "section, values, message",
    [
        ("patches", {"size": 64, "stride": 80}, r"patches.stride \(80\) exceeds patches.size"),
        ("patches", {"size": 36, "stride": 36}, r"patches.size \(36\) must be divisible by 2\^unet.depth = 8"),
        ("cyclegan", {"preprocess": "resize_crop", "crop_size": 300}, r"cyclegan.crop_size \(300\) exceeds"),
        ("dataset", {"source": "drive", "root": None}, r"dataset.root: required"),
        ("prediction", {"stride": 65}, r"config key prediction.stride 65: expected 'half' .* patch size 64"),
        ("prediction", {"stride": "quarter"}, r"config key prediction.stride 'quarter'"),
    ],
)
def test_cross_key_checks_name_the_key(section, values, message):
    config = load()
    config[section].update(values)
    with pytest.raises(wc.ConfigError, match=message):
        wc.check_config(config)


def test_whole_image_synthesis_needs_native_generators():
    config = load()
    config["synthesis"]["whole_image"] = True
    wc.check_config(config)  # the demo's generators are native
    config["cyclegan"]["preprocess"] = "resize_crop"
    with pytest.raises(wc.ConfigError, match=r"synthesis.whole_image needs cyclegan.preprocess native"):
        wc.check_config(config)


def test_unet_settings_merge_experiment_overrides_and_grid():
    config = load()
    config["experiments"]["reference_only"]["epochs"] = 77
    config["experiments"]["reference_only"]["augment"] = "photometric"
    config["experiments"]["reference_only"]["lr"] = 1e-4
    settings = rule_settings.unet_settings(config, "reference_only")
    assert settings["epochs"] == 77 and settings["augment"] == "photometric" and settings["lr"] == 1e-4
    assert rule_settings.unet_settings(config, "synthetic")["lr"] == config["unet"]["lr"]  # no lr: unet.lr
    assert settings["patch_size"] == 64 and settings["patch_stride"] == 64
    config["experiments"]["all_labels"]["epochs"] = None  # null: unet.epochs
    assert rule_settings.unet_settings(config, "all_labels")["epochs"] == config["unet"]["epochs"]
    # unet.geometric reaches only the experiments whose augment mode uses it
    assert "geometric" not in settings
    geometric = rule_settings.unet_settings(config, "reference_geometric")
    assert geometric["augment"] == "photometric_geometric"
    assert geometric["geometric"] == {"rotation": 180.0, "scale_min": 0.8, "scale_max": 1.25, "elastic_alpha": 2.0,
                                      "elastic_sigma": 10.0, "probability": 0.8}
    from cyclesynth.segmentation.settings import UNetSettings

    assert UNetSettings.from_dict(geometric).geometric.elastic_sigma == 10.0


def test_geometric_scale_range_is_checked_at_the_start():
    config = load()
    config["unet"]["geometric"].update(scale_min=1.5, scale_max=1.2)
    with pytest.raises(wc.ConfigError, match=r"unet.geometric.scale_min \(1.5\) exceeds unet.geometric.scale_max"):
        wc.check_config(config)


def test_thresholds_and_canonical_json():
    config = load()
    assert rule_settings.thresholds(config) == {"0.5": 0.5, "w/(1+w)": pytest.approx(10 / 11)}
    assert rule_settings.as_json({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert json.loads(rule_settings.as_json(rule_settings.cyclegan_settings(config)))["ngf"] == config["cyclegan"]["ngf"]


def config_keys_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("config_keys", ROOT / "scripts" / "config_keys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_doc_documents_every_config_key():
    config_keys = config_keys_script()
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [path for path, _, _ in config_keys.rows() if f"`{path}`" not in doc]
    assert not missing, f"docs/configuration.md lacks config keys {missing}"
    assert config_keys.replace_table(doc, config_keys.table()) == doc, (
        "docs/configuration.md's key table differs from the schema's: "
        "run python scripts/config_keys.py --write docs/configuration.md"
    )


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines: move detail into docs/"


def test_relative_links_in_the_docs_point_to_files():
    pages = [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
        text = re.sub(r"`[^`\n]*`", "", text)  # nor does inline code
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            path = target.split("#", 1)[0]  # anchors are not checked
            if not path or re.match(r"[a-z][a-z0-9+.-]*:", path):  # same page, or a URL
                continue
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, f"links to missing files: {broken}"


def test_partly_deleted_phantom_files_are_named(tmp_path, monkeypatch):
    from cyclesynth.data.datasets import DatasetError

    monkeypatch.chdir(tmp_path)
    config = load()
    dataset_plan.plan(config)  # nothing generated yet: fine
    files = dataset_plan.image_files(dataset_plan.plan(config), "10")
    for path in files.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"x")
    dataset_plan.plan(config)  # all files of the image: fine
    Path(files["label"]).unlink()
    with pytest.raises(DatasetError, match=r"results/data/phantom/training/1st_manual/10_manual1.gif is missing"):
        dataset_plan.plan(config)
    # a cluster job re-parsing the workflow while files are being generated does not check
    assert len(dataset_plan.plan(config, check_generated=False)) == 14  # the demo: 6 training + 8 test


def test_labels_without_their_image_stop_the_plan(tmp_path):
    from cyclesynth.data.datasets import DatasetError
    from cyclesynth.data.phantom.io import write_phantom_dataset

    write_phantom_dataset(tmp_path, n_training=3, n_test=1, height=64, width=64, seed=3)
    (tmp_path / "training/images/03_training.tif").unlink()
    config = load()
    config["dataset"].update(source="drive", root=str(tmp_path))
    with pytest.raises(DatasetError, match=r"labels or masks without their image[^\n]*\n  .*03_manual1.gif"):
        dataset_plan.plan(config)


def test_cyclegan_settings_per_stage_are_training_settings():
    from cyclesynth.synthesis.cyclegan import CycleGANSettings

    config = load("config/drive-cpu.yaml")
    config["cyclegan"]["init"] = "scratch"
    scratch = rule_settings.cyclegan_settings(config)
    assert not set(rule_settings.CYCLEGAN_STAGE_KEYS) & set(scratch)
    assert (scratch["epochs"], scratch["epochs_decay"], scratch.get("train_layers", "all")) == (30, 30, "all")
    CycleGANSettings.from_dict(scratch)  # every key is a training setting
    assert not rule_settings.pretrained(config)

    config["cyclegan"]["init"] = "pretrained"
    config["cyclegan"]["finetune"].update(layers="last", lr=0.0001)
    assert rule_settings.pretrained(config)
    tune = CycleGANSettings.from_dict(rule_settings.cyclegan_settings(config))
    assert (tune.epochs, tune.epochs_decay, tune.train_layers, tune.lr) == (4, 4, "last", 0.0001)
    pre = CycleGANSettings.from_dict(rule_settings.cyclegan_settings(config, "pretrain"))
    assert (pre.epochs, pre.epochs_decay, pre.train_layers, pre.lr) == (3, 3, "all", 0.0004)
    assert pre.ngf == tune.ngf == 16  # one architecture for both stages
    with pytest.raises(ValueError, match="stage"):
        rule_settings.cyclegan_settings(config, "other")

    config["experiments"] = {"r": {"training_set": "reference_only"}}
    assert not rule_settings.pretrained(config)  # no synthetic experiment: no CycleGAN at all


def test_pretrain_images_all_first_n_or_listed():
    config = load("config/drive-cpu.yaml")
    unlabeled = ["23", "22", "24", "25"]
    assert rule_settings.pretrain_images(config, unlabeled) == unlabeled
    config["cyclegan"]["pretrain"]["images"] = 2
    assert rule_settings.pretrain_images(config, unlabeled) == ["22", "23"]
    config["cyclegan"]["pretrain"]["images"] = ["25", "22"]
    assert rule_settings.pretrain_images(config, unlabeled) == ["25", "22"]
    config["cyclegan"]["pretrain"]["images"] = ["25", "40"]
    with pytest.raises(wc.ConfigError, match=r"cyclegan.pretrain.images: '40' not among the unlabeled images"):
        rule_settings.pretrain_images(config, unlabeled)


def test_pretrained_schedules_must_be_at_least_one_epoch():
    config = load("config/drive-cpu.yaml")
    config["dataset"]["root"] = "/data/DRIVE"
    config["cyclegan"]["init"] = "pretrained"
    config["cyclegan"]["finetune"].update(epochs=0, epochs_decay=0)
    with pytest.raises(wc.ConfigError, match=r"cyclegan.finetune.epochs \+ cyclegan.finetune.epochs_decay"):
        wc.check_config(config)


def test_an_experiment_of_a_configfile_replaces_the_defaults_whole():
    default = {"a": {"training_set": "synthetic", "epochs": 160}, "b": {"training_set": "reference_only"}}
    preset = {"experiments": {"a": {"training_set": "synthetic", "include_reference": False}}}
    experiments = wc.run_experiments(default, [preset], {})
    assert experiments["a"] == {"training_set": "synthetic", "include_reference": False}  # no epochs 160
    assert experiments["b"] == {"training_set": "reference_only"}  # untouched
    # config files merge among themselves, --config merges into the result, null removes
    second = {"experiments": {"a": {"epochs": 5}, "b": None}}
    experiments = wc.run_experiments(default, [preset, second], {"experiments": {"a": {"lr": 0.01}}})
    assert experiments == {"a": {"training_set": "synthetic", "include_reference": False, "epochs": 5, "lr": 0.01}}
    assert default["a"]["epochs"] == 160  # inputs are not changed
    assert wc.run_experiments(default, [], {"experiments": {"b": {"epochs": 9}}})["b"]["epochs"] == 9


@pytest.fixture(scope="module")
def drive_standin(tmp_path_factory) -> Path:
    """A tiny dataset in DRIVE's layout and numbering (test 01-20, training 21-40)."""
    from cyclesynth.data.phantom.io import write_phantom_dataset

    root = tmp_path_factory.mktemp("DRIVE")
    write_phantom_dataset(root, n_training=20, n_test=20, height=40, width=40, seed=1)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["drive.yaml", "drive-cpu.yaml", "drive-gpu.yaml"])
def test_presets_run_their_own_experiments_only(preset, tmp_path, drive_standin):
    """Through the snakemake command: the jobs' U-Net settings are the preset's, none of the
    demo's per-experiment epochs."""
    import subprocess

    dry = subprocess.run(
        ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-n", "-p",
         "--configfile", str(ROOT / "config" / preset), "--config", "dataset={root: " + str(drive_standin) + "}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    file_experiments = yaml.safe_load((ROOT / "config" / preset).read_text())["experiments"]
    unet_epochs = load(f"config/{preset}")["unet"]["epochs"]
    for name, experiment in file_experiments.items():
        command = next(line for line in dry.stdout.splitlines() if f"--experiment {name} " in line)
        settings = json.loads(re.search(r"--settings (\{.*?\})(?: --|$)", command.replace("'", "")).group(1))
        assert settings["epochs"] == experiment.get("epochs", unet_epochs), name


def test_prediction_settings_resolve_half_and_reach_the_rules_as_options():
    config = load()
    assert config["prediction"] == {"stride": "half", "tta": True}  # the demo's
    assert rule_settings.prediction_settings(config) == {"patch_size": 64, "stride": 32, "tta": True}
    assert rule_settings.prediction_options(config) == "--stride 32 --tta"
    config["prediction"] = {"stride": "64", "tta": False}  # text from --config; the training grid
    assert rule_settings.prediction_options(config) == "--stride 64 --no-tta"
    defaults = {"experiments": {"x": {"training_set": "reference_only"}}}
    validate(defaults, SCHEMA, set_default=True)
    assert defaults["prediction"] == {"stride": "half", "tta": True}
