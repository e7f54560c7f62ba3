"""The tables of a protocol file beside its outcomes and events: `[trial]`, `[arms]`,
`[eligibility]`, `[targets]`, `[periods]`, `[codes]`, `[definitions]`, `[assignment]`,
`[randomisation]`, `[analysis]`, `[audit]`, `[report]`, `[survey]` and `[training]`, each
checked on its own. What ties them together (and to the outcomes) is checked by `schema.Protocol`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from policetrial.protocol.base import IDENTIFIER
from policetrial.protocol.base import Frozen as _Frozen
from policetrial.protocol.missing_data import MissingData
from policetrial.protocol.outcomes import COUNT_KINDS, RESERVED, DeclaredOutcome

__all__ = [
    "PACK_FIELDS",
    "PARALLEL_SENSITIVITY",
    "RANDOMISATION_COVARIATES",
    "STEPPED_SENSITIVITY",
    "Analysis",
    "Arm",
    "Arms",
    "Assignment",
    "Audit",
    "Baseline",
    "Codes",
    "Definitions",
    "Eligibility",
    "FollowUp",
    "OfficeHours",
    "Outcomes",
    "Periods",
    "Randomisation",
    "Report",
    "Survey",
    "Targets",
    "Training",
    "Trial",
]


Arm = Literal["intervention", "control"]


class Trial(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    force: str
    timezone: str = "Europe/London"
    clock_changes: Literal["keep", "reject"] = "keep"
    """Local times that did not happen (clocks forward) or happened twice (clocks back):
    "keep" stores them as written, with a warning; "reject" rejects the rows."""

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
    """`[arms]`: each arm's label. Two arms are `intervention` and `control`; a trial of more
    arms adds a key for each further training arm (`online = "E-learning"`)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    intervention: str
    control: str

    @model_validator(mode="after")
    def _further_arms(self) -> Arms:
        for key, value in (self.model_extra or {}).items():
            if not IDENTIFIER.match(key):
                raise ValueError(
                    f"arm key {key!r} must be lower case letters, digits and underscores"
                )
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f'arm {key!r} needs its label as text, e.g. {key} = "..."')
        return self

    @property
    def labels(self) -> dict[str, str]:
        """Arm key -> label: the training arms in the order given, then control."""
        extra = {str(k): str(v) for k, v in (self.model_extra or {}).items()}
        return {"intervention": self.intervention, **extra, "control": self.control}

    @property
    def trained(self) -> tuple[str, ...]:
        """The training arms (every arm but control)."""
        return tuple(k for k in self.labels if k != "control")

    @property
    def multiple(self) -> bool:
        """More than one training arm."""
        return len(self.labels) > 2


class Eligibility(_Frozen):
    teams: tuple[str, ...] = Field(min_length=1)
    ranks: tuple[str, ...] = Field(min_length=1)
    on_date: dt.date


class Targets(_Frozen):
    stations: int = Field(ge=2)
    officers_intervention: int = Field(0, ge=0)
    """Eligible officers expected in intervention stations (a parallel trial)."""
    officers_control: int = Field(0, ge=0)
    """Eligible officers expected in control stations (a parallel trial)."""
    officers: int | None = Field(None, ge=0)
    """Eligible officers to be trained across every station (a stepped wedge)."""
    officers_by_arm: dict[str, int] = Field(default_factory=dict)
    """Eligible officers expected in each arm's stations (a trial of more than two arms)."""


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


RANDOMISATION_COVARIATES = (
    "area_type",
    "district",
    "force",
    "population",
    "eligible_officers",
)
"""Station covariates a protocol can balance on besides `baseline_<outcome>`, the baseline
count of any of its count outcomes (which needs the incidents): stations-table columns and
eligible officers on the roster date. `force` is the force a station belongs to, in a
trial of several forces (`[forces]`)."""


class Randomisation(_Frozen):
    method: Literal["simple", "stratified", "matched", "constrained"] = "stratified"
    strata: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    weights: dict[str, float] = Field(default_factory=dict)
    intervention_stations: int | None = Field(None, ge=1)
    per_stratum: dict[str, int] = Field(default_factory=dict)
    arm_stations: dict[str, int] = Field(default_factory=dict)
    """Stations in each arm of a trial of more than two arms (default: as equal as the
    stations allow)."""
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
    "cluster_level",
    "per_protocol",
    "exclude_contaminated",
    "alternative_primary",
    "mixed_model",
    "within_period",
]
PARALLEL_SENSITIVITY = (
    "cluster_level",
    "per_protocol",
    "exclude_contaminated",
    "alternative_primary",
)
STEPPED_SENSITIVITY = ("mixed_model", "within_period", "alternative_primary")


