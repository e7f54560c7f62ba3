"""The rendered report: golden structure, self-contained HTML, PDF, files, and the command."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.records.workspace import Workspace
from policetrial.report import TrialReport, build_report, render_html, render_pdf, write_report
from policetrial.report.render import offline_fetcher

from .conftest import snapshot
from .report_fixtures import GOLDEN, load_results, with_analysis_keys
from .report_structure import check_golden, structure

runner = CliRunner()


def test_structure_matches_golden_file(full_report: TrialReport) -> None:
    """Every heading, section, table shape and figure of the demo-like report."""
    check_golden(GOLDEN / "report_structure.json", render_html(full_report))


def test_structure_with_analysis_keys_matches_golden_file(analysed: Workspace) -> None:
    """The same with ICC/CV, incident-level, questionnaire and sensitivity entries present."""
    report = build_report(analysed, with_analysis_keys(load_results(analysed)), suppress_below=0)
    check_golden(GOLDEN / "report_structure_analysis.json", render_html(report))


def test_structure_lists_every_required_section(full_report: TrialReport) -> None:
    found = structure(render_html(full_report))
    sections = [i["section"] for i in found if "section" in i]
    assert sections == [
        "summary", "flow", "baseline", "over-time", "outcomes", "estimates", "clustering",
        "sensitivity", "randomisation", "audit", "questionnaires", "methods", "warnings",
        "checklist",
    ]  # fmt: skip
    figures = [i["figure"] for i in found if "figure" in i]
    assert figures == [
        "fig-consort_flow", "fig-monthly_calls", "fig-station_rates", "fig-forest_plot",
        "fig-randomisation_scores",
    ]  # fmt: skip


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "poster", "data") and value:
                self.refs.append(value)
            if name == "id" and value:
                self.ids.add(value)


def test_html_is_self_contained(published_report: TrialReport) -> None:
    """Nothing outside the file: every reference is an in-page anchor or inline data, no
    script, stylesheet link, iframe or @import, and no url() in the CSS."""
    html = render_html(published_report)
    links = _Links()
    links.feed(html)
    assert links.refs and all(r.startswith(("#", "data:")) for r in links.refs), [
        r for r in links.refs if not r.startswith(("#", "data:"))
    ]
    assert not {"script", "link", "iframe", "object", "embed"} & set(links.tags)
    style = "".join(re.findall(r"<style>(.*?)</style>", html, flags=re.S))
    assert "@import" not in style and "url(" not in style
    assert "http://" not in html.replace("http://www.w3.org/", "")


def test_every_checklist_anchor_exists(full_report: TrialReport) -> None:
    links = _Links()
    links.feed(render_html(full_report))
    anchors = {c.anchor for c in full_report.checklist if c.anchor}
    assert anchors and anchors <= links.ids
    assert [c.item for c in full_report.checklist][:3] == ["1a", "1b", "2a"]
    assert len(full_report.checklist) == 39  # 1a..25 in the 2010 checklist with 10a-10c


def test_pdf_is_made_offline(published_report: TrialReport) -> None:
    pdf = render_pdf(render_html(published_report))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) > 50_000
    with pytest.raises(ValueError, match="disallowed protocol"):
        offline_fetcher()("https://example.org/font.woff")


def test_pdf_refuses_what_lies_outside(caplog: pytest.LogCaptureFixture) -> None:
    """An outside image is refused by the fetcher (WeasyPrint logs it and goes on)."""
    pdf = render_pdf('<p>x</p><img src="http://127.0.0.1:9/logo.png">')
    assert pdf.startswith(b"%PDF-")
    assert "disallowed protocol" in caplog.text


def test_write_report_writes_html_figures_and_tables(reported: Workspace) -> None:
    files = write_report(reported, pdf=False)
    out = reported.out_dir
    assert files.html == out / "report.html" and files.pdf is None
    for path in files.figures:
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")
    assert {p.stem for p in files.figures} == {f.name for f in files.report.figures}
    assert {p.name for p in files.tables} >= {"table1_baseline.csv", "effect_estimates.csv"}
    assert all(p.parent == out / "tables" for p in files.tables)
    published = (out / "report.html").read_bytes()
    full = write_report(reported, full=True)
    assert full.html.name == "report-full.html" and full.tables[0].parent.name == "tables-full"
    assert (out / "report.html").read_bytes() == published


def test_nothing_is_written_for_bad_results(analysed: Workspace) -> None:
    target = analysed.out_dir / "results.json"
    target.write_text('{"trial": {}}')
    before = snapshot(analysed.root)
    result = runner.invoke(app, ["report", "-w", str(analysed.root)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "results.json" in result.stderr
    assert snapshot(analysed.root) == before


def test_an_open_interval_end_reads_open(analysed: Workspace) -> None:
    """results.json holds an open end as null: the headline says "open", never a blank or
    a bound; no interval at all (a degenerate fit) reads "no 95% CI"."""
    results = load_results(analysed)
    changed = copy.deepcopy(results)
    changed["primary"]["ci_low"] = None
    changed["primary"]["notes"].append(
        "The interval is open at one end: no rate ratio as far as 0.007 or 148 was rejected, "
        "so the data set no bound there."
    )
    report = build_report(analysed, changed, suppress_below=0)
    assert re.search(r"\(95% CI open to \d+\.\d\d\), p = ", report.headline["text"])
    assert report.headline["text"] in render_html(report)
    changed["primary"]["ci_high"] = None
    changed["primary"]["notes"].append(
        "No interval: the randomisation test rejects even the estimate itself (a degenerate fit)."
    )
    report = build_report(analysed, changed, suppress_below=0)
    assert "(no 95% CI), p = " in report.headline["text"]


def test_report_command_json(reported: Workspace) -> None:
    result = runner.invoke(app, ["report", "-w", str(reported.root), "--json", "--pdf"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["suppressed_below"] == 5
    assert Path(payload["pdf"]).read_bytes().startswith(b"%PDF-")
    assert payload["flow"]["problems"] == []
    assert sum(payload["checklist"].values()) == 39
    assert payload["headline"].startswith("Rate ratio")


def test_report_command_full_prints_where(reported: Workspace) -> None:
    result = runner.invoke(app, ["report", "-w", str(reported.root), "--full"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.replace("\n", "")
    assert "report-full.html" in printed and "nothing suppressed" in printed


def test_report_command_does_without_slow_imports(reported: Workspace) -> None:
    """Issue 9's bar is the demo's report in under 10 s: `policetrial report`, in a fresh
    interpreter, writes the report without importing scipy.stats (0.4 s; its few
    distribution functions come from scipy.special, which gives the same numbers) or
    Alembic (0.1 s; needed only when there is a migration to run)."""
    code = (
        "import sys\n"
        "from policetrial.cli import main\n"
        f"sys.argv = ['policetrial', 'report', '-w', {str(reported.root)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        "print(sorted(m for m in ('scipy.stats', 'alembic') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (reported.root / "out" / "report.html").exists()
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_a_forest_row_not_estimable_is_said_in_words_not_drawn_as_a_line() -> None:
    """A Section 136 model fitted to a handful of events has no estimate and no interval.
    The forest plot drew it as a line across the whole axis, which reads as an interval
    spanning every effect; it now says "not estimable" on that row and draws no line, while
    an estimate with an open upper limit is still a line to the axis's end."""
    from matplotlib.collections import LineCollection

    from policetrial.report.figures import forest_figure

    row = {"scale": "rate ratio", "main": True, "not_estimable": None}
    rows = [
        {**row, "label": "Calls", "estimate": 0.75, "ci_low": 0.51, "ci_high": 1.08},
        {**row, "label": "Open", "estimate": 0.9, "ci_low": 0.4, "ci_high": None},
        {**row, "label": "S136", "estimate": None, "ci_low": None, "ci_high": None,
         "not_estimable": "the model's rate ratio drifted beyond exp(±5)"},
    ]  # fmt: skip
    figure = forest_figure(rows, level=95, caption="")
    assert figure.svg.count("not estimable") == 1
    assert figure.drawing is not None
    (lines,) = [c for c in figure.drawing.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == 2
