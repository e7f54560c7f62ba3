"""The sealed record in a workspace: constrained by the protocol, complete, tamper-evident."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from policetrial.errors import ProtocolError, RandomisationError, WorkspaceError
from policetrial.ingest.importer import import_extract
from policetrial.outcomes.compute import workspace_outcomes
from policetrial.protocol.schema import builtin_protocol_path, parse_protocol
from policetrial.randomise.sealed import current_allocation, randomise_workspace
from policetrial.records import db
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.roster import eligible_officers, load_officers
from policetrial.records.workspace import Workspace, init_workspace, open_workspace
from policetrial.synth import SynthForce

CONSTRAINED = """[randomisation]
method = "constrained"
strata = ["area_type"]
covariates = ["population", "eligible_officers", "baseline_mh_calls"]
intervention_stations = 6
metric = "l2"
cutoff = 0.2
seed = 20160501
"""


def _protocol_text(randomisation: str) -> str:
    text = builtin_protocol_path("connect").read_text()
    return re.sub(r"\[randomisation\].*?(?=\n\[)", randomisation, text, flags=re.S)


def _switch(workspace: Workspace, randomisation: str) -> Workspace:
    (workspace.root / "trial.toml").write_text(_protocol_text(randomisation))
    workspace.engine.dispose()
    return open_workspace(workspace.root)


def _counts(workspace: Workspace) -> tuple[int, int]:
    with workspace.engine.connect() as c:
        allocations = c.execute(select(func.count()).select_from(db.allocations)).scalar_one()
        changes = c.execute(select(func.count()).select_from(db.change_log)).scalar_one()
    return int(allocations), int(changes)


def test_synth_and_workspace_give_the_same_allocation(
    imported: Workspace, force: SynthForce
) -> None:
    sealed = current_allocation(imported)
    assert sealed is not None and sealed.verify()
    assert sealed.arms == force.arms
    assert sealed.method == "stratified" and sealed.scheme_set.n_schemes == 400


def test_constrained_workspace_record(imported_copy: Workspace) -> None:
    # Baseline counts by the analysis's own route, before the allocation changes.
    baseline = workspace_outcomes(imported_copy).station_period
    baseline = baseline[baseline["period"] == "baseline"].set_index("station_id")["mh_calls"]
    ws = _switch(imported_copy, CONSTRAINED)
    sealed = randomise_workspace(ws, force=True, reason="balance on size and demand")
    assert sealed.verify()
    assert sealed.method == "constrained"
    assert sealed.parameters["covariates"] == [
        "population",
        "eligible_officers",
        "baseline_mh_calls",
    ]
    # The inputs hold every station's strata and covariate values, as used.
    inputs = pd.DataFrame(sealed.inputs["clusters"]).set_index("station_id")
    assert list(inputs.index) == list(sealed.cluster_ids)
    officers = eligible_officers(ws.protocol, load_officers(ws))
    per_station = officers.groupby("station_id")["officer_key"].nunique()
    assert inputs["eligible_officers"].to_dict() == per_station.reindex(inputs.index).to_dict()
    assert inputs["baseline_mh_calls"].to_dict() == baseline.reindex(inputs.index).to_dict()
    # The candidate set: arm sizes within strata, scores stored, chosen among them.
    strata = inputs["area_type"].to_numpy()
    schemes = sealed.scheme_set.schemes
    for stratum, wanted in sealed.parameters["per_stratum"].items():
        assert (schemes[:, strata == stratum].sum(axis=1) == wanted).all()
    scores = sealed.scheme_set.scores
    assert scores is not None and len(scores) == sealed.scheme_set.n_schemes
    assert scores.max() <= sealed.diagnostics["cutoff_score"] * (1 + 1e-9)
    assert sealed.chosen_score == scores[sealed.chosen_index]
    assert sealed.diagnostics["n_examined"] == sealed.scheme_set.total == 400
    assert set(sealed.to_dict()["score_summary"]) >= {"mean", "sd", "q05", "q50", "q95"}
    table = sealed.balance_table()
    assert table is not None and set(table.rows["covariate"]) >= {"population", "eligible_officers"}
    with ws.engine.connect() as c:
        logged = c.execute(
            text("SELECT action, reason FROM change_log WHERE entity = 'allocation' ORDER BY id")
        ).all()
    assert [tuple(r) for r in logged][-1] == ("re-randomise", "balance on size and demand")
    ws.engine.dispose()


def test_altered_scores_break_the_digest(imported_copy: Workspace) -> None:
    ws = _switch(imported_copy, CONSTRAINED.replace('"baseline_mh_calls"', '"district"'))
    randomise_workspace(ws, force=True, reason="constrained")
    with ws.engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("UPDATE scheme_sets SET scores = NULL"))
    with ws.engine.begin() as c:
        c.execute(text("DROP TRIGGER scheme_sets_no_update"))
        stored = c.execute(text("SELECT allocation_id, scores FROM scheme_sets")).all()[-1]
        altered = np.frombuffer(stored[1], dtype="<f8").copy()
        altered[0] *= 1.000001
        c.execute(
            text("UPDATE scheme_sets SET scores = :s WHERE allocation_id = :i"),
            {"s": altered.tobytes(), "i": stored[0]},
        )
    sealed = current_allocation(ws)
    assert sealed is not None and not sealed.verify()
    ws.engine.dispose()


def test_failed_randomisation_stores_nothing(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """Baseline covariates before incidents are imported: a clear error, no record."""
    protocol_file = tmp_path / "constrained.toml"
    protocol_file.write_text(_protocol_text(CONSTRAINED))
    ws = init_workspace(tmp_path / "ws", protocol=str(protocol_file))
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    before = _counts(ws)
    with pytest.raises(WorkspaceError, match="import it first"):
        randomise_workspace(ws)
    assert _counts(ws) == before
    too_tight = CONSTRAINED.replace("cutoff = 0.2", "cutoff = 0.001").replace(
        ', "baseline_mh_calls"', ""
    )
    ws = _switch(ws, too_tight)
    before = _counts(ws)  # the edit of trial.toml is logged when the workspace opens
    with pytest.raises(RandomisationError, match="keeps 0 of 400 schemes"):
        randomise_workspace(ws)
    assert _counts(ws) == before
    assert current_allocation(ws) is None
    ws.engine.dispose()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('method = "constrained"\nseed = 1', "constrained randomisation needs covariates"),
        ('covariates = ["height"]\nseed = 1', "unknown covariate"),
        ('covariates = ["population"]\ncutoff = 0.1\nschemes = 10\nseed = 1', "not both"),
        ('covariates = ["population"]\ncategorical = ["area_type"]\nseed = 1', "not among"),
    ],
)
def test_protocol_randomisation_settings_are_checked(setting: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(_protocol_text(f"[randomisation]\n{setting}\n"))
