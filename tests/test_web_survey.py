"""An officer's questionnaire: no link closes on a half answer without asking; progress;
pages that say what happened to a link. On SQLite and on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from policetrial.records import db
from policetrial.records.workspace import open_workspace

from .web_fixtures import WebTrial, csrf_from


def _submissions(trial: WebTrial) -> int:
    ws = open_workspace(trial.root, database_url=trial.database_url)
    with ws.engine.connect() as connection:
        n = connection.execute(select(func.count()).select_from(db.survey_submissions)).scalar()
    ws.engine.dispose()
    return int(n or 0)


def test_submitting_a_part_answered_questionnaire_asks_first(web_trial: WebTrial) -> None:
    """The issue: one answer of 31 submitted closed the link for good, without a word."""
    token = web_trial.links["pre"][1]
    client = web_trial.client()
    page = client.get(f"/survey/{token}")
    data = client.get(f"/survey/{token}", params={"format": "json"}).json()
    items = [i for instrument in data["instruments"] for i in instrument["items"]]
    total = len(items)
    assert f"Question 1 of {total}" in page.text and f"Question {total} of {total}" in page.text
    assert f'<label for="survey-progress">Answered so far: 0 of {total}' in page.text
    csrf = csrf_from(page.text)
    first = items[0]
    before = _submissions(web_trial)
    asked = client.post(
        f"/survey/{token}", data={"csrf_token": csrf, "action": "submit", first["id"]: first["min"]}
    )
    assert asked.status_code == 200
    assert f"{total - 1} of {total} questions are not answered yet" in asked.text
    assert f'href="#q-{items[1]["id"]}">Question 2</a>' in asked.text
    assert f"Submit with {total - 1} unanswered" in asked.text
    assert f"Answered so far: 1 of {total}" in asked.text
    assert _submissions(web_trial) == before
    # Nothing closed: the link opens with the answer kept.
    again = web_trial.client().get(f"/survey/{token}", params={"format": "json"}).json()
    assert again["answers"] == {first["id"]: first["min"]}
    # A JSON client is told the same, with the list.
    as_json = client.post(
        f"/survey/{token}",
        data={"csrf_token": csrf, "action": "submit", first["id"]: first["min"]},
        headers={"accept": "application/json"},
    )
    assert as_json.status_code == 409
    assert [u["number"] for u in as_json.json()["unanswered"]] == list(range(2, total + 1))
    # The officer chooses to submit as it is.
    done = client.post(
        f"/survey/{token}",
        data={"csrf_token": csrf, "action": "submit-incomplete", first["id"]: first["min"]},
    )
    assert done.status_code == 303 and done.headers["location"] == "/survey/done"
    assert _submissions(web_trial) == before + 1
    used = client.get(f"/survey/{token}")
    assert used.status_code == 410
    assert "This questionnaire has already been sent" in used.text
    assert "nothing more is needed from you" in used.text and "trial team" in used.text


def test_a_fully_answered_questionnaire_is_submitted_at_once(web_trial: WebTrial) -> None:
    token = web_trial.links["post"][0]
    client = web_trial.client()
    csrf = csrf_from(client.get(f"/survey/{token}").text)
    data = client.get(f"/survey/{token}", params={"format": "json"}).json()
    answers = {i["id"]: str(i["min"]) for ins in data["instruments"] for i in ins["items"]}
    done = client.post(f"/survey/{token}", data={"csrf_token": csrf, "action": "submit", **answers})
    assert done.status_code == 303


def test_a_bad_link_says_what_happened_and_whom_to_contact(web_trial: WebTrial) -> None:
    client = web_trial.client()
    cut = client.get("/survey/" + web_trial.links["pre"][2][:20])
    assert cut.status_code == 404
    assert "This link is not recognised" in cut.text and "cut short" in cut.text
    assert "contact the trial team" in cut.text
    as_json = client.get("/survey/nonsense", params={"format": "json"}).json()
    assert as_json["reason"] == "unknown" and "trial team" in as_json["advice"]


def test_the_contact_named_at_serve_time_is_on_the_link_pages(web_trial: WebTrial) -> None:
    client = web_trial.client(survey_contact="Jo Bloggs, research office, 01234 567890")
    page = client.get("/survey/" + "y" * 43)
    assert page.status_code == 404
    assert "contact Jo Bloggs, research office, 01234 567890" in page.text
