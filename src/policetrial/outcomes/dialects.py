"""The outcome SQL in one engine's words: SQLGlot's rendering, and the few rewrites for what
an engine cannot say as DuckDB says it.

The compiler writes SQL that means the same everywhere (a calendar table instead of weekday
numbers, timestamp additions instead of interval literals). What is left differs by
engine, and is rewritten here, on a copy of the tree:

- a `MATERIALIZED` CTE is a hint DuckDB and PostgreSQL take; elsewhere it is dropped;
- ties between stations and officers are broken in byte order, as DuckDB compares text:
  `COLLATE "C"` in PostgreSQL and `COLLATE Latin1_General_BIN2` in SQL Server, whose
  default collations may sort `a` and `B` otherwise;
- T-SQL has no true/false values, only conditions: a condition selected as a column
  becomes `CASE WHEN ... THEN 1 ELSE 0 END` (SQLGlot then tests such a column as `<> 0`),
  `COALESCE(condition, FALSE)` becomes the same CASE, a month's first day is built with
  `DATEFROMPARTS` (`DATETRUNC` needs SQL Server 2022), and the script's temporary tables
  are `#` tables;
- Spark's `TIMESTAMP` is an instant, read in the session's time zone, while the extracts
  hold local times without a zone (Parquet's, which Spark reads as `TIMESTAMP_NTZ`):
  comparing the two converts through the zone and moves the hour the clocks skip, so the
  script's times are `TIMESTAMP_NTZ`, as DuckDB's and PostgreSQL's `TIMESTAMP` are. Its
  temporary tables are `CACHE TABLE name AS query` (a temporary view computed once and
  kept), not views that would run `incident_base` again for every result.
"""

from __future__ import annotations

from sqlglot import exp

from policetrial.errors import WorkspaceError

__all__ = [
    "DIALECTS",
    "TEMPORARY_TABLES",
    "analyse_statement",
    "check_dialect",
    "render",
    "session_statements",
    "time_zone_statement",
]

DIALECTS = ("duckdb", "postgres", "tsql", "spark", "snowflake", "bigquery", "oracle")
"""The engines `--emit-sql` writes for. DuckDB, PostgreSQL and Spark (pyspark in local mode)
are run by the tests; T-SQL is checked against constructs SQL Server refuses; the rest are
SQLGlot's rendering, parsed."""

MATERIALIZED_CTE_DIALECTS = ("duckdb", "postgres")

TEMPORARY_TABLES = ("windows", "arms", "spans", "working_days", "incident_base")
"""The tables a script creates for its session (the inputs it builds and `incident_base`)."""

BYTE_ORDER = {
    "postgres": exp.to_identifier("C", quoted=True),
    "tsql": exp.var("Latin1_General_BIN2"),
}
"""The collation that sorts text by its bytes (code points), as DuckDB does."""

TIE_BREAK_COLUMNS = ("officer_key", "station_id", "incident_key")
"""Text columns whose order decides a result: the lead officer (leads first, then by
officer key), a person's station (the lowest station id of a tie)."""

_TIME_ZONE = {
    "duckdb": "SET TimeZone = '{zone}'",
    "postgres": "SET TIME ZONE '{zone}'",
    "spark": "SET TIME ZONE '{zone}'",
    "snowflake": "ALTER SESSION SET TIMEZONE = '{zone}'",
    "bigquery": "SET @@time_zone = '{zone}'",
    "oracle": "ALTER SESSION SET TIME_ZONE = '{zone}'",
}


def check_dialect(dialect: str) -> None:
    """Refuse an engine the outcome SQL is not written for, naming those it is."""
    if dialect not in DIALECTS:
        raise WorkspaceError(
            f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}"
        )


def time_zone_statement(dialect: str, zone: str) -> str | None:
    """The statement that sets the session's time zone to the protocol's (None: the engine
    has none; SQL Server's sessions keep the server's)."""
    template = _TIME_ZONE.get(dialect)
    return None if template is None else template.format(zone=zone.replace("'", "''"))


def session_statements(dialect: str) -> tuple[tuple[str, str], ...]:
    """Settings of the session the script sets besides its time zone, each with why."""
    if dialect == "postgres":
        return (
            (
                "SET jit = off",
                "the planner's row estimates for the semi-joins run high, and compiling the "
                "plan would take seconds longer than running it",
            ),
        )
    return ()


