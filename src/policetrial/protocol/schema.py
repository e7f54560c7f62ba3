"""The trial protocol: `trial.toml` read once into frozen, validated objects.

A protocol says everything that makes one trial differ from another: arms, eligibility,
windows, code lists, the outcomes and the event extracts they count, randomisation, the
analysis plan and every word its people read. Another force or another training package is
a new protocol file, not new code. The objects are frozen and passed in to whatever needs
them; nothing reads the file behind the caller's back.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from policetrial.errors import ProtocolError
from policetrial.protocol.base import IDENTIFIER
from policetrial.protocol.base import Frozen as _Frozen
from policetrial.protocol.code_map import CodeMapping, code_map_entries
from policetrial.protocol.conditions import ConditionError
from policetrial.protocol.design import Design
from policetrial.protocol.events import EventKind
from policetrial.protocol.extracts import BUILTIN_KINDS, ExtractKind, event_extract
from policetrial.protocol.outcomes import (
    DeclaredOutcomes,
    resolve_outcomes,
)
from policetrial.protocol.sections import (
    PACK_FIELDS,
    RANDOMISATION_COVARIATES,
    Analysis,
    Arms,
    Assignment,
    Audit,
    Codes,
    Definitions,
    Eligibility,
    Outcomes,
    Periods,
    Randomisation,
    Report,
    Survey,
    Targets,
    Training,
    Trial,
)
from policetrial.protocol.shape import check_shape
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

FORCE_CODE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
"""A force's code: short, lower case, safe in a folder name and a pseudonym's namespace."""

STRATA_COLUMNS = ("area_type", "district", "force")
"""The stations extract's columns a randomisation can be stratified by."""

SCHEMA_VERSION = 2
"""The protocol file format: 2 declares its outcomes, events and wording (docs/protocol.md)."""


