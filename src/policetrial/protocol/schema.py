"""The trial protocol: `trial.toml` read once into frozen, validated objects.

A protocol says everything that makes one trial differ from another: arms, eligibility,
windows, code lists, the outcomes and the event extracts they count, randomisation, the
analysis plan and every word its people read. Another force or another training package is
a new protocol file, not new code. The objects are frozen and passed in to whatever needs
them; nothing reads the file behind the caller's back.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import zoneinfo
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from policetrial.errors import ProtocolError
from policetrial.protocol.base import IDENTIFIER
from policetrial.protocol.base import Frozen as _Frozen
from policetrial.protocol.conditions import ConditionError
from policetrial.protocol.events import EventKind
from policetrial.protocol.extracts import BUILTIN_KINDS, ExtractKind, event_extract
from policetrial.protocol.outcomes import (
    COUNT_KINDS,
    RESERVED,
    DeclaredOutcome,
    DeclaredOutcomes,
    resolve_outcomes,
)
from policetrial.protocol.synthetic import Synth

__all__ = [
    "RANDOMISATION_COVARIATES",
    "SCHEMA_VERSION",
    "Protocol",
    "builtin_protocol_path",
    "builtin_protocols",
    "load_protocol",
    "parse_protocol",
    "resolve_protocol",
]

SCHEMA_VERSION = 2
"""The protocol file format: 2 declares its outcomes, events and wording (docs/protocol.md)."""

Arm = Literal["intervention", "control"]


class Trial(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    force: str
    timezone: str = "Europe/London"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected an IANA name such as 'Europe/London'"
            ) from None
        return value


class Arms(_Frozen):
    intervention: str
    control: str


class Eligibility(_Frozen):
    teams: tuple[str, ...] = Field(min_length=1)
    ranks: tuple[str, ...] = Field(min_length=1)
    on_date: dt.date


class Targets(_Frozen):
    stations: int = Field(ge=2)
    officers_intervention: int = Field(ge=0)
    officers_control: int = Field(ge=0)


class Baseline(_Frozen):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Baseline:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class FollowUp(_Frozen):
    anchor: Literal["last_session", "first_session"] = "last_session"
    months_after: int = Field(ge=0, le=60)
    length_months: int = Field(ge=1, le=60)
    control_anchor: Literal["stratum_median", "median"] | dt.date = "stratum_median"


class Periods(_Frozen):
    baseline: Baseline
    followup: FollowUp


class Codes(_Frozen):
    """The protocol's code lists: `grades` and `person_roles` check the incident extracts;
    any other list (qualifiers, markers, closing codes...) is named by conditions as `@name`."""

    model_config = ConfigDict(frozen=True, extra="allow")
    grades: tuple[str, ...] = Field(min_length=1)
    person_roles: tuple[str, ...] = ("caller", "subject", "victim", "witness", "other")
    __pydantic_extra__: dict[str, tuple[str, ...]]

    @model_validator(mode="after")
    def _lists_named_and_known(self) -> Codes:
        for name, values in self.lists.items():
            if not IDENTIFIER.match(name):
                raise ValueError(
                    f"code list name {name!r} must be lower case letters, digits and underscores"
                )
            if not values:
                raise ValueError(f"code list {name!r} is empty")
        if "response_grades" in self.lists:
            unknown = sorted(set(self.lists["response_grades"]) - set(self.grades))
            if unknown:
                raise ValueError(
                    f"response_grades {unknown} are not among grades {list(self.grades)}"
                )
        return self

    @property
    def lists(self) -> dict[str, tuple[str, ...]]:
        """Every code list by name, `grades` and `person_roles` among them."""
        extra = {k: tuple(v) for k, v in (self.model_extra or {}).items()}
        return {"grades": self.grades, "person_roles": self.person_roles, **extra}


class OfficeHours(_Frozen):
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    bank_holidays: str | None = "ENG"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected a time as HH:MM, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHours:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.bank_holidays not in (None, "ENG", "WLS", "SCT", "NIR", "none"):
            raise ValueError(
                "bank_holidays must be one of ENG, WLS, SCT, NIR or none, "
                f"got {self.bank_holidays!r}"
            )
        return self


class Definitions(_Frozen):
    office_hours: OfficeHours = OfficeHours()


class Assignment(_Frozen):
    incidents_to_station: Literal["attending_officer", "location"] = "attending_officer"


RANDOMISATION_COVARIATES = ("area_type", "district", "population", "eligible_officers")
"""Station covariates a protocol can balance on besides `baseline_<outcome>`, the baseline
count of any of its count outcomes (which needs the incidents): stations-table columns and
eligible officers on the roster date."""


class Randomisation(_Frozen):
    method: Literal["simple", "stratified", "matched", "constrained"] = "stratified"
    strata: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    weights: dict[str, float] = Field(default_factory=dict)
    intervention_stations: int | None = Field(None, ge=1)
    per_stratum: dict[str, int] = Field(default_factory=dict)
    metric: Literal["l1", "l2"] = "l2"
    cutoff: float | None = Field(None, gt=0, le=1)
    schemes: int | None = Field(None, ge=2)
    sample_size: int = Field(100_000, ge=2)
    seed: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Randomisation:
        if self.method == "constrained" and not self.covariates:
            raise ValueError("constrained randomisation needs covariates to balance")
        if self.cutoff is not None and self.schemes is not None:
            raise ValueError("give cutoff or schemes, not both")
        for name, label in ((self.categorical, "categorical"), (tuple(self.weights), "weights")):
            stray = [c for c in name if c not in self.covariates]
            if stray:
                raise ValueError(f"{label} names {stray}, which are not among the covariates")
        negative = {k: w for k, w in self.weights.items() if not w >= 0}
        if negative:
            raise ValueError(f"weights must be >= 0, got {negative}")
        if self.per_stratum and not self.strata:
            raise ValueError("per_stratum needs strata")
        if any(v < 0 for v in self.per_stratum.values()):
            raise ValueError(f"per_stratum counts must be >= 0, got {self.per_stratum}")
        return self


class Outcomes(_Frozen):
    """`primary` and `secondary` name outcomes declared as `[outcomes.<key>]` tables."""

    primary: str
    secondary: tuple[str, ...] = ()
    declared: dict[str, DeclaredOutcome] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        named = {k: v for k, v in value.items() if k in ("primary", "secondary", "declared")}
        declared = {k: v for k, v in value.items() if k not in named}
        return {**named, "declared": {**named.get("declared", {}), **declared}}

    @field_validator("declared")
    @classmethod
    def _named(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not IDENTIFIER.match(key):
                raise ValueError(
                    f"outcome key {key!r} must be lower case letters, digits and underscores"
                )
            if key in RESERVED:
                raise ValueError(f"{key!r} is a reserved name; call the outcome something else")
        return value

    @model_validator(mode="after")
    def _named_outcomes_declared(self) -> Outcomes:
        if not self.declared:
            raise ValueError(
                "no outcome is declared; add an [outcomes.<key>] table for each (docs/protocol.md)"
            )
        for name in (self.primary, *self.secondary):
            if name not in self.declared:
                raise ValueError(
                    f"unknown outcome {name!r}; declared outcomes: {', '.join(self.declared)}"
                )
        if self.declared[self.primary].kind not in COUNT_KINDS:
            raise ValueError(
                f"the primary outcome {self.primary!r} is a {self.declared[self.primary].kind}; "
                f"the primary analysis needs a count ({', '.join(COUNT_KINDS)})"
            )
        return self


Sensitivity = Literal[
    "cluster_level", "per_protocol", "exclude_contaminated", "alternative_primary"
]


class Analysis(_Frozen):
    alpha: float = Field(0.05, gt=0, lt=0.5)
    primary_method: Literal["negative_binomial"] = "negative_binomial"
    sensitivity: tuple[Sensitivity, ...] = ("cluster_level",)
    binary_methods: tuple[Literal["gee_avg", "gee_kc", "gee_md", "gee_fg"], ...] = (
        "gee_avg",
        "gee_kc",
        "gee_md",
        "gee_fg",
    )
    """The methods for `incident_binary` outcomes, the first being the main one."""
    per_protocol_min_dose: float = Field(0.5, gt=0, le=1)
    alternative_primary: str | None = None
    """A count outcome analysed as the primary one would be (sensitivity
    `alternative_primary`)."""


PACK_FIELDS = ("channel", "out_of_hours", "attended", "persons_linked", "officers_attending")
"""Structured fields an audit pack can show besides the codes; any incident outcome's key
too (yes / no)."""


class Audit(_Frozen):
    """The independent audit of tags: how many incidents, drawn how, shown how."""

    fraction: float = Field(0.10, gt=0, le=1)
    """Share of the included (tagged or marked) incidents drawn for the audit."""
    seed: int = Field(ge=0)
    untagged_fraction: float = Field(0.0, ge=0, le=1)
    """Share of the other incidents in the windows drawn too, to estimate missed tags."""
    double_rated_fraction: float = Field(0.2, ge=0, le=1)
    """Share of the drawn incidents that a second rater rates (for agreement)."""
    pack_fields: tuple[str, ...] = ("channel",)
    """Structured fields the auditor sees besides date, time, codes, grade, tags, markers:
    some of `PACK_FIELDS`, or incident outcomes' keys."""
    pack_dates: Literal["date_time", "weekday_time"] = "weekday_time"
    """"weekday_time" (the default) shows only the weekday and time of day: the calendar
    date would tell the auditor the period, and with staggered follow-up windows hint at
    the station. "date_time" shows the date too, and the report says the pack did."""
    flagged: str | None = None
    """The incident outcome whose incidents are audited (default: the primary outcome)."""
    question: str = "Is the flag that brought this incident into the trial's count relevant?"
    """What the auditor is asked about each flagged incident."""
    question_unflagged: str = "Should this incident have carried the trial's flag?"
    """What the auditor is asked about an unflagged incident (`untagged_fraction`)."""
    answers: tuple[str, str, str] = ("relevant", "not relevant", "cannot tell")
    """The auditor's words for a flagged incident: the flag is right, it is wrong, cannot
    tell (stored as yes, no, cannot_tell)."""
    answers_unflagged: tuple[str, str, str] = ("yes", "no", "cannot tell")
    """The words for an unflagged incident: it should have been flagged, it should not,
    cannot tell."""

    @model_validator(mode="after")
    def _distinct_answers(self) -> Audit:
        for name, words in (
            ("answers", self.answers),
            ("answers_unflagged", self.answers_unflagged),
        ):
            folded = [w.strip().casefold() for w in words]
            if len(set(folded)) != 3 or not all(folded):
                raise ValueError(f"{name} must be three different words, got {list(words)}")
        return self


