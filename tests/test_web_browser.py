"""The web application in headless Chromium, driven by Playwright, against a real server.

Drives Debian's Chromium (`/usr/bin/chromium`) through Playwright's `executable_path`; no
browser is downloaded. Under CI=true a missing browser fails the test; elsewhere it skips
with the reason. Screenshots go to tests/artefacts/web-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from .report_fixtures import ARTEFACTS
from .test_report_browser import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip
from .web_fixtures import PASSWORD, WebTrial
from .web_server import running_server


def _log_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.browser
def test_auditor_rates_officer_answers_and_blinding_holds(web_trial: WebTrial) -> None:
    sync_playwright = _browser_or_skip()
    ARTEFACTS.mkdir(exist_ok=True)
    tag = "pg" if web_trial.database_url else "sqlite"
    outside: list[str] = []
    problems: list[str] = []
    with (
        running_server(web_trial.root, web_trial.database_url) as (url, _),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        page = context.new_page()
        page.on(
            "request",
            lambda r: None if r.url.startswith(url) else outside.append(r.url),
        )
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        # An auditor rates three incidents, one click each.
        _log_in(page, url, "auditor")
        assert page.url.endswith("/audit")
        seen = []
        for _ in range(3):
            heading = page.locator("#item").inner_text()
            seen.append(heading)
            page.locator(".choices button").first.click()
            page.wait_for_load_state()
        assert len(set(seen)) == 3
        assert "Rated by you: 3" in page.content()
        page.screenshot(path=str(ARTEFACTS / f"web-audit-{tag}.png"), full_page=True)
        # The last verdict was a slip: undone, its incident is on screen again.
        last = seen[-1].removeprefix("Incident ")
        page.get_by_role("button", name=f"Undo my verdict on {last}").click()
        page.wait_for_load_state()
        assert page.locator("#item").inner_text() == seen[-1]
        assert "Rated by you: 2" in page.content()
        page.screenshot(path=str(ARTEFACTS / f"web-audit-undone-{tag}.png"), full_page=True)
        # ... and cannot reach the allocation.
        response = page.goto(f"{url}/randomisation")
        assert response is not None and response.status == 403
        assert "Not allowed" in page.content()
        page.screenshot(path=str(ARTEFACTS / f"web-auditor-refused-{tag}.png"))
        page.get_by_role("button", name="Log out").click()
        # An officer answers from a link: saves, comes back, submits.
        link = f"{url}/survey/{web_trial.links['pre'][0]}"
        page.goto(link)
        fieldsets = page.locator("fieldset")
        count = fieldsets.count()
        assert count > 10
        fieldsets.nth(0).locator("input[type=radio]").last.check()
        page.get_by_role("button", name="Save and finish later").click()
        assert "Saved 1 answers" in page.content()
        page.goto(link)
        assert page.locator("fieldset").nth(0).locator("input[type=radio]").last.is_checked()
        for i in range(count):
            page.locator("fieldset").nth(i).locator("input[type=radio]").first.check()
        page.screenshot(path=str(ARTEFACTS / f"web-questionnaire-{tag}.png"), full_page=True)
        page.get_by_role("button", name="Submit").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Thank you"
        page.screenshot(path=str(ARTEFACTS / f"web-thanks-{tag}.png"))
        again = page.goto(link)
        assert again is not None and again.status == 410
        # The statistician's dashboard and sealed record.
        _log_in(page, url, "statistician")
        page.set_viewport_size({"width": 1280, "height": 900})
        assert "Eligible officers by arm" in page.content()
        page.screenshot(path=str(ARTEFACTS / f"web-dashboard-{tag}.png"), full_page=True)
        page.goto(f"{url}/randomisation")
        assert "verified" in page.content()
        page.screenshot(path=str(ARTEFACTS / f"web-randomisation-{tag}.png"), full_page=True)
        browser.close()
    assert not outside, outside
    # The refused pages (403, 410) are meant; nothing else may fail.
    assert not [m for m in problems if "403" not in m and "410" not in m], problems