class Protocol(_Frozen):
    """A whole trial protocol. Build with `load_protocol` or `parse_protocol`."""

    schema_version: Literal[2] = 2
    trial: Trial
    arms: Arms
    eligibility: Eligibility
    targets: Targets
    design: Design = Design()
    periods: Periods | None = None
    """The baseline and follow-up windows of a parallel trial (a stepped wedge's periods
    are its `[design]`'s)."""
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
    training: Training = Training()
    synth: Synth = Synth()
    forces: dict[str, str] = Field(default_factory=dict)
    """A trial of several forces: each force's code (as `policetrial import --force` and the
    stations extract's `force` column give it) and its name. Empty for a trial of one force
    (`[trial] force`)."""
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    code_map: dict[str, dict[str, tuple[CodeMapping, ...]]] = Field(default_factory=dict)
    """A force's own codes onto the protocol's, by column (`policetrial.protocol.code_map`)."""

    @field_validator("code_map", mode="before")
    @classmethod
    def _code_map(cls, value: object) -> object:
        return code_map_entries(value)

    @field_validator("forces")
    @classmethod
    def _force_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, name in value.items():
            if not FORCE_CODE.match(code):
                raise ValueError(
                    f"force code {code!r} must be lower case letters, digits and hyphens, "
                    "starting with a letter (e.g. north-vale)"
                )
            if not name.strip():
                raise ValueError(f"force {code!r} needs a name")
        if len(value) == 1:
            raise ValueError(
                "[forces] names one force; a trial of one force names it in [trial] force "
                "and leaves [forces] out"
            )
        return value

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
        check_shape(self)
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
        stray_strata = [s for s in self.randomisation.strata if s not in STRATA_COLUMNS]
        if stray_strata:
            raise ValueError(
                f"key 'randomisation.strata': unknown {stray_strata}; strata are stations "
                f"columns, some of {list(STRATA_COLUMNS)}"
            )
        if "force" in (*self.randomisation.strata, *self.randomisation.covariates) and not (
            self.forces
        ):
            raise ValueError(
                "key 'randomisation': 'force' is a stratum or covariate, but the protocol has "
                "no [forces] table naming the trial's forces"
            )
        alternative = self.analysis.alternative_primary
        if alternative is not None and alternative not in counts:
            raise ValueError(
                f"key 'analysis.alternative_primary': {alternative!r} is not a declared count "
                f"outcome; expected one of {list(counts)}"
            )
        if "alternative_primary" in self.sensitivity and alternative is None:
            raise ValueError(
                "key 'analysis.sensitivity' names alternative_primary, but alternative_primary "
                "names no outcome"
            )
        self._check_estimands()
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
        self._check_code_map(kinds)
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
        rates = self.synth.force_rates
        stray_rates = {f: r for f, r in rates.items() if f not in self.forces or r <= 0}
        if stray_rates:
            raise ValueError(
                f"key 'synth.force_rates': {stray_rates} are not positive rates of the "
                f"protocol's [forces] ({', '.join(self.forces) or 'none'})"
            )
        stray_events = [e for e in self.synth.events if e not in self.events]
        if stray_events:
            raise ValueError(f"key 'synth.events' names undeclared events {stray_events}")
        return self

    def _check_estimands(self) -> None:
        """The complier effect and the multiplicity family: a parallel two-arm trial's, over
        outcomes the protocol names (each declared outcome's main test runs over the scheme
        set, which the step-down needs)."""
        plan = self.analysis
        two_arm = not self.design.stepped and len(self.arms.labels) == 2
        for key, asked in (
            ("complier_effect", plan.complier_effect),
            ("multiplicity", plan.multiplicity is not None),
        ):
            if asked and not two_arm:
                raise ValueError(
                    f"key 'analysis.{key}': only a parallel trial of two arms has it (a "
                    "trial of more arms adjusts its comparisons by Holm already); remove it"
                )
        family = plan.multiplicity.family if plan.multiplicity is not None else ()
        named = (self.outcomes.primary, *self.outcomes.secondary)
        repeated = sorted({k for k in family if family.count(k) > 1})
        if repeated:
            raise ValueError(f"key 'analysis.multiplicity.family' repeats {repeated}")
        for key in family:
            if key not in named:
                raise ValueError(
                    f"key 'analysis.multiplicity.family': {key!r} is not the primary or a "
                    f"secondary outcome; expected some of {list(named)}"
                )

    def _check_code_map(self, kinds: dict[str, ExtractKind]) -> None:
        mappable = {
            c.name: (kind.name, c)
            for kind in kinds.values()
            for c in kind.columns
            if c.code or c.choices is not None
        }
        for column, entries in self.code_map.items():
            if column not in mappable:
                raise ValueError(
                    f"key 'code_map.{column}': {column!r} is not a code column of any extract; "
                    f"expected one of {sorted(mappable)}"
                )
            kind, spec = mappable[column]
            if spec.choices is None:
                continue
            allowed = spec.choices
            if allowed and allowed[0].startswith("@"):
                allowed = self.codes.lists[allowed[0][1:]]
            folded = {a.casefold() for a in allowed}
            for code, mappings in entries.items():
                for m in mappings:
                    if m.to.strip().casefold() not in folded:
                        raise ValueError(
                            f"key 'code_map.{column}.{code}': {m.to!r} is not a {column} of "
                            f"{kind}; expected one of {', '.join(allowed)}"
                        )

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
    def sensitivity(self) -> tuple[str, ...]:
        """The sensitivity analyses the plan runs (`[analysis] sensitivity`, or the design's
        default)."""
        given = self.analysis.sensitivity
        if given is not None:
            return tuple(given)
        return ("mixed_model", "within_period") if self.design.stepped else ("cluster_level",)

    @property
    def primary_method(self) -> str:
        """The primary analysis: `[analysis] primary_method`, or the design's own."""
        if self.analysis.primary_method is not None:
            return self.analysis.primary_method
        return "stepped_wedge_randomisation" if self.design.stepped else "negative_binomial"

    @property
    def officer_targets(self) -> dict[str, int]:
        """Eligible officers expected, by arm (`all stations` in a stepped wedge)."""
        if self.design.stepped:
            return {"all stations": int(self.targets.officers or 0)}
        if self.arms.multiple:
            return {arm: int(self.targets.officers_by_arm[arm]) for arm in self.arms.labels}
        return {
            "intervention": self.targets.officers_intervention,
            "control": self.targets.officers_control,
        }

    @property
    def primary_arm(self) -> str:
        """The training arm whose comparison with control is the primary one."""
        return self.analysis.primary_arm or "intervention"

    @property
    def parallel_periods(self) -> Periods:
        """The baseline and follow-up windows of a parallel trial."""
        if self.periods is None:
            raise ProtocolError(
                f"the {self.trial.id} trial is a stepped wedge: it has periods of its "
                "[design], not a baseline and a follow-up window"
            )
        return self.periods

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
