"""The sealed allocation record: randomise a workspace once, keep everything, refuse silent redos.

The record holds the inputs (station ids with the strata and covariate values used),
the method and its parameters, the seed, the generator and library versions, the chosen
scheme, the whole candidate set with the balance score of each scheme, the score
diagnostics, and a SHA-256 digest over all of them. The tables are append-only. A
second randomisation needs `force` and a reason, both written to the change log; the
newest record is the one in force.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from policetrial.errors import RandomisationError, WorkspaceError
from policetrial.randomise.balance import balance_covariates
from policetrial.randomise.clusters import RNG_ALGORITHM, Allocation
from policetrial.randomise.comparisons import pairwise_smallest_p_value, unattainable
from policetrial.randomise.diagnostics import (
    BalanceTable,
    SchemeValidity,
    balance_table,
    scheme_validity,
)
from policetrial.randomise.plan import allocate_protocol
from policetrial.randomise.schemes import SchemeSet, scheme_digest
from policetrial.randomise.sequences import (
    LabelSet,
    SequenceAllocation,
    label_digest,
    label_name,
    sequence_validity,
)
from policetrial.records import changelog, db
from policetrial.records.roster import load_stations
from policetrial.records.workspace import Workspace

__all__ = ["SealedAllocation", "current_allocation", "randomise_workspace"]


@dataclass(frozen=True, eq=False)
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
    scheme_set: SchemeSet | LabelSet
    """Two arms: the packed schemes; a stepped wedge: the orders (`LabelSet`)."""
    chosen_index: int
    digest: str
    reason: str | None
    inputs: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None

    @property
    def cluster_ids(self) -> tuple[str, ...]:
        return self.scheme_set.cluster_ids

    @property
    def chosen(self) -> np.ndarray:
        return self.scheme_set.scheme(self.chosen_index)

    @property
    def stepped(self) -> bool:
        """A stepped-wedge allocation: stations in sequences, not arms."""
        return self.parameters.get("design") == "stepped_wedge"

    @property
    def arm_names(self) -> tuple[str, ...]:
        """The arms of a trial of more than two arms, in label order (empty otherwise)."""
        return tuple(self.parameters.get("arms", ()))

    @property
    def arms(self) -> dict[str, str]:
        """Station id -> arm (`intervention`, `control`, or a further arm's key), or its
        sequence (`sequence 1`)."""
        if isinstance(self.scheme_set, LabelSet):
            names = self.arm_names
            return {
                c: label_name(int(s), names)
                for c, s in zip(self.cluster_ids, self.chosen, strict=True)
            }
        return {
            c: ("intervention" if flag else "control")
            for c, flag in zip(self.cluster_ids, self.chosen, strict=True)
        }

    @property
    def chosen_score(self) -> float | None:
        scores = self.scheme_set.scores
        return None if scores is None else float(scores[self.chosen_index])

    def verify(self) -> bool:
        """True when the stored digest matches the stored record."""
        new_style = self.inputs is not None
        if isinstance(self.scheme_set, LabelSet):
            return self.digest == label_digest(
                cluster_ids=self.cluster_ids,
                labels=self.scheme_set.packed,
                chosen_index=self.chosen_index,
                method=self.method,
                parameters=self.parameters,
                seed=self.seed,
                rng=self.rng,
                versions=self.versions,
                inputs=self.inputs,
                scores=self.scheme_set.scores,
                diagnostics=self.diagnostics,
            )
        return self.digest == scheme_digest(
            cluster_ids=self.cluster_ids,
            schemes=self.scheme_set.packed,
            chosen_index=self.chosen_index,
            method=self.method,
            parameters=self.parameters,
            seed=self.seed,
            rng=self.rng,
            versions=self.versions if new_style else None,
            inputs=self.inputs,
            scores=self.scheme_set.scores,
            diagnostics=self.diagnostics,
        )

    def balance_table(self) -> BalanceTable | None:
        """Covariates by arm for the chosen scheme, rebuilt from the stored inputs."""
        covariates = self.parameters.get("covariates")
        if not covariates or not self.inputs or self.stepped:
            return None
        frame = pd.DataFrame(self.inputs["clusters"])
        balance = balance_covariates(
            frame,
            cluster_ids=self.cluster_ids,
            covariates=covariates,
            categorical=self.parameters.get("categorical", ()),
            weights=_covariate_weights(self.parameters),
            metric=self.parameters.get("metric", "l2"),
        )
        return balance_table(balance, self.chosen)

    def station_strata(self) -> dict[str, str] | None:
        """Each station's stratum as the randomisation used it (its strata values joined by
        "/"), from the stored inputs; None when the allocation was not stratified."""
        columns = tuple(self.parameters.get("strata", ()))
        if not columns or not self.inputs:
            return None
        frame = pd.DataFrame(self.inputs["clusters"])
        id_column = self.inputs.get("id_column", "station_id")
        labels = frame[list(columns)].astype(str).agg("/".join, axis=1)
        return dict(zip(frame[id_column].astype(str), labels, strict=True))

    def validity(self) -> SchemeValidity:
        """Pairs of stations always, never, often or seldom in the same arm (a stepped
        wedge: the same sequence) across the set."""
        if isinstance(self.scheme_set, LabelSet):
            return sequence_validity(self.scheme_set)
        return scheme_validity(self.scheme_set)

    def to_dict(self) -> dict[str, Any]:
        diagnostics = self.diagnostics or {}
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
            "n_examined": diagnostics.get("n_examined", self.scheme_set.n_examined),
            "enumerated": self.scheme_set.enumerated,
            "cutoff_score": diagnostics.get("cutoff_score"),
            "chosen_score": self.chosen_score,
            "chosen": self.arms,
            "score_summary": diagnostics.get("score_summary"),
            "smallest_p_value": (
                pairwise_smallest_p_value(
                    self.cluster_ids, self.scheme_set.packed, self.chosen_index, self.arm_names
                )
                if self.arm_names
                else self.scheme_set.smallest_p_value(self.chosen_index)
            ),
            "inputs": self.inputs,
            "digest": self.digest,
            "digest_verified": self.verify(),
            "reason": self.reason,
        }


def _covariate_weights(parameters: dict[str, Any]) -> dict[str, float]:
    """Per-covariate weights back from the per-column weights stored in the parameters."""
    by_column: dict[str, float] = parameters.get("weights", {})
    out: dict[str, float] = {}
    for column, weight in by_column.items():
        out.setdefault(column.split("=", 1)[0], float(weight))
    return out


def randomise_workspace(
    workspace: Workspace,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    allow_unattainable: bool = False,
) -> SealedAllocation:
    """Randomise the workspace's stations by the protocol and seal the record.

    The protocol's `[randomisation]` table gives the method, strata, covariates (see
    `policetrial.outcomes.covariates` for the names), metric, cutoff or number of schemes, and
    the seed. Nothing is written unless randomisation succeeds. A candidate set whose
    smallest attainable p-value is above the protocol's alpha is refused (no result could
    be significant) unless `allow_unattainable`.
    """
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
    protocol = workspace.protocol
    plan = protocol.randomisation
    # Imported here: the outcomes package loads DuckDB and SQLGlot, which reading the
    # allocation in force (the report, the web application) never needs.
    from policetrial.outcomes.covariates import station_covariates

    clusters = station_covariates(workspace, stations, plan.covariates)
    allocation = allocate_protocol(protocol, clusters)
    why = unattainable(
        float(allocation.to_dict()["smallest_p_value"]),
        protocol.analysis.alpha,
        n_candidates=allocation.scheme_set.n_schemes,
        word="orders" if protocol.design.stepped else "schemes",
    )
    if why and not allow_unattainable:
        raise RandomisationError(
            f"{why}; loosen the constraint ([randomisation] cutoff or schemes, fewer strata) "
            "or, to randomise all the same, pass --allow-unattainable"
        )
    return _seal(workspace, allocation, reason=reason, actor=actor, replaces=existing)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _seal(
    workspace: Workspace,
    allocation: Allocation | SequenceAllocation,
    *,
    reason: str | None,
    actor: str | None,
    replaces: SealedAllocation | None,
) -> SealedAllocation:
    who = actor or changelog.current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    digest = allocation.digest
    scheme_set = allocation.scheme_set
    scores = scheme_set.scores
    with workspace.engine.begin() as connection:
        new_id = connection.execute(
            insert(db.allocations)
            .values(
                created_at=now,
                actor=who,
                method=allocation.method,
                parameters=_json(allocation.parameters),
                seed=allocation.seed,
                rng=allocation.rng,
                versions=_json(allocation.versions),
                cluster_ids=json.dumps(list(allocation.cluster_ids)),
                chosen_index=allocation.chosen_index,
                n_schemes=scheme_set.n_schemes,
                total_schemes=float(scheme_set.total),
                enumerated=scheme_set.enumerated,
                digest=digest,
                reason=reason,
                inputs=_json(allocation.inputs),
                diagnostics=_json(allocation.diagnostics),
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
                n_schemes=scheme_set.n_schemes,
                n_clusters=scheme_set.n_clusters,
                packed=scheme_set.packed.tobytes(),
                scores=None if scores is None else np.asarray(scores, dtype="<f8").tobytes(),
            )
        )
        changelog.append_change(
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
    if sealed is None or sealed.digest != digest or not sealed.verify():
        raise RandomisationError("the allocation record could not be read back as written")
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
        stored = (
            connection.execute(
                select(db.scheme_sets).where(db.scheme_sets.c.allocation_id == row["id"])
            )
            .mappings()
            .one()
        )
    ids = tuple(json.loads(row["cluster_ids"]))
    packed = np.frombuffer(stored["packed"], dtype=np.uint8).reshape(stored["n_schemes"], -1)
    scores = None if stored["scores"] is None else np.frombuffer(stored["scores"], dtype="<f8")
    diagnostics = None if row["diagnostics"] is None else json.loads(row["diagnostics"])
    parameters = json.loads(row["parameters"])
    # The exact count is in the diagnostics; the float column rounds above 2**53.
    total = int((diagnostics or {}).get("total_schemes") or row["total_schemes"])
    examined = None if diagnostics is None else diagnostics.get("n_examined")
    scheme_set: SchemeSet | LabelSet
    if parameters.get("design") == "stepped_wedge" or parameters.get("arms"):
        scheme_set = LabelSet(
            ids,
            packed,
            n_labels=len(parameters["sizes"]),
            enumerated=bool(row["enumerated"]),
            total=total,
            scores=scores,
            n_examined=examined,
        )
    else:
        scheme_set = SchemeSet(
            ids,
            packed,
            enumerated=bool(row["enumerated"]),
            total=total,
            scores=scores,
            n_examined=examined,
        )
    return SealedAllocation(
        id=int(row["id"]),
        created_at=row["created_at"],
        actor=row["actor"],
        method=row["method"],
        parameters=parameters,
        seed=int(row["seed"]),
        rng=row["rng"] or RNG_ALGORITHM,
        versions=json.loads(row["versions"]),
        scheme_set=scheme_set,
        chosen_index=int(row["chosen_index"]),
        digest=row["digest"],
        reason=row["reason"],
        inputs=None if row["inputs"] is None else json.loads(row["inputs"]),
        diagnostics=diagnostics,
    )
