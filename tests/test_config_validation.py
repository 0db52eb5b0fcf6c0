"""Schema validation with messages that name the key; command-line text coerced."""

from pathlib import Path

import pytest
import yaml

from cyclesynth.pipeline import config_validation
from cyclesynth.pipeline.config_validation import (
    ConfigValidationError,
    check_against_schema,
    coerce_text_values,
    schema_errors,
)

SCHEMA = yaml.safe_load(config_validation.SCHEMA.read_text())
DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "drive.yaml", "drive-cpu.yaml", "drive-gpu.yaml"])
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / name).read_text())
    assert schema_errors(config, SCHEMA) == []


def test_text_from_the_command_line_becomes_numbers_booleans_and_null():
    text = {
        "seed": "3",
        "unet": {"lr": "0.003", "epochs": "4", "batch_norm": "false", "vessel_weight": "10"},
        "dataset": {"root": "/data/1", "max_unlabeled": "null", "reference": "21"},
        "experiments": {"x": {"training_set": "synthetic", "include_reference": "True", "epochs": "7"}},
        "resources": {"train_unet": {"threads": "2"}},
        "evaluation": {"thresholds": ["0.5", "weight_corrected"]},
    }
    out = coerce_text_values(text, SCHEMA)
    assert out["seed"] == 3
    assert out["unet"] == {"lr": 0.003, "epochs": 4, "batch_norm": False, "vessel_weight": 10}
    # strings stay strings where the schema allows them (paths, ids, thresholds)
    assert out["dataset"] == {"root": "/data/1", "max_unlabeled": None, "reference": "21"}
    assert out["experiments"]["x"] == {"training_set": "synthetic", "include_reference": True, "epochs": 7}
    assert out["resources"]["train_unet"]["threads"] == 2
    assert out["evaluation"]["thresholds"] == ["0.5", "weight_corrected"]
    assert coerce_text_values({"unet": {"epochs": "many"}}, SCHEMA) == {"unet": {"epochs": "many"}}


@pytest.mark.parametrize("text", ["null", "~", "Null", "NULL"])
def test_null_and_tilde_clear_keys_that_may_be_text(text):
    """A key that may be text or null (dataset.reference, dataset.root) is None for null and
    ~ given on the command line; "None" stays a name where text is allowed."""
    out = coerce_text_values({"dataset": {"reference": text, "root": text, "max_unlabeled": text}}, SCHEMA)
    assert out["dataset"] == {"reference": None, "root": None, "max_unlabeled": None}
    assert coerce_text_values({"dataset": {"reference": "None"}}, SCHEMA)["dataset"]["reference"] == "None"
    assert coerce_text_values({"dataset": {"reference": "nullable"}}, SCHEMA)["dataset"]["reference"] == "nullable"


def test_every_violation_is_listed_with_its_key():
    config = {**DEMO, "unet": {**DEMO["unet"], "lr": -1, "epochs": "many", "speed": 3}}
    problems = schema_errors(config, SCHEMA)
    assert "config key unet: unknown key(s) 'speed'; known keys: augment, base_channels" in problems[0]
    assert any(p.startswith("config key unet.epochs: 'many' is not of type integer (expected: Epochs") for p in problems)
    assert any(p.startswith("config key unet.lr: -1 is less than or equal to the minimum of 0") for p in problems)
    assert len(problems) == 3


def test_top_level_unknown_key_and_enum():
    problems = schema_errors({"sed": 1, "dataset": {"source": "kaggle"}}, SCHEMA)
    assert "config: unknown key(s) 'sed'; known keys:" in problems[-1] or any("unknown key(s) 'sed'" in p for p in problems)
    assert "config key dataset.source: 'kaggle' is not one of 'phantom', 'drive', 'samplesheet'" in problems


def test_check_against_schema_raises_with_all_messages():
    with pytest.raises(ConfigValidationError, match=r"invalid config:\n  config key patches.size: 4 is less than"):
        check_against_schema({"patches": {"size": 4}}, SCHEMA)
    assert check_against_schema({"unet": {"lr": "1e-3"}}, SCHEMA) == {"unet": {"lr": 0.001}}


def test_retired_amp_key_names_its_replacement():
    config = {**DEMO, "cyclegan": {**DEMO["cyclegan"], "amp": True, "bogus": 1}}
    with pytest.raises(ConfigValidationError) as raised:
        check_against_schema(config, SCHEMA)
    lines = str(raised.value).splitlines()[1:]
    assert lines[0].strip() == (
        "config key cyclegan.amp: no longer exists; it was replaced by cyclegan.precision (amp: true -> "
        "precision: float16, float16 autocast with a gradient scaler; amp: false -> precision: float32)"
    )
    # other problems are still listed, and amp is not called an unknown key besides
    assert "config key cyclegan: unknown key(s) 'bogus'; known keys:" in lines[1]
    assert len(lines) == 2
    assert config["cyclegan"]["amp"] is True  # the caller's config is left as it was
    # from the command line (text) too
    with pytest.raises(ConfigValidationError, match="config key cyclegan.amp: no longer exists"):
        check_against_schema({"cyclegan": {"amp": "false"}}, SCHEMA)


def test_precision_and_compile_keys():
    for key in ("cyclegan", "unet"):
        assert check_against_schema({key: {"precision": "bfloat16", "compile": "reduce-overhead"}}, SCHEMA)
        problems = schema_errors({key: {"precision": "half"}}, SCHEMA)
        assert problems == [
            f"config key {key}.precision: 'half' is not one of 'auto', 'float32', 'tf32', 'bfloat16', 'float16'"
        ]
    for value in ("auto", True, False):
        assert check_against_schema({"unet": {"channels_last": value}}, SCHEMA)
    assert schema_errors({"unet": {"channels_last": "yes"}}, SCHEMA)
    # from the command line (--config unet='{channels_last: false}') the values come as text
    for text, value in (("auto", "auto"), ("false", False), ("True", True)):
        assert check_against_schema({"unet": {"channels_last": text}}, SCHEMA)["unet"]["channels_last"] == value


def test_prediction_keys():
    """prediction.stride: half or a positive integer (text from the command line stays text
    for the workflow to read); prediction.tta: a boolean. Each wrong value names the key."""
    for stride in (32, "half", "32"):
        assert check_against_schema({"prediction": {"stride": stride, "tta": "false"}}, SCHEMA) == {
            "prediction": {"stride": stride, "tta": False}
        }
    for stride, message in ((0, "0 is less than the minimum of 1"), ("quarter", "'quarter' does not match"),
                            ("-4", "'-4' does not match"), (2.5, "2.5 is not of type integer or string")):
        problems = schema_errors({"prediction": {"stride": stride}}, SCHEMA)
        assert len(problems) == 1 and problems[0].startswith(f"config key prediction.stride: {message}"), problems
    assert schema_errors({"prediction": {"tta": "sometimes"}}, SCHEMA)[0].startswith(
        "config key prediction.tta: 'sometimes' is not of type boolean"
    )
