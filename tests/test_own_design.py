"""Validate, design and the audit's power sentence simulate the trial's own design.

Before, `policetrial validate` always simulated Connect's 2 x 6 stratified design,
`policetrial design --protocol` used simple randomisation of the protocol's stations, and
the report's audit-power sentence quoted a table computed once for Connect. The expected
scheme counts below are exact: a stratified design has the product over strata of
C(stations, intervention stations) schemes, and a constrained one keeps
round(cutoff x that) of them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.audit.accuracy import accuracy_test_size, arm_test_power
from policetrial.audit.sample import current_sample
from policetrial.cli.app import app
from policetrial.design.schemes import protocol_schemes
from policetrial.design.validity import connect_schemes, validity_study
from policetrial.errors import AuditError, DesignError
from policetrial.protocol.schema import resolve_protocol
from policetrial.randomise import randomise_clusters
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import open_workspace
from policetrial.report import TrialReport
from policetrial.report.sections import AUDIT_POWER_SIMS

runner = CliRunner()

DOMESTIC_ABUSE_STRATIFIED = math.comb(7, 4) * math.comb(7, 3) * math.comb(6, 3)
"""20 stations in districts of 7, 7 and 6, 10 to intervention (4, 3 and 3 by largest
remainders): 35 x 35 x 20 = 24,500 stratified schemes."""


def _json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_validate_simulates_the_domestic_abuse_design() -> None:
    """20 stations in 3 districts, constrained 10 v 10 with cutoff 0.25: the protocol's own
    scheme set of round(0.25 x 24,500) = 6,125 schemes, and its own binary outcome."""
    d = _json(
        [
            "validate",
            "--protocol",
            "domestic-abuse",
            "--trials",
            "10",
            "--alternative",
            "0",
            "--cv-between",
            "0.2",
            "--part",
            "counts",
            "--part",
            "binary",
        ]
    )
    design = d["design"]
    assert design["name"] == "domestic-abuse"
    assert (design["stations"], design["intervention"], design["control"]) == (20, 10, 10)
    assert design["schemes"] == round(0.25 * DOMESTIC_ABUSE_STRATIFIED) == 6125
    assert sorted(design["strata"].values()) == [6, 7, 7]
    assert "constrained randomisation" in design["description"]
    assert "20 stations" in d["settings"]["design"]
    assert [b["name"] for b in design["binary"]] == ["assessed_share"]
    assert {c["scenario"] for c in d["cells"] if c["outcome_type"] == "binary"} == {
        "assessed_share"
    }
    assert all(c["n_trials"] == 10 for c in d["cells"])


def test_validate_without_a_design_is_the_connect_study_unchanged() -> None:
    """The default is still Connect's 12 stations and 400 schemes, with the tag and s136
    scenarios; the median interval widths are those the study gave before it took a design
    (commit 461ed0f, same options and seed), to six decimals (the GEE pair was then the
    main binary method `gee_main`: the KC/MD average for tags, KC for Section 136)."""
    d = _json(
        [
            "validate",
            "--trials",
            "10",
            "--alternative",
            "0",
            "--cv-between",
            "0.2",
            "--part",
            "counts",
            "--part",
            "binary",
        ]
    )
    assert d["design"]["name"] == "connect (default)"
    assert (d["design"]["stations"], d["design"]["schemes"]) == (12, 400)
    assert d["settings"]["design"] == "12 stations, 2 strata of 6, 3 + 3 per arm (400 schemes)"
    pinned = {
        ("nb_randomisation", "stations"),
        ("cluster_level", "stations"),
        ("gee_avg", "tag"),
        ("gee_kc", "s136"),
    }
    widths = {
        (c["method"], c["scenario"]): c["median_width"]
        for c in d["cells"]
        if (c["method"], c["scenario"]) in pinned
    }
    assert widths == pytest.approx(
        {
            ("nb_randomisation", "stations"): 1.879447,
            ("cluster_level", "stations"): 1.881055,
            ("gee_avg", "tag"): 1.958739,
            ("gee_kc", "s136"): 10.791582,
        },
        abs=1e-6,
    )


def test_validate_in_a_workspace_simulates_its_sealed_scheme_set(imported_root: Path) -> None:
    """-w: the sealed (stratified, 400-scheme) allocation, the stations' eligible officers
    as sizes, and the protocol's incident-level binary outcomes by name."""
    d = _json(
        [
            "validate",
            "-w",
            str(imported_root),
            "--trials",
            "10",
            "--alternative",
            "0",
            "--cv-between",
            "0.2",
            "--part",
            "counts",
        ]
    )
    design = d["design"]
    assert design["source"] == "the sealed allocation (stratified)"
    assert (design["stations"], design["schemes"]) == (12, 400)
    assert len(design["station_sizes"]) == 12
    assert [b["name"] for b in design["binary"]] == ["tagged_incident", "s136_incident"]
    ws = open_workspace(imported_root)
    sealed = current_allocation(ws)
    ws.engine.dispose()
    assert sealed is not None
    assert design["schemes"] == sealed.scheme_set.n_schemes


