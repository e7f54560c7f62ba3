"""The designs and scenarios the validity study simulates: the trial's own or Connect's.

A `SimulatedDesign` is the scheme set, station sizes and the incident-level outcomes of a
trial (`workspace_design` for a workspace's sealed set, `protocol_design` for a protocol
before its stations are known, `connect_design` for the default); `count_scenario` gives
the station counts of the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.design.expected import (
    baseline_outcomes,
    expected_binary,
    expected_primary,
    followup_days,
)
from policetrial.design.schemes import TrialSchemes, protocol_schemes, workspace_schemes
from policetrial.design.simulate import CountScenario
from policetrial.errors import DesignError
from policetrial.outcomes.compute import OutcomeTables
from policetrial.protocol.conditions import Every
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol
from policetrial.randomise import randomise_clusters
from policetrial.records.workspace import Workspace

__all__ = [
    "CONNECT_BINARY",
    "BinaryScenario",
    "SimulatedDesign",
    "connect_design",
    "connect_schemes",
    "count_scenario",
    "protocol_design",
    "workspace_design",
]


@dataclass(frozen=True)
class BinaryScenario:
    """An incident-level binary outcome as the study simulates it."""

    name: str
    prevalence: float
    incidents_per_station: float
    """Mean incidents per station in the follow-up window (the outcome's denominator)."""
    label: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.prevalence < 1:
            raise DesignError(f"{self.name}: prevalence must be in (0, 1), got {self.prevalence}")
        if not self.incidents_per_station > 0:
            raise DesignError(
                f"{self.name}: incidents per station must be positive, got "
                f"{self.incidents_per_station}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONNECT_BINARY = (
    BinaryScenario(
        "tag", 0.10, 450.0, "a mental-health tag applied, among all incidents", "the Connect design"
    ),
    BinaryScenario(
        "s136",
        0.03,
        45.0,
        "a Section 136 detention, among mental-health calls",
        "the Connect design",
    ),
)
"""The binary scenarios of the Connect default: about 450 incidents per station-month, 10%
tagged, and 3% of the 45 mental-health calls ending in a detention."""


@dataclass(frozen=True, eq=False)
class SimulatedDesign:
    """The design a validity study simulates: its scheme set and what its outcomes look like."""

    schemes: np.ndarray
    """Candidate schemes: booleans, rows = schemes, columns = stations (True: intervention)."""
    name: str
    description: str
    source: str = ""
    strata: dict[str, int] = field(default_factory=dict)
    station_sizes: tuple[float, ...] | None = None
    """Relative station sizes (e.g. eligible officers), in the schemes' column order."""
    incidents_per_station: float = 45.0
    """Expected follow-up count of the primary outcome at a station of average size."""
    incidents_from: str = "the Connect design: 45 mental-health calls per station-month"
    baseline_length: float = 1.0
    followup_days: float = 30.0
    binary: tuple[BinaryScenario, ...] = CONNECT_BINARY
    notes: tuple[str, ...] = ()
    arm_orders: np.ndarray | None = field(default=None, repr=False)
    """A trial of more than two arms: every allocation of all its stations, for the global
    test (the `schemes` are then its primary comparison's splits)."""
    arm_names: tuple[str, ...] = ()

    def counts(self, cv_between: float) -> CountScenario:
        """This design's station counts at between-station CV `cv_between`."""
        return count_scenario(
            cv_between,
            incidents_per_station=self.incidents_per_station,
            station_sizes=self.station_sizes,
            baseline_length=self.baseline_length,
            followup_days=self.followup_days,
        )

    def __post_init__(self) -> None:
        schemes = _scheme_matrix(self.schemes)
        if self.station_sizes is not None:
            sizes = np.asarray(self.station_sizes, dtype=float)
            if sizes.shape != (schemes.shape[1],) or not np.all(sizes > 0):
                raise DesignError(
                    f"station_sizes must be {schemes.shape[1]} positive numbers, one per station"
                )
        object.__setattr__(self, "schemes", schemes)

    @property
    def n_stations(self) -> int:
        return int(self.schemes.shape[1])

    @property
    def n_intervention(self) -> int:
        return int(self.schemes[0].sum())

    def relative_sizes(self) -> np.ndarray | None:
        if self.station_sizes is None:
            return None
        sizes = np.asarray(self.station_sizes, dtype=float)
        return sizes / sizes.mean()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "stations": self.n_stations,
            "intervention": self.n_intervention,
            "control": self.n_stations - self.n_intervention,
            "schemes": int(self.schemes.shape[0]),
            "strata": dict(self.strata),
            "source": self.source,
            "station_sizes": None if self.station_sizes is None else list(self.station_sizes),
            "incidents_per_station": self.incidents_per_station,
            "incidents_from": self.incidents_from,
            "baseline_length": self.baseline_length,
            "followup_days": self.followup_days,
            "binary": [b.to_dict() for b in self.binary],
            "notes": list(self.notes),
            "arms": list(self.arm_names),
        }

    @classmethod
    def of_schemes(
        cls, schemes: np.ndarray, station_sizes: Sequence[float] | None = None
    ) -> SimulatedDesign:
        """A design given only as its scheme set (and station sizes): Connect's counts."""
        matrix = _scheme_matrix(schemes)
        n, k = matrix.shape[1], int(matrix[0].sum())
        return cls(
            schemes=matrix,
            name="the scheme set given",
            description=f"{n} stations ({k} intervention, {n - k} control), "
            f"{matrix.shape[0]:,} schemes",
            source="given",
            station_sizes=None if station_sizes is None else tuple(float(s) for s in station_sizes),
        )


