"""The data dictionary: every extract column, declared outcome and result field, written
from the code's own definitions (the extract kinds, the protocol's outcomes, the result
dataclasses) so that it cannot drift from what the tool reads and writes.

A result field without a description in `RESULT_FIELDS` fails `tests/test_documents.py`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields

import jinja2

from policetrial.analysis.results import Clustering, Estimate, TrialResults
from policetrial.protocol.schema import Protocol

__all__ = [
    "DICTIONARY_COLUMNS",
    "RESULT_FIELDS",
    "DictionaryRow",
    "data_dictionary",
    "dictionary_bytes",
]

DICTIONARY_COLUMNS = ("table", "field", "type", "required", "description", "source")

RESULT_FIELDS: dict[str, dict[str, str]] = {
    "Estimate": {
        "outcome": "The outcome's key (a declared outcome, or questionnaire:<instrument>.<score>).",
        "method": "The analysis method (see the statistical analysis plan).",
        "description": "The method in one line.",
        "scale": "rate ratio, odds ratio, difference in means, or p-value only.",
        "estimate": "The effect estimate; null when not estimable.",
        "ci_low": "Lower end of the interval; null when open below.",
        "ci_high": "Upper end of the interval; null when open above.",
        "p_value": "Two-sided p-value; null when no test could be made.",
        "df": "Degrees of freedom of a t reference distribution; null for randomisation tests.",
        "n_clusters": "Stations in the analysis.",
        "notes": "What the reader should know about this estimate.",
        "analysis_set": "main, or the sensitivity analysis it belongs to.",
        "comparison": "With more than two arms: the training arm compared with control.",
        "p_holm": "With more than two arms: the Holm-adjusted p-value.",
        "p_adjusted": "For an outcome of the protocol's multiplicity family: its p-value "
        "adjusted by the protocol's method (Holm or permutation step-down).",
        "not_estimable": "Why no estimate could be given; null when there is one.",
    },
    "Clustering": {
        "outcome": "The outcome's key.",
        "measure": "cv_between (counts) or icc.",
        "estimate": "The coefficient of variation or intracluster correlation.",
        "ci_low": "Lower end of its interval.",
        "ci_high": "Upper end of its interval.",
        "method": "How it was estimated.",
        "n_clusters": "Stations used.",
        "adjusted_for": "What the estimate is adjusted for.",
        "notes": "Notes on the estimate.",
    },
    "TrialResults": {
        "trial": "Trial id, title, force, design, arms, primary outcome, alpha, interim.",
        "primary": "The primary estimate (an Estimate).",
        "estimates": "Count outcomes of the main analysis set (Estimates).",
        "stations": "Stations per arm.",
        "officers_eligible": "Eligible officers per arm.",
        "station_period": "The station x period table the analysis read.",
        "allocation": "The sealed allocation: method, seed, schemes, digest, arms.",
        "exposure": "Training delivered: by station, by arm, movement, dose by date.",
        "descriptive": "Totals, medians, means and rates per outcome, arm and period.",
        "warnings": "Everything the analysis warned of.",
        "software": "Versions of policetrial and its numerical libraries.",
        "generated_at": "When the results were written (UTC).",
        "analyses": "Every estimate: all outcomes, methods and analysis sets.",
        "clustering": "Between-station variation per outcome (Clustering).",
        "randomisation_test": "The scheme set the randomisation tests ran over.",
        "outcomes": "Each outcome's label, kind, unit and definition.",
        "plan": "The analysis plan followed: digest, seal, deviations.",
        "missing_data": "Each questionnaire score's response patterns, what was imputed, and "
        "the delta-adjusted tipping point.",
        "complier_effect": "The effect of training received per unit of dose, its interval, "
        "the dose by station and the assumptions; null when the protocol does not ask.",
        "multiplicity": "The family of outcomes with unadjusted, Holm and step-down p-values; "
        "null when the protocol declares no family.",
        "monthly": "The report's monthly series of the primary outcome by arm, counted once by "
        "analyse; absent for a stepped wedge.",
        "questionnaire_reliability": "Alpha and omega of every questionnaire score at each "
        "time point, with the bootstrap's resamples, seed and the responses' digest; absent "
        "before any response.",
    },
}
"""Each result dataclass's fields, described (results.json's keys)."""

_RESULT_TYPES = {"Estimate": Estimate, "Clustering": Clustering, "TrialResults": TrialResults}


@dataclass(frozen=True)
class DictionaryRow:
    table: str
    field: str
    type: str
    required: str
    description: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in DICTIONARY_COLUMNS}


def _extracts(protocol: Protocol) -> list[DictionaryRow]:
    rows = []
    for kind in protocol.extract_kinds.values():
        for column in kind.columns:
            note = " Pseudonymised at import." if column.identifier else ""
            rows.append(
                DictionaryRow(
                    f"extract:{kind.name}",
                    column.name,
                    str(column.type),
                    "yes" if column.required else "no",
                    column.description + note,
                    "protocol.extracts (import)",
                )
            )
    return rows


def _outcomes(protocol: Protocol) -> list[DictionaryRow]:
    return [
        DictionaryRow(
            "outcome",
            key,
            f"{spec.kind} ({spec.unit})",
            "primary" if key == protocol.outcomes.primary else "declared",
            f"{spec.label}. {spec.definition}".strip(),
            "trial.toml [outcomes]",
        )
        for key, spec in protocol.declared.specs.items()
    ]


def _results() -> list[DictionaryRow]:
    rows = []
    for name, kind in _RESULT_TYPES.items():
        for f in fields(kind):
            rows.append(
                DictionaryRow(
                    f"results:{name}",
                    f.name,
                    str(f.type),
                    "yes",
                    RESULT_FIELDS[name][f.name],
                    "analysis.results (results.json)",
                )
            )
    return rows


def data_dictionary(protocol: Protocol) -> list[DictionaryRow]:
    """Every extract column, declared outcome and result field."""
    return [*_extracts(protocol), *_outcomes(protocol), *_results()]


def dictionary_csv(rows: list[DictionaryRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(DICTIONARY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.to_dict() for r in rows)
    return out.getvalue()


_HTML = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Data dictionary: {{ title }}</title>
<style>body{font:14px/1.5 sans-serif;margin:2rem auto;max-width:72rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.2rem .4rem;
text-align:left;vertical-align:top}th{background:#f7f9fa}</style></head>
<body><main><h1>Data dictionary: {{ title }}</h1>
<table><thead><tr>{% for c in columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in rows %}<tr>{% for c in columns %}<td>{{ r[c] }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></main></body></html>
"""
)


def dictionary_html(rows: list[DictionaryRow], *, title: str) -> str:
    return _HTML.render(title=title, columns=DICTIONARY_COLUMNS, rows=[r.to_dict() for r in rows])


def dictionary_bytes(protocol: Protocol, fmt: str) -> bytes:
    """The dictionary as CSV (`csv`) or HTML (`html`)."""
    rows = data_dictionary(protocol)
    if fmt == "csv":
        return dictionary_csv(rows).encode()
    return dictionary_html(rows, title=protocol.trial.title).encode()