def analyse_statement(dialect: str, table: str) -> str | None:
    """The statement that gathers a new temporary table's statistics, where the engine
    does not do it itself: PostgreSQL never analyses temporary tables, and plans the
    outcome SQL over a guess of a thousand rows each (its estimates then run to billions
    of rows, and compiling the plan takes seconds)."""
    return f"ANALYZE {table}" if dialect == "postgres" else None


def render(
    statement: exp.Expr,
    dialect: str,
    *,
    pretty: bool = False,
    temporary: tuple[str, ...] = TEMPORARY_TABLES,
    width: int = 80,
) -> str:
    """One statement of the outcome SQL as `dialect` reads it (see the module docstring);
    `temporary` names the tables the script creates (`#` tables in T-SQL); `width` is the
    longest line a pretty statement keeps on one line."""
    check_dialect(dialect)
    tree = statement.copy()
    if dialect not in MATERIALIZED_CTE_DIALECTS:
        for cte in tree.find_all(exp.CTE):
            cte.set("materialized", None)
    collation = BYTE_ORDER.get(dialect)
    if collation is not None:
        tree = tree.transform(lambda node: _in_byte_order(node, collation), copy=False)
    if dialect == "tsql":
        tree = _for_tsql(tree, temporary)
    if dialect == "spark":
        tree = tree.transform(_for_spark, copy=False)
    return tree.sql(dialect=dialect, pretty=pretty, max_text_width=width)


def _in_byte_order(node: exp.Expr, collation: exp.Expr) -> exp.Expr:
    if (
        isinstance(node, exp.Ordered)
        and isinstance(node.this, exp.Column)
        and node.this.name in TIE_BREAK_COLUMNS
    ):
        node.set("this", exp.Collate(this=node.this, expression=collation.copy()))
    return node


def _for_spark(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMP:
        return exp.DataType.build(exp.DataType.Type.TIMESTAMPNTZ)
    properties = node.args.get("properties")
    if (
        isinstance(node, exp.Create)
        and isinstance(node.expression, exp.Query)
        and properties is not None
        and properties.find(exp.TemporaryProperty) is not None
    ):
        return exp.Cache(this=node.this, lazy=False, expression=node.expression)
    return node


def _is_condition(node: exp.Expr) -> bool:
    if isinstance(node, exp.Paren):
        return _is_condition(node.this)
    return isinstance(node, exp.Predicate | exp.Connector | exp.Not)


def _bit(condition: exp.Expr) -> exp.Expr:
    """1 when the condition holds, else 0 (unknown included, as `COALESCE(c, FALSE)`)."""
    return exp.Case(
        ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
        default=exp.Literal.number(0),
    )


def _unknown_is_false(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Coalesce)
        and _is_condition(node.this)
        and all(isinstance(e, exp.Boolean) and not e.this for e in node.expressions)
    )


def _as_value(node: exp.Expr) -> exp.Expr:
    """A selected expression as a T-SQL value: conditions and true/false as 1 and 0."""
    if isinstance(node, exp.Boolean):
        return exp.Literal.number(1 if node.this else 0)
    if _unknown_is_false(node):
        return _bit(node.this)
    if isinstance(node, exp.Coalesce):
        node.set("this", _as_value(node.this))
        node.set("expressions", [_as_value(e) for e in node.expressions])
        return node
    if _is_condition(node):
        return _bit(node)
    return node


def _for_tsql(tree: exp.Expr, temporary: tuple[str, ...]) -> exp.Expr:
    for select in list(tree.find_all(exp.Select)):
        projections: list[exp.Expr] = []
        for projection in select.expressions:
            if isinstance(projection, exp.Alias):
                projection.set("this", _as_value(projection.this))
                projections.append(projection)
            else:
                projections.append(_as_value(projection))
        select.set("expressions", projections)

    def rewrite(node: exp.Expr) -> exp.Expr:
        if _unknown_is_false(node):
            # Left inside a condition: true exactly when the condition is.
            return exp.EQ(this=exp.paren(_bit(node.this)), expression=exp.Literal.number(1))
        if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and (
            node.text("unit").upper() == "MONTH"
        ):
            at = node.this
            return exp.DateFromParts(
                year=exp.Extract(this=exp.var("YEAR"), expression=at.copy()),
                month=exp.Extract(this=exp.var("MONTH"), expression=at.copy()),
                day=exp.Literal.number(1),
            )
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in temporary:
            node.this.set("temporary", True)
        return node

    return tree.transform(rewrite, copy=False)