def _scheme_matrix(schemes: np.ndarray) -> np.ndarray:
    matrix = np.asarray(schemes, dtype=bool)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 4:
        raise DesignError(
            "the scheme set must be a boolean matrix of at least 2 schemes (rows) of at "
            f"least 4 stations (columns), got shape {matrix.shape}"
        )
    treated = matrix.sum(axis=1)
    if np.any(treated != treated[0]) or not 0 < treated[0] < matrix.shape[1]:
        raise DesignError("every scheme must put the same number of stations in each arm")
    return matrix


def connect_design() -> SimulatedDesign:
    """The default: the Connect design, as every earlier study simulated it."""
    return SimulatedDesign(
        schemes=connect_schemes(),
        name="connect (default)",
        description="12 stations, 2 strata of 6, 3 + 3 per arm (400 schemes)",
        source="the Connect design: 12 stations stratified urban / rural, 3 + 3 in each",
        strata={"rural": 6, "urban": 6},
    )


def protocol_design(protocol: Protocol) -> SimulatedDesign:
    """A protocol's own design: its scheme set (`protocol_schemes`), the expected counts of
    its primary outcome and its incident-level binary outcomes, from `[synth]`."""
    return _design(protocol, protocol_schemes(protocol), None)


def workspace_design(workspace: Workspace) -> SimulatedDesign:
    """A workspace's own design: its sealed scheme set (or, before randomisation, the
    protocol's, `workspace_schemes`), its stations' eligible officers as sizes, and its
    baseline data for the counts and binary outcomes once incidents are imported."""
    return _design(workspace.protocol, workspace_schemes(workspace), baseline_outcomes(workspace))


def _design(
    protocol: Protocol, own: TrialSchemes, baseline: OutcomeTables | None
) -> SimulatedDesign:
    incidents, source = expected_primary(protocol, baseline)
    incidents_from = f"the primary outcome, {protocol.outcomes.primary}: {source}"
    period = protocol.parallel_periods.baseline
    days = followup_days(protocol)
    binary = tuple(
        _binary_scenario(protocol, spec, baseline)
        for spec in protocol.declared.of_kind("incident_binary")
    )
    return SimulatedDesign(
        schemes=own.scheme_set.schemes,
        name=protocol.trial.id,
        description=own.describe(),
        source=own.source,
        strata=dict(own.strata),
        station_sizes=own.station_sizes,
        incidents_per_station=incidents,
        incidents_from=incidents_from,
        baseline_length=((period.end - period.start).days + 1) / days,
        followup_days=days,
        binary=binary,
        notes=own.notes,
        arm_orders=own.arm_orders,
        arm_names=own.arm_names,
    )


def _binary_scenario(
    protocol: Protocol, spec: OutcomeSpec, baseline: OutcomeTables | None
) -> BinaryScenario:
    """The outcome's baseline prevalence and incidents per station (scaled to follow-up)
    in the workspace, or else the synthetic force's (`expected_binary`)."""
    if baseline is not None and spec.key in baseline.incident_table.column_names:
        incidents = baseline.incidents
        rows = incidents[incidents["period"] == "baseline"]
        if not isinstance(spec.among, Every) and f"{spec.key}__among" in rows.columns:
            rows = rows[rows[f"{spec.key}__among"].astype(bool)]
        windows = baseline.station_period[baseline.station_period["period"] == "baseline"]
        per_station = rows["station_id"].value_counts()
        per_day = [
            per_station.get(sid, 0) / float(d)
            for sid, d in zip(windows["station_id"], windows["days"], strict=True)
        ]
        prevalence = float(rows[spec.key].astype(float).mean()) if len(rows) else 0.0
        mean = float(np.mean(per_day)) * followup_days(protocol) if per_day else 0.0
        if 0 < prevalence < 1 and mean > 0:
            return BinaryScenario(
                spec.key,
                prevalence,
                mean,
                spec.label,
                f"the workspace's baseline ({len(windows)} stations, {len(rows):,} incidents)",
            )
    prevalence, mean = expected_binary(protocol, spec)
    return BinaryScenario(
        spec.key, prevalence, mean, spec.label, "what the protocol's synthetic force gives"
    )


def connect_schemes() -> np.ndarray:
    """The Connect design's scheme set: 12 stations in 2 strata of 6, 3 + 3 per arm."""
    stations = pd.DataFrame(
        {"station_id": [f"S{i:02d}" for i in range(12)], "area": ["urban", "rural"] * 6}
    )
    allocation = randomise_clusters(
        stations, id_column="station_id", strata=["area"], intervention=6, seed=1
    )
    return allocation.scheme_set.schemes


def count_scenario(
    cv_between: float,
    *,
    incidents_per_station: float = 45.0,
    station_sizes: tuple[float, ...] | None = None,
    baseline_length: float = 1.0,
    followup_days: float = 30.0,
) -> CountScenario:
    """The station counts of the study at between-station CV `cv_between`: 45 expected
    events per station-month (or the design's `incidents_per_station` in its follow-up
    window, and `baseline_length` times as many at baseline), a station level shared by
    the two periods, and a station x period gamma factor with CV 0.12 (dispersion 0.12^2)."""
    return CountScenario(
        incidents_per_station,
        cv_between=cv_between,
        baseline_correlation=1.0,
        dispersion=0.12**2,
        station_sizes=station_sizes,
        baseline_length=baseline_length,
        followup_days=followup_days,
    )