def test_validity_study_takes_a_scheme_set_and_station_sizes() -> None:
    """A bare scheme set (here simple randomisation of 8 stations, C(8, 4) = 70 schemes)
    is simulated as given; sizes of the wrong length are refused."""
    ids = pd.DataFrame({"station_id": [f"S{i}" for i in range(8)]})
    schemes = randomise_clusters(
        ids, id_column="station_id", method="simple", seed=1
    ).scheme_set.schemes
    sizes = [10.0, 20, 30, 40, 10, 20, 30, 40]
    study = validity_study(
        schemes=schemes,
        station_sizes=sizes,
        n_trials=10,
        n_alternative=0,
        cvs=(0.2,),
        parts=("counts",),
    )
    assert (study.design["stations"], study.design["schemes"]) == (8, 70)
    assert study.design["station_sizes"] == sizes
    with pytest.raises(DesignError, match="8 positive numbers"):
        validity_study(schemes=schemes, station_sizes=[1.0, 2.0], n_trials=10)


def test_design_of_the_domestic_abuse_protocol_reports_its_20_stations() -> None:
    """Its own constrained scheme set (6,125 schemes) and its own primary outcome."""
    d = _json(["design", "--protocol", "domestic-abuse", "--trials", "50"])
    assert d["trial"] == "domestic-abuse"
    assert d["n_stations"] == 20
    assert d["stations"] == {"intervention": 10, "control": 10}
    assert d["design"]["method"] == "constrained"
    assert sorted(d["design"]["strata"].values()) == [6, 7, 7]
    assert d["randomisation"]["n_schemes"] == 6125
    assert d["randomisation"]["total_schemes"] == DOMESTIC_ABUSE_STRATIFIED
    assert d["primary_outcome"]["key"] == "da_assessed"


def test_the_protocol_scheme_set_is_its_own_randomisation() -> None:
    """Connect's stratified set before any station is known has the C(6, 3)^2 = 400
    schemes of `connect_schemes`, with 3 + 3 in each of 6 urban and 6 rural stations."""
    own = protocol_schemes(resolve_protocol("connect"))
    assert own.method == "stratified" and own.strata == {"rural": 6, "urban": 6}
    assert own.scheme_set.n_schemes == connect_schemes().shape[0] == math.comb(6, 3) ** 2


def test_report_audit_power_is_computed_for_the_workspace_scheme_set(
    published_report: TrialReport,
    reported_root: Path,
) -> None:
    """The report's power numbers are `arm_test_power` over the workspace's own sealed
    scheme set and its sample's follow-up flagged incidents per station; another scheme
    set of the same 12 stations (simple randomisation, C(12, 6) = 924 schemes) gives other
    numbers, and the sentence names the design it was computed for."""
    assert published_report.audit is not None
    power = published_report.audit.power
    assert power is not None
    ws = open_workspace(reported_root)
    allocation, sample = current_allocation(ws), current_sample(ws)
    seed = ws.protocol.audit.seed
    ws.engine.dispose()
    assert allocation is not None and sample is not None
    items = sample.items
    flagged = items[(items["kind"] == "tagged") & (items["period"] == "followup")]
    counts = flagged["station_id"].value_counts()
    sizes = [int(counts.get(s, 0)) for s in allocation.cluster_ids]
    own = arm_test_power(
        allocation.scheme_set.schemes, items_per_station=sizes, n_sims=AUDIT_POWER_SIMS, seed=seed
    )
    assert power["power"] == own.to_dict()["power"]
    assert power["items_per_station"] == sizes
    assert (power["stations"], power["schemes"]) == (12, 400)
    note = published_report.audit.power_note
    assert "12 stations (6 intervention, 6 control) randomised over 400 schemes" in note
    ids = pd.DataFrame({"station_id": list(allocation.cluster_ids)})
    simple = randomise_clusters(ids, id_column="station_id", method="simple", seed=1)
    other = arm_test_power(
        simple.scheme_set.schemes, items_per_station=sizes, n_sims=AUDIT_POWER_SIMS, seed=seed
    )
    assert other.schemes == 924
    assert other.power != own.power


def test_audit_power_for_a_large_scheme_set_samples_its_reference() -> None:
    """20 stations, 6,125 schemes: each simulated test runs over 500 schemes drawn once (a
    Monte Carlo randomisation test), and stations without a rated incident are left out."""
    schemes = protocol_schemes(resolve_protocol("domestic-abuse")).scheme_set.schemes
    sizes = [0, 0, *([10] * 18)]
    power = arm_test_power(
        schemes, items_per_station=sizes, n_sims=200, reference_schemes=500, seed=2
    )
    assert (power.stations, power.schemes, power.reference_schemes) == (20, 6125, 500)
    assert 0 <= power.power[0.1] <= power.power[0.3] <= 1
    size = accuracy_test_size(
        schemes, items_per_station=sizes, n_sims=200, reference_schemes=500, seed=2
    )
    assert size.rated_stations == 18
    assert size.randomisation_test <= 0.05 + 3 * size.monte_carlo_se
    with pytest.raises(AuditError, match="one per station"):
        accuracy_test_size(schemes, items_per_station=[1, 2, 3], n_sims=10)
    assert np.asarray(schemes).shape == (6125, 20)
