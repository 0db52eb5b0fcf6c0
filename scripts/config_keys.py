#!/usr/bin/env python
"""The config keys documented in the config schema (SCHEMA) as a Markdown table.

    python scripts/config_keys.py                                # print the table
    python scripts/config_keys.py --write docs/configuration.md  # replace the table there

--write replaces, in place, the table that starts with the header line
`| key | default | meaning |` (up to the first line that is not a table row) and leaves
the rest of the file as it is.
"""

import argparse
import sys
from pathlib import Path

import yaml

# The one place the schema's path is named.
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"

HEADER = "| key | default | meaning |"


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


def rows(schema_path: Path = SCHEMA) -> list[tuple[str, str, str]]:
    schema = yaml.safe_load(Path(schema_path).read_text())
    return list(walk(schema, schema.get("definitions", {})))


def table(schema_path: Path = SCHEMA) -> str:
    """The Markdown table, header included, one line per key, ending in a newline."""
    lines = [HEADER, "|---|---|---|"]
    lines += [f"| `{path}` | {default} | {description} |" for path, default, description in rows(schema_path)]
    return "\n".join(lines) + "\n"


def replace_table(text: str, new_table: str) -> str:
    """text with its key table (from the HEADER line to the last table row after it) replaced."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == HEADER]
    if len(starts) != 1:
        raise ValueError(f"expected exactly one line {HEADER!r}, found {len(starts)}")
    start = end = starts[0]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + new_table + "".join(lines[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", metavar="FILE", type=Path, help="replace the key table in FILE instead of printing it")
    args = parser.parse_args(argv)
    new_table = table()
    if args.write is None:
        sys.stdout.write(new_table)
        return 0
    text = args.write.read_text()
    updated = replace_table(text, new_table)
    if updated != text:
        args.write.write_text(updated)
        print(f"{args.write}: key table rewritten ({new_table.count(chr(10)) - 2} keys)")
    else:
        print(f"{args.write}: key table already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
