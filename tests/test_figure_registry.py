"""The report's one list of figures (cyclesynth.evaluation.figure_registry): every entry drawn,
captioned once, and importable while the Snakefile parses (no matplotlib, no torch)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from cyclesynth.evaluation import figures
from cyclesynth.evaluation.figure_registry import FIGURES

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ROOT / "workflow" / "report"


def test_every_figure_has_a_drawing_function_and_a_caption_of_its_own():
    assert len({figure.name for figure in FIGURES}) == len(FIGURES)
    for figure in FIGURES:
        assert callable(getattr(figures, figure.draw)), figure
        assert (CAPTIONS / figure.caption).is_file(), figure.caption
    rules = "\n".join(path.read_text() for path in (ROOT / "workflow" / "rules").glob("*.smk"))
    others = re.findall(r'caption="\.\./report/([^"]+)"', rules)
    assert not {figure.caption for figure in FIGURES} & set(others)  # no caption shared with another output


def test_every_caption_file_is_used():
    rules = "\n".join(path.read_text() for path in (ROOT / "workflow" / "rules").glob("*.smk"))
    used = set(re.findall(r'caption="\.\./report/([^"]+)"', rules))
    used |= {figure.caption for figure in FIGURES}
    # the front pages of snakemake --report (FRONT_PAGE in report.smk)
    used |= set(re.findall(r'"(workflow\w*\.rst)"', rules))
    assert {path.name for path in CAPTIONS.glob("*.rst")} == used


def test_the_registry_imports_neither_matplotlib_nor_torch():
    probe = (f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r}); "
             "import cyclesynth.evaluation.figure_registry; "
             "print(sorted({'matplotlib', 'torch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rule_report_makes_its_figures_from_the_registry():
    rule = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    assert "for figure in FIGURES" in rule
    assert not re.search(r'"results/figures/\w+\.png"', rule)  # no figure named by hand
