"""The sealed allocation record: randomise a workspace once, keep everything, refuse silent redos.

The record holds the inputs (station ids and the covariates used), the method and its
parameters, the seed, the generator and library versions, the chosen scheme and the
whole candidate set, and a SHA-256 digest over them. The tables are append-only. A
second randomisation needs `force` and a reason, both written to the change log; the
newest record is the one in force.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from policetrial import db
from policetrial.errors import RandomisationError, WorkspaceError
from policetrial.randomise import (
    RNG_ALGORITHM,
    Allocation,
    SchemeSet,
    randomise_clusters,
    scheme_digest,
)
from policetrial.roster import load_stations
from policetrial.workspace import Workspace

__all__ = ["SealedAllocation", "current_allocation", "randomise_workspace"]


@dataclass(frozen=True)
class SealedAllocation:
    """An allocation as stored: what the analysis and the report read back."""

    id: int
    created_at: dt.datetime
    actor: str
    method: str
    parameters: dict[str, Any]
    seed: int
    rng: str
    versions: dict[str, str]
    scheme_set: SchemeSet
    chosen_index: int
    digest: str
    reason: str | None

    @property
    def cluster_ids(self) -> tuple[str, ...]:
        return self.scheme_set.cluster_ids

    @property
    def arms(self) -> dict[str, str]:
        chosen = self.scheme_set.schemes[self.chosen_index]
        return {
            c: ("intervention" if flag else "control")
            for c, flag in zip(self.cluster_ids, chosen, strict=True)
        }

    def verify(self) -> bool:
        """True when the stored digest matches the stored record."""
        return self.digest == scheme_digest(
            cluster_ids=self.cluster_ids,
            schemes=self.scheme_set.schemes,
            chosen_index=self.chosen_index,
            method=self.method,
            parameters=self.parameters,
            seed=self.seed,
            rng=self.rng,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "rng": self.rng,
            "versions": self.versions,
            "n_schemes": self.scheme_set.n_schemes,
            "total_schemes": self.scheme_set.total,
            "enumerated": self.scheme_set.enumerated,
            "chosen": self.arms,
            "smallest_p_value": self.scheme_set.smallest_p_value(),
            "digest": self.digest,
            "digest_verified": self.verify(),
            "reason": self.reason,
        }


def _versions() -> dict[str, str]:
    from policetrial import __version__

    return {
        "policetrial": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def randomise_workspace(
    workspace: Workspace,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> SealedAllocation:
    """Randomise the workspace's stations by the protocol and seal the record."""
    existing = current_allocation(workspace)
    if existing is not None and not force:
        raise RandomisationError(
            f"this trial was randomised on {existing.created_at:%Y-%m-%d %H:%M} "
            f"(digest {existing.digest[:12]}); re-randomising needs --force and --reason"
        )
    if existing is not None and not (reason and reason.strip()):
        raise RandomisationError("re-randomising needs a reason (--reason), which is logged")
    stations = load_stations(workspace)
    if stations.empty:
        raise WorkspaceError("no stations yet; import the stations extract first")
    plan = workspace.protocol.randomisation
    if plan.method in ("constrained",):
        raise RandomisationError(
            f"randomisation method {plan.method!r} is not available in this version; use stratified"
        )
    allocation = randomise_clusters(
        stations,
        id_column="station_id",
        method=plan.method,  # type: ignore[arg-type]
        strata=plan.strata if plan.method == "stratified" else (),
        intervention=plan.intervention_stations,
        seed=plan.seed,
        versions=_versions(),
    )
    return _seal(workspace, allocation, stations, reason=reason, actor=actor, replaces=existing)


def _seal(
    workspace: Workspace,
    allocation: Allocation,
    stations: pd.DataFrame,
    *,
    reason: str | None,
    actor: str | None,
    replaces: SealedAllocation | None,
) -> SealedAllocation:
    who = actor or db.current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    digest = allocation.digest
    schemes = allocation.scheme_set.schemes
    with workspace.engine.begin() as connection:
        new_id = connection.execute(
            insert(db.allocations)
            .values(
                created_at=now,
                actor=who,
                method=allocation.method,
                parameters=json.dumps(allocation.parameters, sort_keys=True, default=str),
                seed=allocation.seed,
                rng=allocation.rng,
                versions=json.dumps(allocation.versions, sort_keys=True),
                cluster_ids=json.dumps(list(allocation.cluster_ids)),
                chosen_index=allocation.chosen_index,
                n_schemes=allocation.scheme_set.n_schemes,
                total_schemes=float(allocation.scheme_set.total),
                enumerated=allocation.scheme_set.enumerated,
                digest=digest,
                reason=reason,
            )
            .returning(db.allocations.c.id)
        ).scalar_one()
        connection.execute(
            insert(db.allocation_arms),
            [
                {"allocation_id": new_id, "station_id": s, "arm": a}
                for s, a in allocation.arms.items()
            ],
        )
        connection.execute(
            insert(db.scheme_sets).values(
                allocation_id=new_id,
                n_schemes=int(schemes.shape[0]),
                n_clusters=int(schemes.shape[1]),
                packed=np.packbits(schemes, axis=1).tobytes(),
                scores=None,
            )
        )
        db.append_change(
            connection,
            action="re-randomise" if replaces else "randomise",
            entity="allocation",
            entity_id=str(new_id),
            before=None if replaces is None else {"id": replaces.id, "digest": replaces.digest},
            after={
                "digest": digest,
                "method": allocation.method,
                "seed": allocation.seed,
                "arms": allocation.arms,
            },
            reason=reason,
            actor=who,
        )
    sealed = current_allocation(workspace)
    assert sealed is not None  # just written in the same process
    return sealed


def current_allocation(workspace: Workspace) -> SealedAllocation | None:
    """The allocation in force (the newest sealed record), or None before randomisation."""
    with workspace.engine.connect() as connection:
        row = (
            connection.execute(select(db.allocations).order_by(db.allocations.c.id.desc()).limit(1))
            .mappings()
            .first()
        )
        if row is None:
            return None
        packed = (
            connection.execute(
                select(db.scheme_sets).where(db.scheme_sets.c.allocation_id == row["id"])
            )
            .mappings()
            .one()
        )
    ids = tuple(json.loads(row["cluster_ids"]))
    bits = np.frombuffer(packed["packed"], dtype=np.uint8).reshape(packed["n_schemes"], -1)
    schemes = np.unpackbits(bits, axis=1, count=packed["n_clusters"]).astype(bool)
    scheme_set = SchemeSet(
        ids, schemes, enumerated=bool(row["enumerated"]), total=int(row["total_schemes"])
    )
    return SealedAllocation(
        id=int(row["id"]),
        created_at=row["created_at"],
        actor=row["actor"],
        method=row["method"],
        parameters=json.loads(row["parameters"]),
        seed=int(row["seed"]),
        rng=row["rng"] or RNG_ALGORITHM,
        versions=json.loads(row["versions"]),
        scheme_set=scheme_set,
        chosen_index=int(row["chosen_index"]),
        digest=row["digest"],
        reason=row["reason"],
    )
