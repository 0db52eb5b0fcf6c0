"""Validating a workflow config against workflow/schemas/config.schema.yaml (:data:`SCHEMA`)
with messages that name the key.

Snakemake's own ``validate`` reports the first schema violation followed by a dump of the
schema. Here every violation is listed as ``config key <dotted.path>: <what is wrong>`` with
what was expected (the key's description, the allowed values or keys), before Snakemake's
``validate`` fills in the defaults.

Values given on the command line inside a mapping (``--config unet='{lr: 0.001}'``) reach the
config as text (Snakemake parses them with YAML's BaseLoader); :func:`coerce_text_values`
turns such text into the number, boolean or null the schema asks for, so the command line
behaves like a config file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# The one path of the config schema (the Snakemake catalog's place for it), for the rules,
# the scripts and the tests.
SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"

_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_TRUE, _FALSE, _NULL = {"true", "True", "TRUE"}, {"false", "False", "FALSE"}, {"null", "Null", "NULL", "~", "None"}
_NULL_TEXT = {"null", "Null", "NULL", "~"}  # for keys that may also be text ("None" could be a name)


class ConfigValidationError(ValueError):
    """The config violates the schema; the message lists every violation with its key."""


# Keys of earlier versions (dotted path -> what replaced them): named with the replacement
# instead of as an unknown key.
RETIRED_KEYS = {
    ("cyclegan", "amp"): "no longer exists; it was replaced by cyclegan.precision (amp: true -> "
    "precision: float16, float16 autocast with a gradient scaler; amp: false -> precision: float32)",
}


def _retired(config: Any) -> list[tuple[tuple[str, ...], str]]:
    found = []
    for path, message in RETIRED_KEYS.items():
        node = config
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            found.append((path, message))
    return found


def _without(config: dict, paths: list[tuple[str, ...]]) -> dict:
    """``config`` without the keys at ``paths`` (copies only the mappings on the way)."""
    config = dict(config)
    for path in paths:
        node = config
        for part in path[:-1]:
            node[part] = dict(node[part])
            node = node[part]
        node.pop(path[-1])
    return config


def _types(spec: dict) -> list[str]:
    kind = spec.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _coerce_scalar(value: str, spec: dict) -> Any:
    types = _types(spec)
    # null and ~ mean None for every key that may be null, text keys included (a preset's
    # dataset.reference is cleared with --config dataset='{reference: null}')
    if "null" in types and value in (_NULL_TEXT if "string" in types else _NULL):
        return None
    if "boolean" in types and "string" in types and value in _TRUE | _FALSE and value not in spec.get("enum", []):
        return value in _TRUE  # a key that is a word or a boolean (unet.channels_last: auto, true, false)
    if not types or "string" in types:
        return value
    if "integer" in types and _INT.match(value):
        return int(value)
    if "number" in types and _FLOAT.match(value):
        number = float(value)
        return int(number) if _INT.match(value) else number
    if "boolean" in types and value in _TRUE | _FALSE:
        return value in _TRUE
    if "null" in types and value in _NULL:
        return None
    return value


def _resolve(schema: dict, root: dict) -> dict:
    """``schema`` with a ``$ref`` to ``root``'s definitions merged in."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return {**root.get("definitions", {}).get(name, {}), **schema}
    return schema


def coerce_text_values(config: Any, schema: dict, root: dict | None = None) -> Any:
    """Return ``config`` with text values converted where the schema wants another type."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(config, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, value in config.items():
            spec = properties.get(key, extra if isinstance(extra, dict) else {})
            out[key] = coerce_text_values(value, spec, root)
        return out
    if isinstance(config, list):
        items = schema.get("items", {})
        return [coerce_text_values(value, items, root) for value in config]
    if isinstance(config, str):
        return _coerce_scalar(config, schema)
    return config


def _dotted(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _describe(error, root: dict) -> str:
    """One line for a jsonschema error: the key, what is wrong, what was expected."""
    key = _dotted(error.path)
    schema = _resolve(error.schema, root) if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        where = f"config key {key}" if error.path else "config"
        if known:
            return f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(known)}"
        return f"{where}: {error.message}"
    if error.validator == "required":
        return f"config key {key}: {error.message}"
    description = " ".join(str(schema.get("description", "")).split())
    expected = f" (expected: {description})" if description else ""
    if error.validator == "enum":
        return f"config key {key}: {error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "type":
        wanted = " or ".join(_types(schema)) or str(error.validator_value)
        return f"config key {key}: {error.instance!r} is not of type {wanted}{expected}"
    return f"config key {key}: {error.message}{expected}"


def schema_errors(config: dict, schema: dict) -> list[str]:
    """Every schema violation of ``config`` as a message naming its key (empty when valid)."""
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.path)), e.validator))
    return [_describe(error, schema) for error in errors]


def check_against_schema(config: dict, schema: dict) -> dict:
    """Coerce command-line text, then raise :class:`ConfigValidationError` listing every
    violation (a key of an earlier version with what replaced it, :data:`RETIRED_KEYS`);
    returns the coerced config (defaults are filled in by Snakemake's validate)."""
    coerced = coerce_text_values(config, schema)
    retired = _retired(coerced)
    problems = [f"config key {'.'.join(path)}: {message}" for path, message in retired]
    problems += schema_errors(_without(coerced, [path for path, _ in retired]), schema)
    if problems:
        raise ConfigValidationError("invalid config:\n  " + "\n  ".join(problems))
    return coerced
