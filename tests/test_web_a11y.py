"""axe-core finds no WCAG 2.2 A/AA violation on any page, for any role, on a phone and a
desktop.

axe-core comes from the npm registry (`make test` installs it into build/axe, see the
Makefile); Playwright injects it into Debian's Chromium, with the page's CSP bypassed for
that one script (the pages themselves carry none). Under CI=true a missing browser or a
missing axe-core fails the test; elsewhere it skips with the reason. The pages are
reached as their users reach them, through a real server: every role's pages, the
confirmation and reset-link pages, the audit card (with the undo of the last verdict
offered, and after it), an officer's questionnaire (blank, with the unanswered-questions
prompt, submitted, used again) and the error pages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_report_browser import CHROMIUM, CHROMIUM_ARGS, IN_CI, _browser_or_skip
from .web_fixtures import PASSWORD, WebTrial
from .web_server import running_server

AXE = Path(__file__).resolve().parents[1] / "build" / "axe" / "node_modules" / "axe-core"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


def _axe_or_skip() -> Path:
    script = AXE / "axe.min.js"
    if not script.is_file():
        problem = f"{script} is missing (run `make install`, which installs axe-core from npm)"
        if IN_CI:
            pytest.fail(f"accessibility test cannot run under CI: {problem}")
        pytest.skip(problem)
    return script


def _violations(page: Any, script: Path) -> list[str]:
    page.add_script_tag(path=str(script))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
    ]


def _overflow(page: Any) -> bool:
    """Whether the page is wider than the screen (something runs off on a phone)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"))


class Walk:
    """One browser page walked through the app at one width; axe's findings per page."""

    def __init__(self, page: Any, url: str, script: Path, width: str) -> None:
        self.page, self.url, self.script, self.width = page, url, script, width
        self.checked: dict[str, list[str]] = {}
        self.wide: list[str] = []

    def check(self, name: str, go: Callable[[Any], Any]) -> None:
        go(self.page)
        self.page.wait_for_load_state()
        key = f"{name} @ {self.width}"
        self.checked[key] = _violations(self.page, self.script)
        if _overflow(self.page):
            self.wide.append(key)

    def open(self, name: str, path: str) -> None:
        self.check(name, lambda page: page.goto(f"{self.url}{path}"))

    def log_in(self, username: str) -> None:
        self.page.goto(f"{self.url}/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_load_state()

    def log_out(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_load_state()


def _walk(walk: Walk, token: str) -> None:
    """Every page, as each of its users reaches it."""
    walk.open("login", "/login")
    walk.open("not found", "/no-such-page")
    walk.open("bad link", "/survey/not-a-link")
    # An officer: blank questionnaire, the unanswered prompt, done, the link used again.
    walk.open("questionnaire", f"/survey/{token}")
    walk.check(
        "questionnaire unanswered",
        lambda page: page.get_by_role("button", name="Submit", exact=True).click(),
    )
    walk.check(
        "questionnaire done",
        lambda page: page.get_by_role("button", name=re.compile("^Submit with")).click(),
    )
    walk.open("questionnaire used", f"/survey/{token}")
    walk.log_in("admin")
    walk.open("admin dashboard", "/")
    walk.open("admin accounts", "/users")
    walk.open("admin account", "/account")
    walk.check(
        "admin confirm disable",
        lambda page: (
            page.goto(f"{walk.url}/users"),
            page.get_by_role("button", name="Disable manager").click(),
        ),
    )
    walk.check(
        "admin reset link",
        lambda page: (
            page.goto(f"{walk.url}/users"),
            page.get_by_role("button", name="Reset link for statistician").click(),
        ),
    )
    link = walk.page.locator("code").inner_text()
    walk.log_out()
    walk.check("reset form", lambda page: page.goto(link))
    walk.log_in("manager")
    walk.open("manager dashboard", "/")
    walk.open("manager refused", "/randomisation")
    walk.log_out()
    walk.log_in("statistician")
    walk.open("statistician dashboard", "/")
    walk.open("statistician randomisation", "/randomisation")
    walk.open("statistician downloads", "/downloads")
    walk.log_out()
    walk.log_in("auditor")
    walk.open("auditor audit", "/audit")
    # A verdict, then the next card with its undo, then the undone verdict back on screen.
    walk.check(
        "auditor undo offered",
        lambda page: page.locator("button[name='verdict']").first.click(),
    )
    walk.check(
        "auditor verdict undone",
        lambda page: page.get_by_role("button", name=re.compile("^Undo my verdict on ")).click(),
    )
    walk.open("auditor account", "/account")
    walk.log_out()


@pytest.mark.browser
# The markup comes from the templates, whatever the database holding the records: one
# database is enough for axe (every route runs on PostgreSQL too in tests/test_web*.py).
@pytest.mark.parametrize("web_trial", ["sqlite"], indirect=True)
def test_every_page_passes_axe_for_every_role_on_phone_and_desktop(web_trial: WebTrial) -> None:
    sync_playwright = _browser_or_skip()
    script = _axe_or_skip()
    checked: dict[str, list[str]] = {}
    wide: list[str] = []
    with (
        running_server(web_trial.root, web_trial.database_url) as (url, _),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for n, (width_name, (width, height)) in enumerate(WIDTHS.items()):
            context = browser.new_context(
                viewport={"width": width, "height": height}, bypass_csp=True
            )
            walk = Walk(context.new_page(), url, script, width_name)
            _walk(walk, web_trial.links["pre"][n])
            checked.update(walk.checked)
            wide.extend(walk.wide)
            context.close()
        browser.close()
    out = Path(__file__).parent / "artefacts"
    out.mkdir(exist_ok=True)
    tag = "pg" if web_trial.database_url else "sqlite"
    (out / f"web-axe-{tag}.json").write_text(
        json.dumps({"violations": checked, "wider_than_screen": wide}, indent=2) + "\n"
    )
    assert len(checked) == 2 * 22
    assert {k: v for k, v in checked.items() if v} == {}
    assert wide == [], f"pages wider than the screen: {wide}"
