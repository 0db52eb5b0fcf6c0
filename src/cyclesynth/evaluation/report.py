"""The report: summary table, the paper's Table 1 beside the measured one, and figures.

Inputs are the tables and images the other stages write (read by :mod:`cyclesynth.evaluation.inputs`):

* ``results/data/index.tsv`` (which image is the reference, which are unlabeled or test),
* ``results/metrics/{experiment}.tsv`` and ``results/metrics/human.tsv`` (one row per
  test image, region and threshold),
* ``results/synthetic/quality.tsv`` (per synthetic image: MSE against the reference, kept?),
* ``results/cyclegan/{image}/history.tsv`` and ``results/unet/{experiment}/history.tsv``,
* ``results/predictions/{experiment}/{test_id}.png``.

Outputs: ``summary.tsv`` (mean and sample standard deviation over test images),
``table1.md`` (Markdown, measured and published side by side), ``headline.rst`` (the front
page's results table, reStructuredText) and the PNG figures of
:data:`cyclesynth.evaluation.figure_registry.FIGURES`. Every
file is written through :func:`cyclesynth.data.images.atomic_path`, so a killed job never leaves
a truncated output under its final name. A configuration without the synthetic experiment
(no quality table, no CycleGAN histories) still gets every output: the figures that have
nothing to show say why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from cyclesynth.data.datasets import read_index
from cyclesynth.evaluation import figures, segmentation_report
from cyclesynth.evaluation.figure_registry import FIGURES
from cyclesynth.evaluation.inputs import PathLike, read_history, read_metrics, read_segmentations
from cyclesynth.evaluation.tables import render_headline, render_table1, summarize, write_summary, write_text
from cyclesynth.synthesis.quality_filter import read_quality


def write_report(
    *,
    index_tsv: PathLike,
    quality_tsv: PathLike | None,
    metrics_tsvs: Mapping[str, PathLike],
    human_tsv: PathLike | None,
    cyclegan_histories: Mapping[str, PathLike],
    unet_histories: Mapping[str, PathLike],
    predictions_dir: PathLike,
    pretrain_history: PathLike | None = None,
    experiment_labels: Mapping[str, str],
    mse_threshold: float | None,
    out_summary: PathLike,
    out_table1: PathLike,
    figures_dir: PathLike,
    segmentation_tables: Mapping[str, PathLike] | None = None,
    paired_tsv: PathLike | None = None,
    validation_tsvs: Mapping[str, PathLike] | None = None,
    validation_paired_tsv: PathLike | None = None,
    prediction: Mapping | None = None,
    self_training: Mapping | None = None,
    pseudo_label_tables: Mapping[str, PathLike] | None = None,
    segmented_by: Mapping | None = None,
    out_headline: PathLike | None = None,
) -> dict[str, Path]:
    """Read every input, write ``summary.tsv``, ``table1.md`` and the figures.

    ``quality_tsv``, ``human_tsv`` and history files may be missing (``None`` or absent
    file): the outputs are still written, with placeholder figures saying why they are
    empty. A missing index or metrics table is an error naming the file. ``prediction``
    (``patch_size``, ``stride``, ``tta``: how the U-Nets predicted, the workflow's
    prediction settings) puts a sentence saying so under Table 1's introduction (or under
    its place when nothing is scored). ``self_training`` (``students``: name -> pseudo_labels
    settings, ``transductive``) with the teachers' ``pseudo_label_tables`` adds the
    Self-training section (:func:`cyclesynth.segmentation.pseudo_labels.render_markdown`);
    ``segmented_by`` (``experiments``, ``source``) says which experiments made the
    segmentations and why. ``out_headline`` (optional): the front page's results in
    reStructuredText (:func:`cyclesynth.evaluation.tables.render_headline`). Returns the paths
    written, keyed by a short name.
    """
    index = read_index(index_tsv)
    tables = [read_metrics(path) for path in metrics_tsvs.values()]
    if human_tsv is not None and Path(human_tsv).is_file():
        tables.append(read_metrics(human_tsv))
    summary = summarize(tables)
    write_summary(summary, out_summary)
    segmentations = {
        experiment: read_segmentations(path) for experiment, path in (segmentation_tables or {}).items()
    }
    scored = segmentation_report.scored_ids(index)
    method = None
    if prediction is not None:
        from cyclesynth.segmentation.inference import describe

        method = describe(int(prediction["patch_size"]), prediction["stride"], bool(prediction["tta"]))
    if scored:
        text = render_table1(summary, experiment_labels=experiment_labels, prediction=method)
        if paired_tsv is not None and Path(paired_tsv).is_file():  # the paired comparison (cyclesynth.evaluation.paired)
            from cyclesynth.evaluation.paired import render_markdown

            text += "\n" + render_markdown(pd.read_csv(paired_tsv, sep="\t", dtype={"a": str, "b": str}),
                                           experiment_labels)
        text += "\n" + segmentation_report.render_not_scored(index)
    else:
        text = segmentation_report.render_unscored_table1(index)
        if method:
            text += "\n" + method + "\n"
    if validation_tsvs:
        from cyclesynth.evaluation.validation_report import render_validation

        text += "\n" + render_validation(
            index, [read_metrics(path) for path in validation_tsvs.values()], validation_paired_tsv, experiment_labels
        )
    if self_training and self_training.get("students"):
        from cyclesynth.segmentation.pseudo_labels import read_table, render_markdown

        text += "\n" + render_markdown(
            self_training["students"],
            {teacher: read_table(path) for teacher, path in (pseudo_label_tables or {}).items()},
            experiment_labels,
            transductive=bool(self_training.get("transductive")),
        )
    warnings = segmentation_report.render_input_warnings(index)
    if warnings:
        text += "\n" + warnings
    text += "\n" + segmentation_report.render_segmentations(
        index, segmentations, experiment_labels, segmented_by=segmented_by
    )
    write_text(text, out_table1)
    if out_headline is not None:
        write_text(render_headline(summary, experiment_labels=experiment_labels, segmented_by=segmented_by),
                   out_headline)

    inputs = figures.FigureInputs(
        index=index,
        quality=read_quality(quality_tsv),
        mse_threshold=mse_threshold,
        scored_experiments=list(metrics_tsvs),
        predictions_dir=predictions_dir,
        segmentations=segmentations,
        cyclegan_histories={image: read_history(path) for image, path in cyclegan_histories.items()},
        unet_histories={experiment: read_history(path) for experiment, path in unet_histories.items()},
        pretrain_history=read_history(pretrain_history) if pretrain_history is not None else None,
        experiment_labels=experiment_labels,
    )
    paths = {figure.name: Path(figures_dir) / figure.file for figure in FIGURES}
    for figure in FIGURES:
        getattr(figures, figure.draw)(inputs, paths[figure.name])
    headline = {"headline": Path(out_headline)} if out_headline is not None else {}
    return {"summary": Path(out_summary), "table1": Path(out_table1), **headline, **paths}
