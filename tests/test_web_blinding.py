"""An auditor's session cannot learn arm, period, station or identifiers from any route.

Every route of the app is tried (every GET, each also as JSON by `?format=json` and by the
Accept header, every POST with a valid CSRF token), with real audit ids, a real
questionnaire link and every downloadable file name; the out/ folder holds a results file
and a report that do name arms and stations, so a leak through a download would show.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from fastapi.routing import APIRoute

from policetrial.audit.sample import current_sample
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import load_officers, load_stations
from policetrial.records.store import read_store
from policetrial.records.workspace import open_workspace
from policetrial.web.app import DOWNLOADS

from .web_fixtures import WebTrial, csrf_from, login


def _secrets(trial: WebTrial) -> dict[str, set[str]]:
    ws = open_workspace(trial.root, database_url=trial.database_url)
    stations = load_stations(ws)
    allocation = current_allocation(ws)
    sample = current_sample(ws)
    assert allocation is not None and sample is not None
    protocol = ws.protocol
    found = {
        "station": set(stations["station_id"]) | set(stations["station_name"]),
        "arm": {"intervention", "control", protocol.arms.intervention, protocol.arms.control},
        "period": {"baseline", "followup", "follow-up", "follow up"},
        "identifier": set(sample.items["incident_key"])
        | set(load_officers(ws)["officer_key"])
        | set(read_store(ws, "beats")["beat"]),
    }
    # The calendar date of an audited incident tells its period.
    incidents = read_store(ws, "incidents")
    audited = incidents[incidents["incident_key"].isin(set(sample.items["incident_key"]))]
    created = pd.to_datetime(audited["created_at"])
    found["incident date"] = set(created.dt.strftime("%Y-%m-%d")) | set(
        created.dt.strftime("%d/%m/%Y")
    )
    ws.engine.dispose()
    return found


def _leaks(body: str, secrets: dict[str, set[str]]) -> list[str]:
    # "the control room" (in a questionnaire scenario) is a place, not an arm.
    body = re.sub(r"control room", "", body, flags=re.I)
    leaks = []
    for kind, values in secrets.items():
        for value in values:
            if value and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", body, re.I):
                leaks.append(f"{kind}: {value!r}")
    return leaks


def _fillings(path: str, audit_ids: list[str], link: str, names: list[str]) -> list[dict[str, str]]:
    """Values for a route's path parameters: every file name, two audit ids, a real link."""
    if "{name}" in path:
        return [{"name": n} for n in names]
    if "{audit_id}" in path:
        return [{"audit_id": a} for a in audit_ids]
    if "{token}" in path:
        return [{"token": link}]
    if "{username}" in path:
        return [{"username": "admin"}, {"username": "auditor"}]
    return [{}]


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_no_route_tells_an_auditor_arm_period_station_or_identifier(web_trial: WebTrial) -> None:
    secrets = _secrets(web_trial)
    out = web_trial.root / "out"
    station = sorted(secrets["station"])[0]
    (out / "results.json").write_text(f'{{"arm": "intervention", "station": "{station}"}}')
    (out / "report.html").write_text(f"<p>control arm, {station}, baseline period</p>")
    # The check itself finds what these files name (so a leak through them would show).
    assert _leaks((out / "results.json").read_text(), secrets)
    assert _leaks((out / "report.html").read_text(), secrets)
    client = web_trial.client()
    login(client, "auditor")
    token = csrf_from(client.get("/audit").text)
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    sample = current_sample(ws)
    ws.engine.dispose()
    assert sample is not None
    audit_ids = list(sample.items["audit_id"][:3])
    link = web_trial.links["post"][0]
    names = [*DOWNLOADS, "trial.db", "trial.toml"]
    app = client.app
    tried: list[tuple[str, str, int]] = []

    def check(method: str, url: str, **kwargs: Any) -> None:
        for variant in (
            {},
            {"params": {"format": "json"}},
            {"headers": {"accept": "application/json"}},
        ):
            response = client.request(method, url, **kwargs, **variant)
            body = response.text
            if response.headers.get("location"):
                body += " " + response.headers["location"]
            leaks = _leaks(body, secrets)
            assert not leaks, f"{method} {url} {variant} -> {response.status_code}: {leaks}"
            tried.append((method, url, response.status_code))

    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    for route in routes:
        for method in sorted(route.methods):
            if route.path in ("/logout",):
                continue
            fillings = _fillings(route.path, audit_ids[:2], link, names)
            for values in fillings:
                url = _fill(route.path, values)
                if method == "GET":
                    check("GET", url)
                else:
                    form = {"csrf_token": token, "verdict": "cannot tell", "confirm": "yes",
                            "username": "someone", "role": "auditor", "password": "x" * 12,
                            "action": "save"}  # fmt: skip
                    check("POST", url, data=form)
    for path in ("/openapi.json", "/static/style.css"):
        check("GET", path)
    statuses = {(m, u): s for m, u, s in tried}
    assert statuses[("GET", "/randomisation")] == 403
    assert statuses[("GET", "/downloads/results.json")] == 403
    assert statuses[("GET", "/")] == 403
    assert statuses[("GET", "/audit")] == 200
    assert len(tried) > 60


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_no_allocation_for_the_trial_manager_or_administrator(
    web_trial: WebTrial, role: str
) -> None:
    """They see totals: no page of theirs names an arm beside a station."""
    secrets = _secrets(web_trial)
    client = web_trial.client()
    login(client, role)
    for path in ("/", "/users"):
        for params in ({}, {"format": "json"}):
            body = client.get(path, params=params).text
            arms = {a for a in secrets["arm"] if re.search(rf"\b{re.escape(a)}\b", body, re.I)}
            assert not arms, (role, path, params, arms)