class Multiplicity(_Frozen):
    """The family of outcomes whose p-values are adjusted together, and how
    (`policetrial.analysis.multiplicity`)."""

    family: tuple[str, ...] = Field(min_length=2)
    """Primary or secondary outcomes (count or incident-level binary), at least two."""
    method: Literal["holm", "stepdown"] = "stepdown"
    """"stepdown": the permutation step-down over the sealed scheme set, which uses the
    correlation between outcomes; "holm": Holm's adjustment. Both are reported; this one
    is the protocol's."""


class Analysis(_Frozen):
    alpha: float = Field(0.05, gt=0, lt=0.5)
    primary_method: Literal["negative_binomial", "stepped_wedge_randomisation"] | None = None
    """Default: `negative_binomial` for a parallel trial, `stepped_wedge_randomisation` for
    a stepped wedge."""
    sensitivity: tuple[Sensitivity, ...] | None = None
    """The sensitivity analyses (default: `cluster_level` for a parallel trial, `mixed_model`
    and `within_period` for a stepped wedge). Read them as `Protocol.sensitivity`."""
    adjust_for_strata: bool = False
    """Put the randomisation's strata in every model (the count analyses and the GEE), as
    stratification factors belong in the analysis (EMA, Guideline on adjustment for baseline
    covariates, CPMP/295050/2013; CONSORT for cluster trials, item 12a). The randomisation
    tests run over the stratified scheme set either way; off by default so that a trial's
    registered analysis is not changed under it."""
    binary_methods: tuple[
        Literal["cluster_randomisation", "gee_avg", "gee_kc", "gee_md", "gee_fg"], ...
    ] = (
        "cluster_randomisation",
        "gee_avg",
        "gee_kc",
        "gee_md",
        "gee_fg",
    )
    """The methods for `incident_binary` outcomes, the first being the main one (see
    `policetrial.analysis.binary`)."""
    per_protocol_min_dose: float = Field(0.5, gt=0, le=1)
    primary_arm: str | None = None
    """A trial of more than two arms: the training arm whose comparison with control is the
    primary one (default `intervention`)."""
    alternative_primary: str | None = None
    """A count outcome analysed as the primary one would be (sensitivity
    `alternative_primary`)."""
    missing_data: MissingData = MissingData()
    """Missing questionnaire scores (`[analysis.missing_data]`)."""
    complier_effect: bool = False
    """Also estimate the effect of training received: the complier average causal effect
    per unit of training dose on the primary outcome (`policetrial.analysis.compliers`)."""
    multiplicity: Multiplicity | None = None
    """The family of outcomes adjusted for multiplicity; None: no adjustment (the report
    says so)."""


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


class Training(_Frozen):
    """`[training]`: what the trial states about its training (the `intervention` arm's), in
    the words its TIDieR description prints (Hoffmann et al., BMJ 2014;348:g1687). Every key
    is optional: one left out keeps its TIDieR item "to write", because only the trial team
    knows it; nothing here changes an analysis. Delivery as it happened (sessions, dates,
    trainers, attendance) comes from the training records, not from here."""

    rationale: str | None = None
    """TIDieR 2, why: the rationale, theory or goal of the training's essential elements."""
    materials: str | None = None
    """TIDieR 3: the materials used (manuals, slides, videos) and where they can be had."""
    procedures: str | None = None
    """TIDieR 4: what the sessions do (activities, exercises, support between sessions)."""
    provider: str | None = None
    """TIDieR 5, who provided: the trainers' background, expertise and own training
    (a role or organisation, never a name)."""
    mode: str | None = None
    """TIDieR 6, how: face-to-face, online or other, individually or in groups."""
    location: str | None = None
    """TIDieR 7, where: the type of place the sessions are held and what they need."""
    schedule: str | None = None
    """TIDieR 8, when and how much, as planned: sessions, their length, over what period."""
    tailoring: str | None = None
    """TIDieR 9: how the training is adapted to a station, team or officer, if it is."""
