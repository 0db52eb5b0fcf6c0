#!/usr/bin/env python
"""Print the config keys documented in config/schema.yaml as a Markdown table (for README)."""

from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def walk(schema: dict, definitions: dict, prefix: str = "", seen: set | None = None):
    seen = set() if seen is None else seen
    for key, spec in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if "$ref" in spec:  # a shared definition (per-rule resources): list its keys once
            if spec["$ref"] in seen:
                continue
            seen.add(spec["$ref"])
            names = [k for k, v in schema["properties"].items() if v.get("$ref") == spec["$ref"]]
            spec = {**definitions[spec["$ref"].rsplit("/", 1)[1]], **spec}
            path = f"{prefix}{{{','.join(names)}}}"
        if "properties" in spec:
            yield path, "", " ".join(spec.get("description", "").split())
            yield from walk(spec, definitions, path + ".", seen)
        elif isinstance(spec.get("additionalProperties"), dict) and "properties" in spec["additionalProperties"]:
            yield path, "", " ".join(spec.get("description", "").split())
            yield from walk(spec["additionalProperties"], definitions, path + ".<name>.", seen)
        else:
            default = spec.get("default", "(required)")
            yield path, f"`{default}`" if default != "(required)" else default, " ".join(spec.get("description", "").split())


def rows() -> list[tuple[str, str, str]]:
    schema = yaml.safe_load(SCHEMA.read_text())
    return list(walk(schema, schema.get("definitions", {})))


if __name__ == "__main__":
    print("| key | default | meaning |\n|---|---|---|")
    for path, default, description in rows():
        print(f"| `{path}` | {default} | {description} |")
