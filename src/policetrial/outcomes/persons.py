"""The SQL of a person count: persons with enough counted incidents in the window, by role.

Links of `incident_persons` in the outcome's roles, to incidents in the window that meet its
`among` condition (a column of `incident_base`); thresholds in the window, in consecutive
calendar months or within rolling days; each person at the station of most of their
counted incidents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sqlglot import exp

from policetrial.outcomes.sqltree import READ, codes_in, col, own_sql
from policetrial.protocol.conditions import (
    Every,
)
from policetrial.protocol.outcomes import OutcomeSpec, Threshold
from policetrial.protocol.schema import Protocol

__all__ = ["person_count_sql"]


def _months_touched(protocol: Protocol) -> int:
    """The most calendar months any window of the protocol touches."""
    if protocol.design.stepped:
        return protocol.design.period_months + 1
    base = protocol.parallel_periods.baseline
    baseline = (base.end.year - base.start.year) * 12 + base.end.month - base.start.month + 1
    return max(baseline, protocol.parallel_periods.followup.length_months + 1)


def _least_in_a_month(thresholds: Iterable[Threshold], months_touched: int) -> int:
    """The fewest counted incidents in some calendar month that every frequent person has."""
    bounds = []
    for t in thresholds:
        if t.per == "calendar_month":
            bounds.append(math.ceil(t.at_least / t.months))
        elif t.per == "window":
            bounds.append(math.ceil(t.at_least / months_touched))
        else:
            assert t.days is not None
            bounds.append(math.ceil(t.at_least / (math.ceil(t.days / 28) + 1)))
    return min(bounds)


def person_count_sql(protocol: Protocol, spec: OutcomeSpec) -> exp.Expr:
    roles = codes_in(col("role", "ip"), spec.roles).sql(dialect=READ)
    among = "" if isinstance(spec.among, Every) else f" AND ib.{spec.key}__among"
    least = _least_in_a_month(spec.thresholds, _months_touched(protocol))
    calendar_spans = sorted({t.months for t in spec.thresholds if t.per == "calendar_month"})
    rolling = sorted({t.days for t in spec.thresholds if t.per == "rolling_days" and t.days})
    # Read where it is used, not stored: both readers keep few of its rows (the candidates'
    # months, the links to counted incidents), and a stored copy of every link in a role
    # would hold the person links a second time (DuckDB spills it at a national scale).
    parts = [
        f"""caller_links AS NOT MATERIALIZED (
            SELECT ip.person_id, ip.incident_id, ip.age, ip.created_at
            FROM incident_persons AS ip
            JOIN spans AS s ON ip.created_at >= s.start_at AND ip.created_at < s.end_before
            WHERE {roles}
        )"""
    ]
    source = "caller_links AS c"
    if least > 1:
        parts.append(
            f"""candidates AS (
                SELECT DISTINCT c.person_id
                FROM caller_links AS c
                GROUP BY c.person_id,
                    EXTRACT(YEAR FROM c.created_at) * 12 + EXTRACT(MONTH FROM c.created_at)
                HAVING COUNT(*) >= {least}
            )"""
        )
        source = "caller_links AS c JOIN candidates AS k ON k.person_id = c.person_id"
    parts += [
        "distinct_windows AS (SELECT DISTINCT start_at, end_before FROM windows)",
        f"""calls AS (
            SELECT c.person_id, ib.incident_id, ib.station_id, ib.created_at, MAX(c.age) AS age
            FROM {source}
            JOIN incident_base AS ib ON ib.incident_id = c.incident_id{among}
            GROUP BY c.person_id, ib.incident_id, ib.station_id, ib.created_at
        )""",
        """in_window AS (
            SELECT dw.start_at, dw.end_before, c.person_id, c.incident_id, c.station_id,
                c.age, c.created_at,
                EXTRACT(YEAR FROM c.created_at) * 12 + EXTRACT(MONTH FROM c.created_at)
                    AS month_index
            FROM calls AS c
            JOIN distinct_windows AS dw
                ON c.created_at >= dw.start_at AND c.created_at < dw.end_before
        )""",
        """persons AS (
            SELECT start_at, end_before, person_id, MAX(age) AS oldest, COUNT(*) AS total
            FROM in_window
            GROUP BY start_at, end_before, person_id
        )""",
    ]
    tests = []
    joins = []
    for t in spec.thresholds:
        if t.per == "window":
            tests.append(f"p.total >= {t.at_least}")
    if calendar_spans:
        # A person's months in order; the counts of the next months within the span are
        # read from the following rows (LEAD), which every engine has, rather than by
        # joining the months to themselves.
        order = "OVER (PARTITION BY start_at, end_before, person_id ORDER BY month_index)"
        sums = ", ".join(
            f"n AS n{m}"
            if m == 1
            else "n"
            + "".join(
                f" + CASE WHEN LEAD(month_index, {k}) {order} <= month_index + {m - 1} "
                f"THEN LEAD(n, {k}) {order} ELSE 0 END"
                for k in range(1, m)
            )
            + f" AS n{m}"
            for m in calendar_spans
        )
        parts += [
            """monthly AS (
                SELECT start_at, end_before, person_id, month_index, COUNT(*) AS n
                FROM in_window
                GROUP BY start_at, end_before, person_id, month_index
            )""",
            f"""rolling AS (
                SELECT start_at, end_before, person_id, {sums}
                FROM monthly
            )""",
            "most_in_months AS MATERIALIZED (SELECT start_at, end_before, person_id, "
            + ", ".join(f"MAX(n{m}) AS n{m}" for m in calendar_spans)
            + " FROM rolling GROUP BY start_at, end_before, person_id)",
        ]
        joins.append(
            "LEFT JOIN most_in_months AS mm ON mm.start_at = p.start_at "
            "AND mm.end_before = p.end_before AND mm.person_id = p.person_id"
        )
        for t in spec.thresholds:
            if t.per == "calendar_month":
                tests.append(f"mm.n{t.months} >= {t.at_least}")
    for d in rolling:
        parts += [
            f"""within_{d} AS (
                SELECT a.start_at, a.end_before, a.person_id, a.incident_id, COUNT(*) AS n
                FROM in_window AS a
                JOIN in_window AS b
                    ON b.start_at = a.start_at AND b.end_before = a.end_before
                    AND b.person_id = a.person_id
                    AND b.created_at >= a.created_at
                    AND b.created_at < a.created_at + INTERVAL {d} DAY
                GROUP BY a.start_at, a.end_before, a.person_id, a.incident_id
            )""",
            f"""most_within_{d} AS MATERIALIZED (
                SELECT start_at, end_before, person_id, MAX(n) AS n
                FROM within_{d} GROUP BY start_at, end_before, person_id
            )""",
        ]
        joins.append(
            f"LEFT JOIN most_within_{d} AS r{d} ON r{d}.start_at = p.start_at "
            f"AND r{d}.end_before = p.end_before AND r{d}.person_id = p.person_id"
        )
        for t in spec.thresholds:
            if t.per == "rolling_days" and t.days == d:
                tests.append(f"r{d}.n >= {t.at_least}")
    adults = " AND NOT (p.oldest IS NOT NULL AND p.oldest < 18)" if spec.adults_only else ""
    parts += [
        f"""frequent AS (
            SELECT p.start_at, p.end_before, p.person_id
            FROM persons AS p
            {" ".join(joins)}
            WHERE ({" OR ".join(tests)}){adults}
        )""",
        """home AS (
            SELECT start_at, end_before, person_id, station_id
            FROM (
                SELECT iw.start_at, iw.end_before, iw.person_id, iw.station_id,
                    ROW_NUMBER() OVER (
                        PARTITION BY iw.start_at, iw.end_before, iw.person_id
                        ORDER BY COUNT(*) DESC, iw.station_id
                    ) AS pick
                FROM in_window AS iw
                JOIN frequent AS f
                    ON f.start_at = iw.start_at AND f.end_before = iw.end_before
                    AND f.person_id = iw.person_id
                WHERE iw.station_id IS NOT NULL
                GROUP BY iw.start_at, iw.end_before, iw.person_id, iw.station_id
            ) AS counted
            WHERE pick = 1
        )""",
    ]
    return own_sql(
        "WITH "
        + ",\n".join(parts)
        + f"""
        SELECT w.station_id, w.period, COUNT(h.person_id) AS {exp.to_identifier(spec.key).sql(READ)}
        FROM windows AS w
        LEFT JOIN home AS h
            ON h.start_at = w.start_at AND h.end_before = w.end_before
            AND h.station_id = w.station_id
        GROUP BY w.station_id, w.period
        """
    )
