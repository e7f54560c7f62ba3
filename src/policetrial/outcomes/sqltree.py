"""Small builders of SQLGlot nodes the outcome compiler shares: our own SQL fragments parsed,
codes as literal nodes, columns, counts."""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp

from policetrial.protocol.conditions import (
    And,
    Codes,
    Condition,
    Every,
    Not,
    Or,
)

__all__ = [
    "INCIDENT_COLUMNS",
    "READ",
    "codes_in",
    "col",
    "count_if",
    "days_later",
    "event_condition_sql",
    "own_sql",
]

READ = "duckdb"
INCIDENT_COLUMNS = {"opening_code", "closing_code", "grade", "channel", "beat"}


def own_sql(text: str) -> exp.Expr:
    """One of our own SQL fragments (never a user's value) as a tree, with its interval
    arithmetic written as a portable timestamp addition (see `days_later`)."""
    return sqlglot.parse_one(text, read=READ).transform(_interval_as_addition, copy=False)


def days_later(at: exp.Expr, days: int) -> exp.Expr:
    """`at` moved by a whole number of days, as SQLGlot renders it in each engine's own
    words: `+ INTERVAL` in DuckDB and PostgreSQL, `DATEADD(DAY, ...)` in T-SQL (which has
    no interval literal), Spark's timestamp form of `DATE_ADD` (its two-argument form
    would drop the time of day)."""
    return exp.TimestampAdd(this=at, expression=exp.Literal.number(days), unit=exp.var("DAY"))


def _interval_as_addition(node: exp.Expr) -> exp.Expr:
    """`x - INTERVAL n DAY` and `x + INTERVAL n DAY` (our fragments' only interval forms) as
    `days_later`."""
    if isinstance(node, exp.Add | exp.Sub) and isinstance(node.expression, exp.Interval):
        interval = node.expression
        unit = interval.args.get("unit")
        if unit is None or unit.name.upper() != "DAY":
            raise ValueError(f"only whole days are written as intervals: {node.sql(READ)}")
        days = int(interval.this.name)
        return days_later(node.this.copy(), -days if isinstance(node, exp.Sub) else days)
    return node


def codes_in(column: exp.Expr, codes: Iterable[str]) -> exp.Expr:
    return exp.In(this=column, expressions=[exp.Literal.string(c) for c in codes])


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=False), table=table)


def count_if(test: exp.Expr, name: str) -> exp.Expr:
    case = exp.Case(
        ifs=[exp.If(this=test, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )
    return exp.alias_(exp.Sum(this=case), name)


def event_condition_sql(condition: Condition, table: str) -> exp.Expr:
    """An event condition (over the event's own columns) as an expression on `table`."""
    if isinstance(condition, Every):
        return exp.true()
    if isinstance(condition, Codes):
        return exp.Coalesce(
            this=codes_in(col(condition.field, table), condition.codes), expressions=[exp.false()]
        )
    if isinstance(condition, And):
        return exp.and_(*(event_condition_sql(p, table) for p in condition.parts))
    if isinstance(condition, Or):
        return exp.or_(*(event_condition_sql(p, table) for p in condition.parts))
    if isinstance(condition, Not):
        return exp.Not(this=exp.paren(event_condition_sql(condition.part, table)))
    raise TypeError(f"not an event condition: {condition!r}")
