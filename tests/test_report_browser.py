"""The report in headless Chromium: it renders, makes no outside request, and is photographed.

Drives Debian's Chromium (`/usr/bin/chromium`) through Playwright's `executable_path`;
no browser is ever downloaded. Under CI=true a missing browser fails the test; elsewhere
it skips with the reason. The full-page screenshot is kept in tests/artefacts/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from policetrial.records.workspace import Workspace

from .report_fixtures import ARTEFACTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _browser_or_skip() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        problem = f"the playwright package is not installed ({exc})"
    if problem is None and not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"browser test cannot run under CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.mark.browser
def test_report_renders_offline_in_chromium(reported: Workspace) -> None:
    sync_playwright = _browser_or_skip()
    from policetrial.report import write_report

    files = write_report(reported)
    url = files.html.resolve().as_uri()
    requests: list[str] = []
    outside: list[str] = []
    errors: list[str] = []
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            def route(request_route: Any) -> None:
                if request_route.request.url.startswith(("file://", "data:")):
                    request_route.continue_()
                else:
                    outside.append(request_route.request.url)
                    request_route.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load")
            title = page.title()
            svgs = page.locator("figure svg").count()
            widths = page.eval_on_selector_all(
                "figure svg", "els => els.map(e => e.getBoundingClientRect().width)"
            )
            tables = page.locator("table").count()
            flow_text = page.locator("#figure-consort_flow").text_content() or ""
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert outside == [], f"the report asked for outside resources: {outside}"
    assert requests == [url], requests
    assert errors == []
    assert "cluster randomised" in title
    assert svgs == len(files.report.figures) and all(w > 300 for w in widths)
    assert tables >= 10
    assert "Randomised" in flow_text and "Stations: 12" in flow_text
    assert shot.stat().st_size > 100_000
