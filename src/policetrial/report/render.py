"""Render a `TrialReport`: self-contained HTML, a PDF (WeasyPrint), figures and tables as files.

The HTML carries its CSS and its figures (SVG) inline and refers to nothing outside
itself, so it opens offline and prints as it is. The PDF is made from the same HTML
by WeasyPrint with a URL fetcher that refuses every outside address. Files are staged and
moved into place, and nothing is written until the whole report has been built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from policetrial.errors import WorkspaceError
from policetrial.records.workspace import Workspace
from policetrial.report.build import TrialReport, build_report, read_results

__all__ = ["ReportFiles", "offline_fetcher", "render_html", "render_pdf", "write_report"]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("policetrial.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: TrialReport) -> str:
    """The report as one self-contained HTML document."""
    name = "stepped.html.j2" if report.design == "stepped_wedge" else "report.html.j2"
    return _environment().get_template(name).render(r=report)


def offline_fetcher() -> Any:
    """A WeasyPrint URL fetcher that allows inline `data:` URLs only: no network, no disk."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",), allow_redirects=False)


def render_pdf(html: str) -> bytes:
    """The HTML as a PDF (A4), by WeasyPrint, fetching nothing from outside."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango missing
        raise WorkspaceError(
            f"PDF output needs WeasyPrint and the pango library ({exc}); install the package "
            "`weasyprint` (and Debian's libpango-1.0-0), or leave out --pdf"
        ) from None
    document = weasyprint.HTML(string=html, url_fetcher=offline_fetcher(), base_url=None)
    pdf = document.write_pdf()
    if pdf is None:  # pragma: no cover - write_pdf with no target returns bytes
        raise WorkspaceError("WeasyPrint produced no PDF")
    return bytes(pdf)


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote, and how long it took."""

    html: Path
    pdf: Path | None
    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    suppressed_below: int
    seconds: float
    report: TrialReport = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": str(self.html),
            "pdf": None if self.pdf is None else str(self.pdf),
            "figures": [str(p) for p in self.figures],
            "tables": [str(p) for p in self.tables],
            "suppressed_below": self.suppressed_below,
            "seconds": round(self.seconds, 2),
            "headline": self.report.headline["text"],
            "flow": self.report.flow.to_dict(),
            "checklist": {
                status: sum(1 for c in self.report.checklist if c.status == status)
                for status in dict.fromkeys(c.status for c in self.report.checklist)
            },
            "warnings": list(self.report.warnings),
        }

    def summary(self) -> Any:
        return self.report.summary()


def _write_text(path: Path, text: str) -> None:
    staged = path.with_name(path.name + ".tmp")
    staged.write_text(text, encoding="utf-8")
    staged.replace(path)


def write_report(
    workspace: Workspace,
    *,
    results_path: Path | None = None,
    out_dir: Path | None = None,
    full: bool = False,
    pdf: bool = False,
    png: bool = False,
) -> ReportFiles:
    """Build the report and write it with its figures and tables.

    Parameters
    ----------
    workspace : the trial workspace.
    results_path : results.json (default `<workspace>/out/results.json`).
    out_dir : where to write (default the workspace's `out/`).
    full : the statistician's version, nothing suppressed, written as `report-full.html`
        (and `figures-full/`, `tables-full/`), never over the publication version.
    pdf : also write the PDF beside the HTML.
    png : also write each figure as PNG (150 dpi) beside its SVG; each is then drawn a
        second time, so it is left out unless asked for.

    Writes `report.html` (and `report.pdf`), `figures/<name>.svg` (and `.png`) and
    `tables/<name>.csv`. Nothing is written if the results or the workspace are unusable.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir) if out_dir is not None else workspace.out_dir
    results = read_results(
        Path(results_path) if results_path else workspace.out_dir / "results.json"
    )
    report = build_report(workspace, results, suppress_below=0 if full else None)
    html = render_html(report)
    pdf_bytes = render_pdf(html) if pdf else None
    suffix = "-full" if full else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_paths: list[Path] = []
    for figure in report.figures:
        figure_paths.extend(figure.write(out_dir / f"figures{suffix}", png=png))
    table_paths = [
        t.write_csv(out_dir / f"tables{suffix}" / f"{t.name}.csv") for t in report.tables
    ]
    html_path = out_dir / f"report{suffix}.html"
    _write_text(html_path, html)
    pdf_path = None
    if pdf_bytes is not None:
        pdf_path = out_dir / f"report{suffix}.pdf"
        staged = pdf_path.with_name(pdf_path.name + ".tmp")
        staged.write_bytes(pdf_bytes)
        staged.replace(pdf_path)
    return ReportFiles(
        html=html_path,
        pdf=pdf_path,
        figures=tuple(figure_paths),
        tables=tuple(table_paths),
        suppressed_below=report.suppress_below,
        seconds=time.perf_counter() - started,
        report=report,
    )
