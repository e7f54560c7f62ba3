"""The trial report: CONSORT flow, Table 1, results with ICCs, audit, questionnaires, figures.

Takes the workspace and `out/results.json` (no estimate is recomputed); gives the report
as one self-contained HTML file (inline CSS and SVG), a PDF, and the figures (PNG, SVG)
and tables (CSV) as files. Small counts are suppressed by default (`[report] suppress_below`).

Modules, one concept each:

- `tables`: suppression, the `ReportTable` type, standardised differences;
- `flow`: the CONSORT flow of stations and officers, counted from the records;
- `baseline`: Table 1, stations and officers by arm;
- `results_tables`: outcomes by arm and period, effect estimates, ICCs / CVs, sensitivity;
- `series`: monthly mental-health calls by arm (DuckDB over the incident extract);
- `randomisation`: the balance score of every admissible scheme, the chosen one marked;
- `sections`: the audit and questionnaire sections;
- `methods`: methods text from the protocol and what was run;
- `checklist`: the CONSORT 2010 cluster checklist with where each item is answered;
- `figures`: matplotlib drawings as SVG and PNG;
- `build`: `build_report`, assembling all of it; `render`: HTML, PDF and files.
"""

from policetrial.report.build import REQUIRED_KEYS, TrialReport, build_report, read_results
from policetrial.report.checklist import ChecklistItem, consort_checklist
from policetrial.report.flow import ArmFlow, ConsortFlow, consort_flow
from policetrial.report.randomisation import ScoreDistribution, score_distribution
from policetrial.report.render import ReportFiles, render_html, render_pdf, write_report
from policetrial.report.series import MonthlyCalls, monthly_calls
from policetrial.report.tables import (
    ReportTable,
    Suppression,
    standardised_difference_binary,
    standardised_difference_continuous,
)

__all__ = [
    "REQUIRED_KEYS",
    "ArmFlow",
    "ChecklistItem",
    "ConsortFlow",
    "MonthlyCalls",
    "ReportFiles",
    "ReportTable",
    "ScoreDistribution",
    "Suppression",
    "TrialReport",
    "build_report",
    "consort_checklist",
    "consort_flow",
    "monthly_calls",
    "read_results",
    "render_html",
    "render_pdf",
    "score_distribution",
    "standardised_difference_binary",
    "standardised_difference_continuous",
    "write_report",
]