class Report(_Frozen):
    suppress_below: int = Field(5, ge=0)
    monthly_outcome: str | None = None
    """The incident count drawn month by month over the whole extract (default: the primary
    outcome, when it counts incidents)."""


class Survey(_Frozen):
    """Officer questionnaires: which instruments, where links point, private wording."""

    instruments: tuple[str, ...] = Field(("connect-officer",), min_length=1)
    link_base_url: str = "http://127.0.0.1:8000/survey"
    wording: str | None = None
    max_missing_fraction: float | None = Field(None, ge=0, lt=1)
    introduction: str = (
        "This questionnaire is part of a research study of police training. Your answers are "
        "kept under a code, never with your name."
    )
    """The first words an officer reads on the questionnaire page."""

    @field_validator("link_base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// address, got {value!r}")
        return value.rstrip("/")


class Protocol(_Frozen):
    """A whole trial protocol. Build with `load_protocol` or `parse_protocol`."""

    schema_version: Literal[2] = 2
    trial: Trial
    arms: Arms
    eligibility: Eligibility
    targets: Targets
    periods: Periods
    codes: Codes
    definitions: Definitions = Definitions()
    assignment: Assignment = Assignment()
    randomisation: Randomisation
    events: dict[str, EventKind] = Field(default_factory=dict)
    outcomes: Outcomes
    analysis: Analysis = Analysis()
    audit: Audit
    report: Report = Report()
    survey: Survey = Survey()
    synth: Synth = Synth()
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _event_names(cls, value: dict[str, EventKind]) -> dict[str, EventKind]:
        for name in value:
            if not IDENTIFIER.match(name):
                raise ValueError(
                    f"event name {name!r} must be lower case letters, digits and underscores"
                )
            if name in BUILTIN_KINDS:
                raise ValueError(f"{name!r} is a built-in extract kind; name the event otherwise")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        try:
            declared = self.declared
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        counts = declared.counts
        covariates = (
            *RANDOMISATION_COVARIATES,
            *(f"baseline_{k}" for k in counts),
        )
        unknown = [c for c in self.randomisation.covariates if c not in covariates]
        if unknown:
            raise ValueError(
                f"key 'randomisation.covariates': unknown covariate(s) {unknown}; "
                f"expected some of {list(covariates)}"
            )
        alternative = self.analysis.alternative_primary
        if alternative is not None and alternative not in counts:
            raise ValueError(
                f"key 'analysis.alternative_primary': {alternative!r} is not a declared count "
                f"outcome; expected one of {list(counts)}"
            )
        if "alternative_primary" in self.analysis.sensitivity and alternative is None:
            raise ValueError(
                "key 'analysis.sensitivity' names alternative_primary, but alternative_primary "
                "names no outcome"
            )
        flagged = self.audit_outcome
        incident_outcomes = [s.key for s in declared.of_kind("incident_count")]
        if flagged not in incident_outcomes:
            raise ValueError(
                f"key 'audit.flagged': the audit rates incidents of an incident_count outcome; "
                f"{flagged!r} is not one (expected one of {incident_outcomes})"
            )
        fields = (
            *PACK_FIELDS,
            *(s.key for s in declared.of_kind("incident_count", "incident_binary")),
        )
        stray = [f for f in self.audit.pack_fields if f not in fields]
        if stray:
            raise ValueError(
                f"key 'audit.pack_fields': unknown {stray}; expected some of {list(fields)}"
            )
        monthly = self.report.monthly_outcome
        if monthly is not None and monthly not in incident_outcomes:
            raise ValueError(
                f"key 'report.monthly_outcome': {monthly!r} is not an incident_count outcome; "
                f"expected one of {incident_outcomes}"
            )
        kinds = self.extract_kinds
        for kind, mapping in self.columns.items():
            if kind not in kinds:
                raise ValueError(
                    f"key 'columns': unknown extract kind {kind!r}; expected one of {list(kinds)}"
                )
            known = {c.name for c in kinds[kind].columns}
            for ours in mapping:
                if ours not in known:
                    raise ValueError(
                        f"[columns.{kind}] maps {ours!r}, which is not a column of {kind}; "
                        f"expected some of {sorted(known)}"
                    )
        for name, event in self.events.items():
            for column, spec in event.columns.items():
                if isinstance(spec.codes, str) and spec.codes[1:] not in self.codes.lists:
                    raise ValueError(
                        f"key 'events.{name}.columns.{column}': unknown code list {spec.codes!r}; "
                        f"the protocol's [codes] has {', '.join(self.codes.lists)}"
                    )
        target = self.synth.target_outcome
        if target is not None and target not in declared:
            raise ValueError(
                f"key 'synth.target_outcome': {target!r} is not a declared outcome; "
                f"expected one of {list(declared.specs)}"
            )
        stray_events = [e for e in self.synth.events if e not in self.events]
        if stray_events:
            raise ValueError(f"key 'synth.events' names undeclared events {stray_events}")
        return self

    @property
    def declared(self) -> DeclaredOutcomes:
        """Every declared outcome with its conditions read (`policetrial.protocol.outcomes`)."""
        return resolve_outcomes(
            self.outcomes.declared,
            code_lists=self.codes.lists,
            events=self.events,
            person_roles=self.codes.person_roles,
        )

    @property
    def extract_kinds(self) -> dict[str, ExtractKind]:
        """Every extract this trial imports: the built-in kinds, then its declared events."""
        return {**BUILTIN_KINDS, **{k: event_extract(k, e) for k, e in self.events.items()}}

    @property
    def import_order(self) -> tuple[str, ...]:
        """The order in which extracts must be imported: each refers only to kinds before it."""
        return tuple(self.extract_kinds)

    @property
    def audit_outcome(self) -> str:
        """The incident outcome whose incidents the audit rates."""
        return self.audit.flagged or self.outcomes.primary

    @property
    def monthly_outcome(self) -> str | None:
        """The incident outcome the report draws month by month, if any."""
        if self.report.monthly_outcome is not None:
            return self.report.monthly_outcome
        primary = self.outcomes.primary
        return primary if self.outcomes.declared[primary].kind == "incident_count" else None

    def outcome_label(self, key: str) -> str:
        spec = self.outcomes.declared.get(key)
        return key if spec is None else spec.label


