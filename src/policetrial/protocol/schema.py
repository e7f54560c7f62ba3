"""The trial protocol: `trial.toml` read once into frozen, validated objects.

A protocol says everything that makes one trial differ from another: arms, eligibility,
windows, code lists, outcome definitions, randomisation and the analysis plan. Another
force or another training package is a new protocol file, not new code. The objects are
frozen and passed in to whatever needs them; nothing reads the file behind the caller's
back.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from policetrial.errors import ProtocolError
from policetrial.protocol.catalogue import OUTCOMES
from policetrial.protocol.extracts import EXTRACT_KINDS

__all__ = [
    "RANDOMISATION_COVARIATES",
    "Protocol",
    "builtin_protocol_path",
    "builtin_protocols",
    "load_protocol",
    "parse_protocol",
]

Arm = Literal["intervention", "control"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trial(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    force: str
    timezone: str = "Europe/London"


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
    mental_health_tags: tuple[str, ...] = Field(min_length=1)
    vulnerability_tags: tuple[str, ...] = ()
    warning_markers: tuple[str, ...] = ()
    grades: tuple[str, ...] = Field(min_length=1)
    response_grades: tuple[str, ...] = Field(min_length=1)
    person_roles: tuple[str, ...] = ("caller", "subject", "victim", "witness", "other")

    @model_validator(mode="after")
    def _response_grades_known(self) -> Codes:
        unknown = sorted(set(self.response_grades) - set(self.grades))
        if unknown:
            raise ValueError(f"response_grades {unknown} are not among grades {list(self.grades)}")
        return self

    @property
    def tags(self) -> tuple[str, ...]:
        """Every qualifier that counts towards the mental-health / vulnerability outcome."""
        return self.mental_health_tags + self.vulnerability_tags


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


class FrequentCaller(_Frozen):
    calls_in_month: int = Field(5, ge=1)
    calls_in_three_months: int = Field(12, ge=1)
    roles: tuple[str, ...] = ("caller",)
    adults_only: bool = True


class Definitions(_Frozen):
    office_hours: OfficeHours = OfficeHours()
    frequent_caller: FrequentCaller = FrequentCaller()


class Assignment(_Frozen):
    incidents_to_station: Literal["attending_officer", "location"] = "attending_officer"


RANDOMISATION_COVARIATES = (
    "area_type",
    "district",
    "population",
    "eligible_officers",
    *(f"baseline_{name}" for name in OUTCOMES),
)
"""Station covariates a protocol can balance on: stations-table columns, eligible
officers on the roster date, and baseline counts of any outcome (needs incidents)."""


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

    @field_validator("covariates")
    @classmethod
    def _known_covariates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in RANDOMISATION_COVARIATES]
        if unknown:
            raise ValueError(
                f"unknown covariate(s) {unknown}; expected some of {list(RANDOMISATION_COVARIATES)}"
            )
        return value

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
    primary: str
    secondary: tuple[str, ...] = ()

    @field_validator("primary")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        _check_outcome(value)
        return value

    @field_validator("secondary")
    @classmethod
    def _known_secondary(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _check_outcome(name)
        return value


def _check_outcome(name: str) -> None:
    if name not in OUTCOMES:
        raise ValueError(f"unknown outcome {name!r}; expected one of {sorted(OUTCOMES)}")


Sensitivity = Literal[
    "cluster_level", "per_protocol", "exclude_contaminated", "alternative_primary"
]


class Analysis(_Frozen):
    alpha: float = Field(0.05, gt=0, lt=0.5)
    primary_method: Literal["negative_binomial"] = "negative_binomial"
    sensitivity: tuple[Sensitivity, ...] = ("cluster_level",)
    binary_outcomes: tuple[Literal["tagged", "s136"], ...] = ("tagged", "s136")
    binary_methods: tuple[Literal["gee_avg", "gee_kc", "gee_md", "gee_fg"], ...] = (
        "gee_avg",
        "gee_kc",
        "gee_md",
        "gee_fg",
    )
    per_protocol_min_dose: float = Field(0.5, gt=0, le=1)
    alternative_primary: str = "police_response"

    @field_validator("alternative_primary")
    @classmethod
    def _known_alternative(cls, value: str) -> str:
        _check_outcome(value)
        return value


AuditPackField = Literal[
    "channel", "out_of_hours", "police_response", "persons_linked", "officers_attending"
]


class Audit(_Frozen):
    """The independent audit of tags: how many incidents, drawn how, shown how."""

    fraction: float = Field(0.10, gt=0, le=1)
    """Share of the included (tagged or marked) incidents drawn for the audit."""
    seed: int = Field(ge=0)
    untagged_fraction: float = Field(0.0, ge=0, le=1)
    """Share of the other incidents in the windows drawn too, to estimate missed tags."""
    double_rated_fraction: float = Field(0.2, ge=0, le=1)
    """Share of the drawn incidents that a second rater rates (for agreement)."""
    pack_fields: tuple[AuditPackField, ...] = ("channel",)
    """Structured fields the auditor sees besides date, time, codes, grade, tags, markers."""
    pack_dates: Literal["date_time", "weekday_time"] = "weekday_time"
    """"weekday_time" (the default) shows only the weekday and time of day: the calendar
    date would tell the auditor the period, and with staggered follow-up windows hint at
    the station. "date_time" shows the date too, and the report says the pack did."""


class Report(_Frozen):
    suppress_below: int = Field(5, ge=0)


class Survey(_Frozen):
    """Officer questionnaires: which instruments, where links point, private wording."""

    instruments: tuple[str, ...] = Field(("connect-officer",), min_length=1)
    link_base_url: str = "http://127.0.0.1:8000/survey"
    wording: str | None = None
    max_missing_fraction: float | None = Field(None, ge=0, lt=1)

    @field_validator("link_base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// address, got {value!r}")
        return value.rstrip("/")


class Protocol(_Frozen):
    """A whole trial protocol. Build with `load_protocol` or `parse_protocol`."""

    schema_version: Literal[1] = 1
    trial: Trial
    arms: Arms
    eligibility: Eligibility
    targets: Targets
    periods: Periods
    codes: Codes
    definitions: Definitions = Definitions()
    assignment: Assignment = Assignment()
    randomisation: Randomisation
    outcomes: Outcomes
    analysis: Analysis = Analysis()
    audit: Audit
    report: Report = Report()
    survey: Survey = Survey()
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for kind, mapping in value.items():
            if kind not in EXTRACT_KINDS:
                raise ValueError(
                    f"unknown extract kind {kind!r}; expected one of {list(EXTRACT_KINDS)}"
                )
            known = {c.name for c in EXTRACT_KINDS[kind].columns}
            for ours in mapping:
                if ours not in known:
                    raise ValueError(
                        f"[columns.{kind}] maps {ours!r}, which is not a column of {kind}; "
                        f"expected some of {sorted(known)}"
                    )
        return value


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
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            problems.append(f"key '{key}' is missing")
        elif error["type"] == "extra_forbidden":
            problems.append(f"key '{key}' is not a protocol setting")
        else:
            problems.append(f"key '{key}': {message} (got {error.get('input')!r})")
    return f"{source}: " + "; ".join(problems)
