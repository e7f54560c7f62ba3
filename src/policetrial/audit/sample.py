"""The audit sample: a seeded, stratified draw of incidents, sealed so it cannot be redrawn quietly.

Algorithm (`ALGORITHM`, the same on any machine: only SHA-256, integer arithmetic and
string sorting are involved):

1. The population is the incident-level outcome table: incidents in each station's
   baseline and follow-up windows. *Tagged* (flagged) incidents are those the protocol's
   audited outcome counts (`[audit] flagged`, by default the primary outcome); *untagged*
   are the rest.
2. Strata are station × period × kind. The number drawn in stratum s is Hamilton's
   (largest remainder) apportionment of round_half_up(f × N) over the quotas f × N_s,
   with f the protocol's fraction as an exact decimal; ties in the remainders go to the
   earlier stratum in (kind, station_id, period) order.
3. Within a stratum, incidents are ranked by HMAC-SHA256(key = "policetrial-audit:<seed>",
   message = "sample\\x1f<incident_key>") as a hex string, and the first n_s are drawn.
4. The double-rated subset is, within each kind, the first round_half_up(d × n_kind)
   drawn incidents ranked by the same HMAC with message "double\\x1f<incident_key>".
5. Audit ids are A0001, A0002, ... given in the order of the HMAC with message
   "audit-id\\x1f<incident_key>", so an id says nothing about station, period or kind.

The manifest (items, seed, fractions, strata, allocation digest) is stored in
append-only tables with a SHA-256 digest over it; a second draw needs `force` and a
reason, written to the change log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from policetrial.errors import AuditError, WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace

__all__ = [
    "ALGORITHM",
    "AuditSample",
    "Stratum",
    "allocate_sizes",
    "current_sample",
    "draw_audit_sample",
    "draw_sample",
    "rank_key",
    "round_half_up",
    "sample_digest",
]

ALGORITHM = (
    "policetrial-audit-v1: strata station x period x kind; Hamilton apportionment of "
    "round_half_up(f*N); rank by HMAC-SHA256(key='policetrial-audit:<seed>', "
    "msg='<purpose>\\x1f<incident_key>')"
)
KINDS = ("tagged", "untagged")


def rank_key(seed: int, purpose: str, incident_key: str) -> str:
    """The keyed hash that orders incidents: HMAC-SHA256 of purpose and key, seeded."""
    return hmac.new(
        f"policetrial-audit:{seed}".encode(),
        f"{purpose}\x1f{incident_key}".encode(),
        hashlib.sha256,
    ).hexdigest()


def round_half_up(value: Fraction) -> int:
    """floor(value + 1/2), exact for fractions (no float rounding surprises)."""
    return int((value + Fraction(1, 2)).__floor__())


def _exact(fraction: float | str | Fraction) -> Fraction:
    """The protocol's fraction as the decimal it was written as (0.1 is 1/10, not a float)."""
    value = fraction if isinstance(fraction, Fraction) else Fraction(str(fraction))
    if not 0 <= value <= 1:
        raise AuditError(f"an audit fraction must be between 0 and 1, got {fraction}")
    return value


def allocate_sizes(populations: Sequence[int], fraction: float | str | Fraction) -> list[int]:
    """Hamilton (largest remainder) apportionment of round_half_up(f × N) over f × N_s.

    Ties in the remainders go to the earlier stratum. Every stratum gets floor(f N_s) or
    one more, and the sizes add up to round_half_up(f × sum N_s).
    """
    f = _exact(fraction)
    quotas = [f * n for n in populations]
    sizes = [int(q.__floor__()) for q in quotas]
    total = round_half_up(f * sum(populations))
    remainders = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in remainders[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


@dataclass(frozen=True)
class Stratum:
    kind: str
    station_id: str
    period: str
    population: int
    sampled: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "station_id": self.station_id,
            "period": self.period,
            "population": self.population,
            "sampled": self.sampled,
        }


@dataclass(frozen=True)
class SampleDraw:
    """What a draw selects, before it is stored."""

    items: pd.DataFrame
    """audit_id, incident_key, kind, station_id, period, double_rated; by audit_id."""
    strata: tuple[Stratum, ...]


