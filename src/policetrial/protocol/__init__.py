"""The protocol: a trial's `trial.toml`, read once and validated into a frozen `Protocol`.

Takes the file (or the name of a protocol shipped in `builtin/`); gives the `Protocol`
every stage is passed: design, arms, eligibility, windows, code lists, the declared
outcomes and event extracts, the analysis plan, and every word the trial's people read.
Nothing here touches a workspace.

- `schema`: the file's tables and their checks (pydantic), `load_protocol`;
- `conditions`: the little language of `where = "..."` (which incidents count);
- `outcomes`: the declared outcomes (`[outcomes.<key>]`), read and checked;
- `events`: the declared event extracts (`[events.<name>]`);
- `extracts`: the built-in extract kinds a force sends, and the declared events as kinds;
- `synthetic`: `[synth]`, the trial's synthetic force;
- `builtin/`: the shipped protocols; `instruments/`: the questionnaire instruments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policetrial import lazy_names

if TYPE_CHECKING:
    from policetrial.protocol.conditions import ConditionError, parse_condition
    from policetrial.protocol.events import EventKind
    from policetrial.protocol.extracts import BUILTIN_KINDS, Column, ExtractKind
    from policetrial.protocol.outcomes import DeclaredOutcomes, OutcomeSpec
    from policetrial.protocol.schema import (
        RANDOMISATION_COVARIATES,
        SCHEMA_VERSION,
        Protocol,
        builtin_protocol_path,
        builtin_protocols,
        load_protocol,
        parse_protocol,
    )

_HOME = {
    "ConditionError": "conditions",
    "parse_condition": "conditions",
    "EventKind": "events",
    "BUILTIN_KINDS": "extracts",
    "Column": "extracts",
    "ExtractKind": "extracts",
    "DeclaredOutcomes": "outcomes",
    "OutcomeSpec": "outcomes",
    "RANDOMISATION_COVARIATES": "schema",
    "SCHEMA_VERSION": "schema",
    "Protocol": "schema",
    "builtin_protocol_path": "schema",
    "builtin_protocols": "schema",
    "load_protocol": "schema",
    "parse_protocol": "schema",
}


# Each name from its module on first use: importing one light submodule, such as
# `extracts` for the command line's help, does not load pydantic and numpy.
__getattr__ = lazy_names(__name__, _HOME, globals())


__all__ = [
    "BUILTIN_KINDS",
    "RANDOMISATION_COVARIATES",
    "SCHEMA_VERSION",
    "Column",
    "ConditionError",
    "DeclaredOutcomes",
    "EventKind",
    "ExtractKind",
    "OutcomeSpec",
    "Protocol",
    "builtin_protocol_path",
    "builtin_protocols",
    "load_protocol",
    "parse_condition",
    "parse_protocol",
]
