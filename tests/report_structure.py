"""The report's structure as data, for the golden-file tests.

`structure(html)` lists what a reader navigates by (headings, section ids, tables with
their shape, figures), without the numbers, which differ between data sets. The golden
files in tests/golden/ are rewritten on purpose, never by hand:

    POLICETRIAL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report_render.py

and the diff is then reviewed like code.
"""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

UPDATE_ENV = "POLICETRIAL_UPDATE_GOLDEN"


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, Any]] = []
        self._heading: str | None = None
        self._text: list[str] = []
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = tag, []
        elif tag == "section":
            self.items.append({"section": a.get("id")})
        elif tag == "table":
            self.items.append(
                {
                    "table": a.get("id"),
                    "rows": int(a.get("data-rows") or 0),
                    "columns": int(a.get("data-columns") or 0),
                }
            )
        elif tag == "caption":
            self._caption, self._text = True, []
        elif tag == "figure":
            self.items.append({"figure": a.get("id")})

    def handle_endtag(self, tag: str) -> None:
        if tag == self._heading:
            self.items.append({self._heading: " ".join("".join(self._text).split())})
            self._heading = None
        elif tag == "caption" and self._caption:
            self.items[-1]["caption"] = " ".join("".join(self._text).split())
            self._caption = False

    def handle_data(self, data: str) -> None:
        if self._heading or self._caption:
            self._text.append(data)


def structure(html: str) -> list[dict[str, Any]]:
    """Headings, sections, tables (id, rows, columns, caption) and figures, in page order."""
    parser = _Structure()
    parser.feed(html)
    return parser.items


def check_golden(path: Path, html: str) -> None:
    """Compare the structure with the golden file (or rewrite it when asked to)."""
    found = structure(html)
    if os.environ.get(UPDATE_ENV) == "1" or not path.exists():
        if not path.exists() and os.environ.get("CI", "").lower() == "true":
            raise AssertionError(f"{path} is missing; create it with {UPDATE_ENV}=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
        return
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert found == expected, (
        f"the report's structure differs from {path.name}; if the change is intended, "
        f"rerun with {UPDATE_ENV}=1 and review the diff"
    )
