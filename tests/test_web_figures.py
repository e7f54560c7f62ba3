"""The dashboard's figures: server-drawn SVG beside the same numbers as tables.

On SQLite and on PostgreSQL; blinding: the trial manager's figures never split by arm.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from policetrial.web.figures import completeness_heatmap, responses_by_station

from .web_fixtures import WebTrial, login

SVG = re.compile(r"<svg .*?</svg>", re.S)


def test_each_figure_is_svg_with_a_title_and_its_numbers_as_a_table(web_trial: WebTrial) -> None:
    client = web_trial.client()
    login(client, "manager")
    html = client.get("/").text
    data = client.get("/", params={"format": "json"}).json()
    figures = SVG.findall(html)
    assert len(figures) == 3
    for svg in figures:
        tree = ElementTree.fromstring(svg)  # well formed
        assert tree.get("role") == "img"
        title = tree.find("{http://www.w3.org/2000/svg}title")
        assert title is not None and title.text
        assert "style=" not in svg and "<script" not in svg  # the CSP allows neither
    trained = data["training"]["trained_by_month"]
    assert trained[-1]["cumulative"] == sum(r["first_trained"] for r in trained)
    assert trained[-1]["cumulative"] == data["training"]["attended"]
    assert f"trained {trained[-1]['cumulative']:,}" in html
    assert "<caption>Officers first trained by month</caption>" in html
    rows = data["responses_by_station"]["rows"]
    assert len(rows) == data["stations"] and all("group" not in r for r in rows)
    assert "<caption>Responses by station</caption>" in html
    for r in rows:
        for t in data["responses_by_station"]["times"]:
            assert f"{r['responded'][t]} of {r['eligible'][t]}" in html
    # The statistician's rows say each station's arm.
    statistician = web_trial.client()
    login(statistician, "statistician")
    full = statistician.get("/", params={"format": "json"}).json()
    groups = {r["group"] for r in full["responses_by_station"]["rows"]}
    assert groups == set(full["arm_labels"].values()) and len(groups) == 2


def test_figures_escape_names_and_mark_low_months_by_symbol() -> None:
    svg = completeness_heatmap(
        ["2016-01", "2016-02"],
        [{"station": "<b>North & East</b>", "counts": [10, 2], "low": [False, True], "total": 12}],
        low_share=0.5,
    )
    ElementTree.fromstring(svg)
    assert "&lt;b&gt;North &amp; East" in svg and "<b>" not in svg
    assert svg.count("▾") == 2  # the low month, and the title that explains the mark
    bars = responses_by_station(
        [{"station": "A", "rates": {"pre": 0.5, "post": None}}], times=["pre", "post"]
    )
    assert "50%" in bars and "none eligible" in bars
