"""The report's Validation section: the experiments scored on the validation images.

Validation images are labeled training images held out of every CycleGAN, pseudo-label and
U-Net (config key ``dataset.validation``, or the samplesheet role ``validation``). They are
where settings are chosen without looking at the test images, so ``table1.md`` gives them a
table of their own, in the layout of Table 1, with their paired comparisons.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from cyclesynth.data.datasets import validation_ids


def render_validation(
    index: pd.DataFrame,
    metric_tables: Sequence[pd.DataFrame],
    paired_tsv: str | os.PathLike | None,
    experiment_labels: Mapping[str, str],
) -> str:
    """Markdown: the validation images, a Table 1 of their scores (within the FOV) and the
    paired comparisons over them."""
    from cyclesynth.evaluation.tables import REGION_TITLES, _region_table, summarize

    ids = validation_ids(index)
    summary = summarize(metric_tables)
    lines = [
        "## Validation (held-out training images; choose settings here, not on the test images)",
        "",
        f"{len(ids)} labeled training image(s) held out of every CycleGAN, pseudo-label and U-Net: "
        + ", ".join(f"`{i}`" for i in ids)
        + ". Mean ± sample standard deviation over them.",
        "",
    ]
    regions = list(dict.fromkeys(summary["region"].astype(str))) if len(summary) else ["fov"]
    for region in sorted(regions, key=lambda r: r != "fov"):  # within the FOV first
        lines += [f"### {REGION_TITLES.get(region, region)}", ""]
        lines += _region_table(summary, region, experiment_labels, paper_column=False)
        lines.append("")
    if paired_tsv is not None and Path(paired_tsv).is_file():
        from cyclesynth.evaluation.paired import render_markdown

        paired = render_markdown(
            pd.read_csv(paired_tsv, sep="\t", dtype={"a": str, "b": str}), experiment_labels, images="validation"
        )
        lines += [paired.replace("## ", "### Validation: ", 1), ""]
    return "\n".join(lines)
