"""The protocol: a trial's `trial.toml`, read once and validated into a frozen `Protocol`.

Takes the file (or the name of a protocol shipped in `builtin/`); gives the `Protocol`
every stage is passed: design, arms, eligibility, windows, code lists, outcomes, analysis
plan, report settings. Nothing here touches a workspace.

- `schema`: the file's tables and their checks (pydantic), `load_protocol`;
- `extracts`: the extract kinds a force sends, their columns, keys and identifiers;
- `catalogue`: the outcomes a protocol can name;
- `builtin/`: the shipped protocols; `instruments/`: the questionnaire instruments.
"""

from policetrial.protocol.catalogue import OUTCOMES, Outcome
from policetrial.protocol.extracts import EXTRACT_KINDS, IMPORT_ORDER, Column, ExtractKind
from policetrial.protocol.schema import (
    RANDOMISATION_COVARIATES,
    Protocol,
    builtin_protocol_path,
    builtin_protocols,
    load_protocol,
    parse_protocol,
)

__all__ = [
    "EXTRACT_KINDS",
    "IMPORT_ORDER",
    "OUTCOMES",
    "RANDOMISATION_COVARIATES",
    "Column",
    "ExtractKind",
    "Outcome",
    "Protocol",
    "builtin_protocol_path",
    "builtin_protocols",
    "load_protocol",
    "parse_protocol",
]
