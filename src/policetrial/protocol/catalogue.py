"""The outcomes a protocol can name, with what each one counts.

The definitions themselves are SQL files in `policetrial/outcomes/sql/`; this catalogue is the
list of names (the columns of the station × period table) and their plain-English
meaning, which the protocol validates against and the report prints.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OUTCOMES", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    name: str
    label: str
    definition: str
    kind: str = "count"


OUTCOMES: dict[str, Outcome] = {
    o.name: o
    for o in (
        Outcome(
            "incidents",
            "All incidents",
            "Incidents created in the window and assigned to the station.",
        ),
        Outcome(
            "police_response",
            "Incidents with a police response",
            "Incidents graded for deployment (a response grade) and attended by at least one "
            "officer: the published trial's primary outcome.",
        ),
        Outcome(
            "mh_tagged",
            "Incidents with a mental-health or vulnerability tag",
            "Incidents carrying at least one qualifier in the protocol's mental-health or "
            "vulnerability tag lists.",
        ),
        Outcome(
            "mh_marked",
            "Incidents involving a person with a warning marker",
            "Incidents linked to a person who held a valid mental-health warning marker at the "
            "incident's created time (valid_from <= created_at, and valid_to blank or later).",
        ),
        Outcome(
            "mh_calls",
            "Calls with a mental-health / vulnerability tag or marker",
            "Incidents that are tagged (mh_tagged) or marked (mh_marked): the seed protocol's "
            "primary outcome.",
        ),
        Outcome(
            "mh_out_of_hours",
            "Mental-health calls out of hours",
            "mh_calls created outside office hours: weekday evenings and nights, weekends and "
            "bank holidays.",
        ),
        Outcome(
            "mh_office_hours",
            "Mental-health calls in office hours",
            "mh_calls created on a working weekday within the protocol's office hours.",
        ),
        Outcome(
            "frequent_callers",
            "Frequent callers",
            "Distinct persons, in a caller role, with at least the protocol's calls in one "
            "calendar month or in three consecutive calendar months (calls counted force-wide "
            "within the window), attributed to the station where they made most of their calls "
            "in the window.",
        ),
        Outcome(
            "s136",
            "Section 136 detentions",
            "Section 136 Mental Health Act detentions made in the window, attributed through the "
            "linked incident's station (or, with no incident, the detaining officer's station).",
        ),
    )
}