def draw_sample(
    incidents: pd.DataFrame,
    *,
    seed: int,
    fraction: float | str | Fraction,
    untagged_fraction: float | str | Fraction = 0,
    double_rated_fraction: float | str | Fraction = 0,
    flag: str = "flagged",
) -> SampleDraw:
    """Draw the audit sample from an incident table (see the module text for the algorithm).

    `incidents` needs incident_key, station_id, period and the true/false column `flag`
    (the incidents the audited outcome counts). The input is not changed.
    """
    needed = {"incident_key", "station_id", "period", flag}
    missing = needed - set(incidents.columns)
    if missing:
        raise AuditError(f"the incident table lacks {sorted(missing)}")
    if incidents["incident_key"].duplicated().any():
        raise AuditError("an incident appears twice in the incident table")
    frame = incidents[["incident_key", "station_id", "period", flag]].copy()
    frame["incident_key"] = frame["incident_key"].astype(str)
    frame["station_id"] = frame["station_id"].astype(str)
    frame["period"] = frame["period"].astype(str)
    frame["kind"] = frame[flag].astype(bool).map({True: "tagged", False: "untagged"})
    frame["rank"] = [rank_key(seed, "sample", k) for k in frame["incident_key"]]
    fractions = {"tagged": _exact(fraction), "untagged": _exact(untagged_fraction)}
    double = _exact(double_rated_fraction)
    strata: list[Stratum] = []
    chosen: list[pd.DataFrame] = []
    for kind in KINDS:
        pool = frame[frame["kind"] == kind]
        groups = sorted(pool.groupby(["station_id", "period"]), key=lambda g: g[0])
        sizes = allocate_sizes([len(g) for _, g in groups], fractions[kind])
        for ((station, period), group), size in zip(groups, sizes, strict=True):
            strata.append(Stratum(kind, str(station), str(period), len(group), size))
            if size:
                chosen.append(group.sort_values("rank").head(size))
    columns = ["audit_id", "incident_key", "kind", "station_id", "period", "double_rated"]
    if not chosen:
        return SampleDraw(pd.DataFrame(columns=columns), tuple(strata))
    items = pd.concat(chosen, ignore_index=True)
    items["double_rated"] = False
    for kind in KINDS:
        these = items[items["kind"] == kind]
        n_double = round_half_up(double * len(these))
        order = sorted(
            these.index, key=lambda i: rank_key(seed, "double", items.at[i, "incident_key"])
        )
        items.loc[order[:n_double], "double_rated"] = True
    order = sorted(
        items.index, key=lambda i: rank_key(seed, "audit-id", items.at[i, "incident_key"])
    )
    width = max(4, len(str(len(items))))
    items.loc[order, "audit_id"] = [f"A{i:0{width}d}" for i in range(1, len(order) + 1)]
    items = items.sort_values("audit_id").reset_index(drop=True)
    return SampleDraw(items[columns], tuple(strata))


