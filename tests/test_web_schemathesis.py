"""schemathesis against the app's OpenAPI schema: no generated request gets a server error.

Every operation is fuzzed anonymously and in a session of each role, with a valid CSRF
token sent in the header, so that generated forms reach the code behind the CSRF check
(accounts are added, incidents rated, links opened with made-up tokens).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .web_fixtures import WebTrial, csrf_from, login

EXAMPLES = 15


@pytest.mark.parametrize("role", [None, "admin", "statistician", "auditor"])
def test_no_server_error_for_any_generated_request(web_trial: WebTrial, role: str | None) -> None:
    client = web_trial.client()
    if role is not None:
        login(client, role)
    home = {None: "/login", "admin": "/users", "statistician": "/randomisation"}
    token = csrf_from(client.get(home.get(role, "/audit")).text)
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    headers = {"cookie": cookies, "x-csrf-token": token}
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/logout":
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal calls
            response = case.call(headers=headers)
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

        run()
    assert calls > 100
    assert not failures, failures[:10]
