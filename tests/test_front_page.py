"""The front page of `snakemake --report` (workflow/report/workflow.rst): rendered as Snakemake
9 renders it (Jinja with snakemake.config, then docutils from a string, so that `.. include::`
resolves against the working directory), it shows the headline results rule report writes;
before that rule has run, workflow_no_results.rst has the same introduction."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from docutils.core import publish_parts
from docutils.utils import SystemMessage
from jinja2 import Environment

from cyclesynth.evaluation import tables

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "workflow" / "report"
CONFIG = {"dataset": {"reference": None, "source": "phantom"}}


def _render(page: Path, config: dict = CONFIG) -> str:
    """HTML of a front page as Snakemake's report makes it, docutils' warnings made errors."""

    class Snakemake:
        pass

    Snakemake.config = config
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(page.read_text()).render(
        snakemake=Snakemake, categories={}, files=[])
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["html_body"]


def _summary() -> pd.DataFrame:
    rows = []
    for experiment, auc, f1 in (("all_labels", [0.9, 0.8], [0.7, 0.5]), ("synthetic", [0.6, 0.6], [0.4, 0.2])):
        for i in range(2):
            for name, f1_shift in (("0.5", 0.1), ("w/(1+w)", 0.0)):
                rows.append(dict(experiment=experiment, image=f"0{i}", region="fov", threshold_name=name,
                                 threshold=0.5, auc=auc[i], f1=f1[i] - f1_shift))
    return tables.summarize([pd.DataFrame(rows)])


def test_the_front_page_shows_the_headline_table(tmp_path, monkeypatch):
    headline = tmp_path / "results" / "metrics" / "headline.rst"
    headline.parent.mkdir(parents=True)
    tables.write_text(tables.render_headline(
        _summary(), experiment_labels={"all_labels": "every label"},
        segmented_by={"experiments": ["synthetic"], "source": "final_experiment"}), headline)
    monkeypatch.chdir(tmp_path)  # Snakemake's working directory (snakemake --directory)
    html = _render(PAGES / "workflow.rst")
    assert "dataset source phantom" in html
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells == [
        "every label", '<tt class="docutils literal">all_labels</tt>', "0.850 ± 0.071", "0.600 ± 0.141",
        "synthetic", '<tt class="docutils literal">synthetic</tt>', "0.600 ± 0.000", "0.300 ± 0.141",
    ]
    assert re.search(r'<p>Segmentations from <tt class="docutils literal">synthetic</tt>: the config.s final_experiment.</p>',
                     html)


def test_without_the_headline_workflow_rst_cannot_render_but_the_other_page_can(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemMessage, match='"include" directive'):
        _render(PAGES / "workflow.rst")
    html = _render(PAGES / "workflow_no_results.rst")
    assert "dataset source phantom" in html and "once the workflow" in html


def test_both_front_pages_have_the_same_introduction():
    first = [(PAGES / name).read_text().split("\n\n")[0] for name in ("workflow.rst", "workflow_no_results.rst")]
    assert first[0] == first[1] and "{{ snakemake.config" in first[0]


def test_report_smk_picks_the_page_by_whether_the_headline_exists():
    rule = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    assert 'HEADLINE = "results/metrics/headline.rst"' in rule
    assert ".. include:: results/metrics/headline.rst" in (PAGES / "workflow.rst").read_text()
    assert 'FRONT_PAGE = "workflow.rst" if os.path.exists(HEADLINE) else "workflow_no_results.rst"' in rule
    assert "headline=HEADLINE," in rule


def test_nothing_scored_still_renders(tmp_path):
    text = tables.render_headline(tables.summarize([]), experiment_labels={},
                                  segmented_by={"experiments": ["a"], "source": "default"})
    html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["html_body"]
    assert "No test image was scored" in html and "<table" not in html