def sample_digest(
    *,
    algorithm: str,
    seed: int,
    fractions: Sequence[str],
    allocation_digest: str,
    strata: Sequence[Stratum],
    items: pd.DataFrame,
) -> str:
    """SHA-256 over the manifest as canonical JSON."""
    body = {
        "algorithm": algorithm,
        "seed": seed,
        "fractions": list(fractions),
        "allocation_digest": allocation_digest,
        "strata": [s.to_dict() for s in strata],
        "items": [
            [r.audit_id, r.incident_key, r.kind, r.station_id, r.period, bool(r.double_rated)]
            for r in items.sort_values("audit_id").itertuples(index=False)
        ],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class AuditSample:
    """A stored audit sample: the manifest and its items."""

    id: int
    created_at: dt.datetime
    actor: str
    algorithm: str
    seed: int
    fraction: str
    untagged_fraction: str
    double_rated_fraction: str
    allocation_digest: str
    strata: tuple[Stratum, ...]
    items: pd.DataFrame = field(repr=False)
    digest: str
    reason: str | None

    def verify(self) -> bool:
        """True when the stored digest matches the stored manifest."""
        return self.digest == sample_digest(
            algorithm=self.algorithm,
            seed=self.seed,
            fractions=(self.fraction, self.untagged_fraction, self.double_rated_fraction),
            allocation_digest=self.allocation_digest,
            strata=self.strata,
            items=self.items,
        )

    def counts(self) -> dict[str, int]:
        items = self.items
        return {
            "items": len(items),
            "tagged": int((items["kind"] == "tagged").sum()),
            "untagged": int((items["kind"] == "untagged").sum()),
            "double_rated": int(items["double_rated"].sum()),
        }

    def population(self, kind: str) -> int:
        return sum(s.population for s in self.strata if s.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "algorithm": self.algorithm,
            "seed": self.seed,
            "fraction": float(self.fraction),
            "untagged_fraction": float(self.untagged_fraction),
            "double_rated_fraction": float(self.double_rated_fraction),
            "population": {k: self.population(k) for k in KINDS},
            **{f"n_{k}": v for k, v in self.counts().items()},
            "strata": len({(s.station_id, s.period) for s in self.strata}),
            "allocation_digest": self.allocation_digest,
            "digest": self.digest,
            "digest_verified": self.verify(),
            "reason": self.reason,
        }

    def summary(self) -> pd.DataFrame:
        """One row per stratum: population and number drawn."""
        return pd.DataFrame([s.to_dict() for s in self.strata])


def draw_audit_sample(
    workspace: Workspace,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> AuditSample:
    """Draw the protocol's audit sample from the workspace's included incidents and store it.

    Refuses a second draw unless `force` is given with a `reason`; both are logged.
    """

    existing = current_sample(workspace)
    if existing is not None and not force:
        raise AuditError(
            f"an audit sample was drawn on {existing.created_at:%Y-%m-%d %H:%M} "
            f"(digest {existing.digest[:12]}); drawing again needs --force and --reason"
        )
    if existing is not None and not (reason and reason.strip()):
        raise AuditError(
            "drawing the audit sample again needs a reason (--reason), which is logged"
        )
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    plan = workspace.protocol.audit
    flag = workspace.protocol.audit_outcome
    # Imported here: the outcomes load DuckDB and SQLGlot, which the audit's summaries
    # (the report, the web application) never need.
    from policetrial.outcomes.compute import workspace_outcomes

    incidents = workspace_outcomes(workspace).incidents
    if not incidents[flag].any():
        label = workspace.protocol.outcome_label(flag).lower()
        raise AuditError(f"no included incidents ({label}) in the trial windows to audit")
    draw = draw_sample(
        incidents,
        seed=plan.seed,
        fraction=plan.fraction,
        untagged_fraction=plan.untagged_fraction,
        double_rated_fraction=plan.double_rated_fraction,
        flag=flag,
    )
    fractions = (str(plan.fraction), str(plan.untagged_fraction), str(plan.double_rated_fraction))
    digest = sample_digest(
        algorithm=ALGORITHM,
        seed=plan.seed,
        fractions=fractions,
        allocation_digest=allocation.digest,
        strata=draw.strata,
        items=draw.items,
    )
    who = actor or changelog.current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with workspace.engine.begin() as connection:
        sample_id = connection.execute(
            insert(db.audit_samples)
            .values(
                created_at=now,
                actor=who,
                algorithm=ALGORITHM,
                seed=plan.seed,
                fraction=fractions[0],
                untagged_fraction=fractions[1],
                double_rated_fraction=fractions[2],
                allocation_digest=allocation.digest,
                strata=json.dumps([s.to_dict() for s in draw.strata]),
                n_items=len(draw.items),
                digest=digest,
                reason=reason,
            )
            .returning(db.audit_samples.c.id)
        ).scalar_one()
        if len(draw.items):
            records = draw.items.assign(sample_id=sample_id).to_dict("records")
            for r in records:
                r["double_rated"] = bool(r["double_rated"])
            connection.execute(insert(db.audit_items), records)
        changelog.append_change(
            connection,
            action="audit-redraw" if existing else "audit-sample",
            entity="audit_sample",
            entity_id=str(sample_id),
            before=None if existing is None else {"id": existing.id, "digest": existing.digest},
            after={
                "digest": digest,
                "seed": plan.seed,
                "fractions": list(fractions),
                "items": len(draw.items),
            },
            reason=reason,
            actor=who,
        )
    sample = current_sample(workspace)
    assert sample is not None  # written just above in this process
    return sample


def current_sample(workspace: Workspace) -> AuditSample | None:
    """The audit sample in force (the newest drawn), or None before the first draw."""
    with workspace.engine.connect() as connection:
        row = (
            connection.execute(
                select(db.audit_samples).order_by(db.audit_samples.c.id.desc()).limit(1)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        items = pd.DataFrame(
            connection.execute(
                select(
                    db.audit_items.c.audit_id,
                    db.audit_items.c.incident_key,
                    db.audit_items.c.kind,
                    db.audit_items.c.station_id,
                    db.audit_items.c.period,
                    db.audit_items.c.double_rated,
                )
                .where(db.audit_items.c.sample_id == row["id"])
                .order_by(db.audit_items.c.audit_id)
            ).all(),
            columns=["audit_id", "incident_key", "kind", "station_id", "period", "double_rated"],
        )
    items["double_rated"] = items["double_rated"].astype(bool)
    return AuditSample(
        id=int(row["id"]),
        created_at=row["created_at"],
        actor=row["actor"],
        algorithm=row["algorithm"],
        seed=int(row["seed"]),
        fraction=row["fraction"],
        untagged_fraction=row["untagged_fraction"],
        double_rated_fraction=row["double_rated_fraction"],
        allocation_digest=row["allocation_digest"],
        strata=tuple(Stratum(**s) for s in json.loads(row["strata"])),
        items=items,
        digest=row["digest"],
        reason=row["reason"],
    )
