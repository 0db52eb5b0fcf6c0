"""The report's figures, listed in one place.

Every figure in :data:`FIGURES` is ``results/figures/<name>.png``. Its caption in
``snakemake --report`` is ``workflow/report/<name>.rst``. It is drawn by the function of
:mod:`cyclesynth.evaluation.figures` named in ``draw``, called as ``draw(inputs, out_path)``
with the report's :class:`cyclesynth.evaluation.figures.FigureInputs`. Three places read this
list: the outputs of rule ``report`` (workflow/rules/report.smk), the targets of rule ``all``
(through those outputs), and :func:`cyclesynth.evaluation.report.write_report`.

To add a figure, write its drawing function in ``figures.py``, add one line here and write
its caption file (see docs/development.md). The Snakefile imports this module while parsing,
so it imports neither matplotlib nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    draw: str  # a function of cyclesynth.evaluation.figures: draw(inputs, out_path)

    @property
    def file(self) -> str:
        """The file name, in the figures folder."""
        return f"{self.name}.png"

    @property
    def caption(self) -> str:
        """The caption's file name, in workflow/report/."""
        return f"{self.name}.rst"


#: The report's figures, in the order the report step draws them.
FIGURES: tuple[Figure, ...] = (
    Figure("synthetic_examples", draw="draw_synthetic_examples"),
    Figure("rejected_synthetic", draw="draw_rejected_synthetic"),
    Figure("synthetic_mse", draw="draw_synthetic_mse"),
    Figure("segmentations", draw="draw_segmentations"),
    Figure("loss_curves", draw="draw_loss_curves"),
    Figure("vessel_fractions", draw="draw_vessel_fractions"),
)