def builtin_protocols() -> list[str]:
    """Names of the protocols shipped with the package (`connect`, ...)."""
    folder = resources.files("policetrial.protocol") / "builtin"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def builtin_protocol_path(name: str) -> Path:
    """The path of a shipped protocol, by name."""
    if name not in builtin_protocols():
        raise ProtocolError(f"no built-in protocol {name!r}; expected one of {builtin_protocols()}")
    return Path(str(resources.files("policetrial.protocol") / "builtin" / f"{name}.toml"))


def resolve_protocol(name_or_path: str | Path) -> Protocol:
    """A shipped protocol by name (`connect`, ...), or the protocol file at a path."""
    if isinstance(name_or_path, str) and name_or_path in builtin_protocols():
        return load_protocol(builtin_protocol_path(name_or_path))
    return load_protocol(name_or_path)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file; errors name the file, the key and what was expected."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path}: cannot read the protocol ({exc})") from None
    return parse_protocol(text, source=str(path))


def parse_protocol(text: str, *, source: str = "trial.toml") -> Protocol:
    """Validate protocol text (TOML) into a frozen `Protocol`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{source}: not valid TOML: {exc}") from None
    version = raw.get("schema_version", 1)
    if version != SCHEMA_VERSION:
        raise ProtocolError(
            f"{source}: schema_version {version!r} is not read by this policetrial (it reads "
            f"{SCHEMA_VERSION}). Version 2 declares each outcome as an [outcomes.<key>] table "
            "and each event extract as [events.<name>]: copy them from the shipped protocol "
            "closest to yours (`policetrial init --protocol connect`) and see docs/protocol.md"
        )
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"] if part != "declared")
        message = error["msg"].removeprefix("Value error, ")
        if not key:
            problems.append(message)
        elif error["type"] == "missing":
            problems.append(f"key '{key}' is missing")
        elif error["type"] == "extra_forbidden":
            problems.append(f"key '{key}' is not a protocol setting")
        else:
            problems.append(f"key '{key}': {message} (got {error.get('input')!r})")
    return f"{source}: " + "; ".join(problems)
