"""The report's part on the product: what was segmented, what could be scored, and a figure.

``table1.md`` ends with a section listing every segmented image (its role, whether it was
scored, and its mask, probability map and overlay) and says plainly which images could not be
scored for lack of a label. Where no test image has a label, the Table 1 sections are replaced
by that statement (the table has no empty rows) and ``segmentations.png`` shows the overlays.
"""

from __future__ import annotations

import os
from typing import Mapping

import pandas as pd

from cyclesynth.data.datasets import scored_tests

PathLike = str | os.PathLike


def scored_ids(index: pd.DataFrame) -> list[str]:
    return scored_tests(index)["id"].astype(str).tolist()


def unscored_test_ids(index: pd.DataFrame) -> list[str]:
    return index.loc[(index["role"] == "test") & (index["label"] == ""), "id"].astype(str).tolist()


def _ids_text(ids: list[str], limit: int = 20) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def render_unscored_table1(index: pd.DataFrame) -> str:
    """Table 1's place when no test image has a label: says so, and where the results are."""
    tests = index[index["role"] == "test"]
    lines = [
        "# Table 1: not measured",
        "",
        "No image could be scored: scoring needs test images with a label (the samplesheet's "
        "`label` column on rows whose role is `test`), and "
        + (
            f"none of the {len(tests)} test images has one ({_ids_text(tests['id'].astype(str).tolist())})."
            if len(tests)
            else "the dataset has no test images."
        ),
        "Every image but the reference was segmented all the same: see Segmentations below.",
        "",
    ]
    return "\n".join(lines)


def render_not_scored(index: pd.DataFrame) -> str:
    """A paragraph naming the test images without a label (empty when every one has one)."""
    missing = unscored_test_ids(index)
    if not missing:
        return ""
    scored = scored_ids(index)
    return "\n".join(
        [
            "## Not scored",
            "",
            f"{len(missing)} of the {len(missing) + len(scored)} test images have no label and could not be "
            f"scored: {_ids_text(missing)}. They are segmented (below); the tables above cover the "
            f"{len(scored)} labeled ones.",
            "",
        ]
    )


def render_input_warnings(index: pd.DataFrame) -> str:
    """A section listing the input checks' warnings (a label that looks inverted, say), from
    the index's ``warnings`` column; empty when there are none."""
    if "warnings" not in index.columns:
        return ""
    rows = index[index["warnings"].fillna("").astype(str) != ""]
    if rows.empty:
        return ""
    lines = ["## Input warnings", "", "The input checks accepted these files with a warning; look at them before trusting the results:", ""]
    for row in rows.itertuples():
        for warning in str(row.warnings).split(" | "):
            lines.append(f"- `{row.id}` ({row.role}): {warning}")
    lines.append("")
    return "\n".join(lines)


SOURCES = {
    "final_experiment": "the config's final_experiment",
    "segmentation.experiments": "set by segmentation.experiments",
    "default": "the default (neither final_experiment nor segmentation.experiments is set)",
}


def source_line(experiments: list[str], source: str, *, code: str = "`") -> str:
    """Which experiments made the segmentations and why, e.g. ``Segmentations from
    `self_trained`: the config's final_experiment.`` (``source``: a key of :data:`SOURCES`,
    as :func:`cyclesynth.pipeline.rule_settings.segmentation_source` gives it). ``code``
    quotes the names: one backtick (Markdown) by default, two for reStructuredText."""
    if source not in SOURCES:
        raise ValueError(f"unknown segmentation source {source!r} (one of {', '.join(SOURCES)})")
    names = ", ".join(f"{code}{e}{code}" for e in experiments) or "no experiment"
    return f"Segmentations from {names}: {SOURCES[source]}."


def render_segmentations(
    index: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    experiment_labels: Mapping[str, str],
    *,
    segmented_by: Mapping | None = None,
) -> str:
    """The Segmentations section: which experiments made them and why (``segmented_by``:
    ``experiments`` and ``source``, :func:`source_line`), then per experiment every image's
    files and vessel fraction."""
    lines = ["## Segmentations", ""]
    if segmented_by:
        lines += [source_line(list(segmented_by["experiments"]), str(segmented_by["source"])), ""]
    if not tables:
        lines += ["No experiment was chosen to segment the images (config key segmentation.experiments).", ""]
        return "\n".join(lines)
    roles = dict(zip(index["id"].astype(str), index["role"]))
    scored = set(scored_ids(index))
    lines += [
        "Every image but the reference, labeled or not, segmented by the U-Net of each experiment in",
        "`segmentation.experiments`: a mask (`_mask.png`, 0/255), the vessel probability as a 16-bit",
        "PNG (`_probability.png`) and the image with the mask drawn in green (`_overlay.png`).",
        "",
    ]
    for experiment, table in tables.items():
        label = experiment_labels.get(experiment, experiment)
        threshold = f"{float(table['threshold'].iloc[0]):.3f}" if len(table) else "—"
        folder = os.path.dirname(str(table["mask"].iloc[0])) if len(table) else ""
        lines += [
            f"### {label} (`{experiment}`): {len(table)} images in `{folder}/`, threshold {threshold}",
            "",
            "| Image | Role | Scored | Size | Vessel fraction | Mask | Probability | Overlay |",
            "|---|---|---|--:|--:|---|---|---|",
        ]
        for row in table.itertuples():
            name = str(row.name)
            lines.append(
                f"| `{name}` | {roles.get(name, 'new')} | {'yes' if name in scored else 'no'} | "
                f"{row.height}x{row.width} | {float(row.vessel_fraction):.3f} | "
                f"`{os.path.basename(str(row.mask))}` | `{os.path.basename(str(row.probability))}` | "
                f"`{os.path.basename(str(row.overlay))}` |"
            )
        lines.append("")
    return "\n".join(lines)


def overlay_panels(tables: Mapping[str, pd.DataFrame], limit: int = 3) -> list[tuple[str, str, str]]:
    """(image path, experiment, overlay path) for the first ``limit`` images of each table."""
    panels = []
    for experiment, table in tables.items():
        for row in table.head(limit).itertuples():
            panels.append((str(row.image), experiment, str(row.overlay)))
    return panels
