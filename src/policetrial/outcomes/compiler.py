"""The outcome compiler: a protocol's declared outcomes as SQL, built as SQLGlot trees.

Every outcome a protocol declares (`policetrial.protocol.outcomes`) is compiled into a
handful of queries, written once in DuckDB's dialect and rendered in any other by SQLGlot:

- `incident_base`: one row per incident in (or linked to an event in) the windows' time
  spans, with its station by the protocol's rule, whether officers of both arms attended,
  whether it was out of hours, and one true/false column per incident outcome (and per
  condition an outcome is a share of, `<key>__among`, or that an event's incident must
  meet, `<key>__incident`). Each predicate of the conditions is worked out once (a tag,
  marker, role or event predicate as a semi-join on the link extract), the outcomes as
  expressions over them;
- `station_period`: the incident counts per station and period;
- one query per person count (persons with enough counted incidents, by role) and one per
  event kind (its event counts);
- `incident_table`: the incident-level rows inside the windows (binary outcomes, audit);
- `monthly`: one incident count by station and calendar month over the whole extract.

The SQL reads the extracts as stored (pseudonymised column names), the windows
(`windows`: station_id, arm, period, start_at, end_before; `spans`: the windows' time spans
merged, start_at and end_before), the arms (`arms`: station_id, arm) and the protocol's
calendar (`working_days`: day, every weekday that is not a bank holiday, over the days the
incidents can fall on). Codes, roles and thresholds are literals of the SQL, placed as
SQLGlot nodes (quoted and escaped by SQLGlot), never pasted as text.

The SQL means the same in every engine SQLGlot renders it for: office hours are a join on
the working days, not a weekday number (ISO in DuckDB, Sunday-first in Spark, set by
`DATEFIRST` in SQL Server); days are added as timestamp additions, not interval literals
(`sqltree.days_later`). What one engine cannot say at all (T-SQL has no true/false
values) is rewritten when rendering (`policetrial.outcomes.dialects`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlglot import exp

from policetrial.outcomes.dialects import TEMPORARY_TABLES, render
from policetrial.outcomes.events import event_count_sql
from policetrial.outcomes.persons import person_count_sql
from policetrial.outcomes.sqltree import (
    INCIDENT_COLUMNS,
    READ,
    codes_in,
    col,
    count_if,
    own_sql,
)
from policetrial.protocol.conditions import (
    And,
    Codes,
    Condition,
    Event,
    Every,
    Flag,
    Not,
    Or,
)
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol

__all__ = [
    "CompiledOutcomes",
    "compile_outcomes",
    "condition_sql",
    "part_columns",
    "station_period_tree",
]


@dataclass(frozen=True)
class CompiledOutcomes:
    """The SQL of one protocol's outcomes (see the module docstring)."""

    incident_base: exp.Expr
    station_period: exp.Expr
    person_counts: dict[str, exp.Expr]
    event_counts: dict[str, exp.Expr]
    incident_table: exp.Expr
    monthly: exp.Expr | None
    incident_flags: tuple[str, ...]
    """The outcome columns of `incident_base` and `incident_table`."""
    count_columns: tuple[str, ...]
    """Every count outcome, in protocol order: the station x period table's columns."""
    sources: tuple[str, ...] = field(default=())
    """The extract tables the SQL reads."""
    count_base: exp.Expr = field(default_factory=exp.select)
    """`incident_base` as the counts read it (`station_period_tree`): without the
    incidents' keys, and with only the outcome columns some count reads."""
    _texts: dict[tuple[object, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def sql(
        self,
        name: str,
        dialect: str = READ,
        *,
        pretty: bool = False,
        temporary: tuple[str, ...] = TEMPORARY_TABLES,
    ) -> str:
        """One query as text for an engine (`duckdb`, `postgres`, `tsql`, ...), in its words
        (`policetrial.outcomes.dialects.render`)."""
        return self.text(
            (name, dialect, pretty, temporary),
            lambda: render(self.queries()[name], dialect, pretty=pretty, temporary=temporary),
        )

    def text(self, key: tuple[object, ...], make: Callable[[], str]) -> str:
        """The text `make` gives, made once per `key`: rendering a query takes longer than
        running it on a small force, and the same query is run again and again."""
        if key not in self._texts:
            self._texts[key] = make()
        return self._texts[key]

    def station_period_statement(self, dialect: str = READ) -> str:
        """The station x period counts as one statement (`station_period_tree`), as text."""
        return self.text(
            ("station_period_statement", dialect),
            lambda: render(station_period_tree(self), dialect, pretty=False),
        )

    def queries(self) -> dict[str, exp.Expr]:
        """Every query by name, in the order they run (`incident_base` first)."""
        out = {"incident_base": self.incident_base, "station_period": self.station_period}
        out.update({f"person_count_{k}": q for k, q in self.person_counts.items()})
        out.update({f"event_count_{k}": q for k, q in self.event_counts.items()})
        out["incident_table"] = self.incident_table
        if self.monthly is not None:
            out["monthly"] = self.monthly
        return out


def part_columns(query: exp.Expr) -> list[str]:
    """The count columns a station x period query gives beside station_id and period."""
    assert isinstance(query, exp.Select)
    return [n for n in query.named_selects if n not in ("station_id", "period")]


def station_period_tree(compiled: CompiledOutcomes) -> exp.Expr:
    """Every station x period count in one statement: `incident_base` a common table the
    incident, person and event counts share, one row per window.

    DuckDB then reads each extract once, keeps of `incident_base` only the columns the
    counts use, and never writes the incident-level table, which the station x period table
    does not need (`incident_table` is built from the same `incident_base` when asked)."""
    queries = compiled.queries()
    parts = {
        "station_period": queries["station_period"],
        **{f"person_count_{k}": q for k, q in compiled.person_counts.items()},
        **{f"event_count_{k}": q for k, q in compiled.event_counts.items()},
    }
    counts = []
    for n, query in enumerate(parts.values()):
        counts += [
            exp.alias_(exp.Coalesce(this=col(c, f"p{n}"), expressions=[exp.Literal.number(0)]), c)
            for c in part_columns(query)
        ]
    statement = exp.select(col("station_id", "w"), col("period", "w"), *counts).from_(
        exp.alias_(exp.to_table("windows"), "w", table=True)
    )
    for n, name in enumerate(parts):
        on = own_sql(f"p{n}.station_id = w.station_id AND p{n}.period = w.period")
        statement = statement.join(
            exp.alias_(exp.to_table(name), f"p{n}", table=True),
            on=on,
            join_type="left",
            copy=False,
        )
    # Built in place (copy=False): SQLGlot's builders copy the whole tree at every step.
    statement = statement.with_(
        "incident_base", as_=compiled.count_base.copy(), materialized=True, copy=False
    )
    for name, query in parts.items():
        statement = statement.with_(name, as_=query.copy(), copy=False)
    return _read_once(statement, "incident_persons", "ip")


def _read_once(statement: exp.Select, table: str, alias: str) -> exp.Select:
    """`statement` reading `table` once, through a common table of the columns its readers
    use (`table` is always read as `alias`): the person links are read by the marker
    predicates and by every person count, and DuckDB shares one scan among them."""
    columns = sorted({c.name for c in statement.find_all(exp.Column) if c.table == alias})
    shared = f"{table}_read"

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.name == table:
            return exp.alias_(exp.to_table(shared), node.alias_or_name, table=True)
        return node

    renamed = statement.transform(rename, copy=False)
    assert isinstance(renamed, exp.Select)
    statement = renamed
    if not columns:
        return statement
    read = exp.select(*(col(c) for c in columns)).from_(table)
    # First among the common tables, since the others read it.
    ctes = list(statement.ctes)
    statement = statement.with_(shared, as_=read, append=False, copy=False)
    for cte in ctes:
        statement = statement.with_(
            cte.alias, as_=cte.this, materialized=cte.args.get("materialized"), copy=False
        )
    return statement


def _flatten(condition: Condition) -> Condition:
    """Nested and-s and or-s flattened; or-ed `any of` lists on one field merged into one
    (`tag in A or tag in B` is `tag in A + B`), which the SQL then tests once."""
    if isinstance(condition, And | Or):
        kind = type(condition)
        parts: list[Condition] = []
        for part in (_flatten(p) for p in condition.parts):
            parts.extend(part.parts if isinstance(part, kind) else (part,))
        if kind is Or:
            merged: list[Condition] = []
            by_field: dict[str, int] = {}
            for part in parts:
                if isinstance(part, Codes) and not part.every:
                    if part.field in by_field:
                        i = by_field[part.field]
                        first = merged[i]
                        assert isinstance(first, Codes)
                        merged[i] = Codes(
                            part.field, tuple(dict.fromkeys(first.codes + part.codes)), False
                        )
                        continue
                    by_field[part.field] = len(merged)
                merged.append(part)
            parts = merged
        return parts[0] if len(parts) == 1 else kind(tuple(parts))
    if isinstance(condition, Not):
        return Not(_flatten(condition.part))
    return condition


class _Atoms:
    """Each distinct predicate of the incident conditions: a semi-join CTE and a column."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.ctes: list[tuple[str, exp.Expr]] = []
        self.joins: list[tuple[str, str]] = []
        self.columns: list[exp.Expr] = []
        self.names: dict[Condition, str] = {}
        self.incident_columns: set[str] = set()
        self.counter: dict[str, int] = {}

    def name(self, leaf: Condition) -> str:
        if leaf in self.names:
            return self.names[leaf]
        if isinstance(leaf, Event):
            name = f"event_{leaf.kind}"
            self._event(name, leaf.kind)
        elif isinstance(leaf, Codes):
            n = self.counter[leaf.field] = self.counter.get(leaf.field, 0) + 1
            name = f"{leaf.field}_{n}"
            if leaf.field in INCIDENT_COLUMNS:
                self.incident_columns.add(leaf.field)
                self.columns.append(
                    exp.alias_(
                        exp.Coalesce(
                            this=codes_in(col(leaf.field, "i"), leaf.codes),
                            expressions=[exp.false()],
                        ),
                        name,
                    )
                )
            else:
                self._linked(name, leaf)
        else:
            raise TypeError(f"not a predicate with a column: {leaf!r}")
        self.names[leaf] = name
        return name

    def _join_column(self, name: str) -> None:
        self.joins.append((name, f"{name}_hit"))
        self.columns.append(
            exp.alias_(
                exp.Not(this=exp.Is(this=col("incident_id", f"{name}_hit"), expression=exp.null())),
                name,
            )
        )

    def _linked(self, name: str, leaf: Codes) -> None:
        """A semi-join on a link extract: the incidents holding any (or all) of the codes."""
        if leaf.field == "marker":
            # A linked person held a counting marker on the incident's date.
            query = own_sql(
                "SELECT ip.incident_id FROM incident_persons AS ip "
                "JOIN warning_markers AS m ON m.person_id = ip.person_id "
                "JOIN reach AS r ON ip.created_at >= r.start_at AND ip.created_at < r.end_before "
                "WHERE m.valid_from <= CAST(ip.created_at AS DATE) "
                "AND (m.valid_to IS NULL OR m.valid_to >= CAST(ip.created_at AS DATE))"
            )
            value, key = col("marker", "m"), col("incident_id", "ip")
        else:
            table, alias, column = (
                ("incident_tags", "t", "qualifier")
                if leaf.field == "tag"
                else ("incident_persons", "ip", "role")
            )
            query = own_sql(
                f"SELECT {alias}.incident_id FROM {table} AS {alias} "
                f"JOIN reach AS r ON {alias}.created_at >= r.start_at "
                f"AND {alias}.created_at < r.end_before"
            )
            value, key = col(column, alias), col("incident_id", alias)
        assert isinstance(query, exp.Select)
        query = query.where(codes_in(value, leaf.codes))
        if leaf.every:
            distinct = exp.Count(this=exp.Distinct(expressions=[value.copy()]))
            query = query.group_by(key.copy()).having(
                exp.EQ(this=distinct, expression=exp.Literal.number(len(leaf.codes)))
            )
        else:
            query = query.distinct()
        self.ctes.append((name, query))
        self._join_column(name)

    def _event(self, name: str, kind: str) -> None:
        event = self.protocol.events[kind]
        time = event.time
        query = own_sql(
            f"SELECT DISTINCT i.incident_id FROM scoped AS i JOIN {kind} AS d "
            f"ON d.incident_id = i.incident_id WHERE i.created_at <= d.{time} "
            f"AND i.created_at >= d.{time} - INTERVAL {event.incident_window_days} DAY"
        )
        self.ctes.append((name, query))
        self._join_column(name)


def condition_sql(condition: Condition, atoms: _Atoms) -> exp.Expr:
    """A condition as a true/false expression over the atoms' columns."""
    if isinstance(condition, Every):
        return exp.true()
    if isinstance(condition, Flag):
        if condition.name == "office_hours":
            return exp.Not(this=col("out_of_hours"))
        return col(condition.name)
    if isinstance(condition, Codes | Event):
        return col(atoms.name(condition))
    if isinstance(condition, And):
        return exp.and_(*(condition_sql(p, atoms) for p in condition.parts))
    if isinstance(condition, Or):
        return exp.or_(*(condition_sql(p, atoms) for p in condition.parts))
    if isinstance(condition, Not):
        return exp.Not(this=exp.paren(condition_sql(condition.part, atoms), copy=False))
    raise TypeError(f"a reference is inlined before compiling: {condition!r}")  # Ref


def _flag_columns(
    specs: Iterable[OutcomeSpec], *, counts_only: bool = False
) -> list[tuple[str, Condition]]:
    """(column, condition) for every true/false column `incident_base` carries; with
    `counts_only`, only those the station x period counts read (an incident-level binary
    outcome is a column of `incident_table` alone, and its predicates would otherwise be
    worked out for nothing: an event's semi-join, say)."""
    out: list[tuple[str, Condition]] = []
    counted = ("incident_count",) if counts_only else ("incident_count", "incident_binary")
    shared = ("person_count",) if counts_only else ("incident_binary", "person_count")
    for spec in specs:
        if spec.kind in counted:
            out.append((spec.key, _flatten(spec.where)))
        if spec.kind in shared and not isinstance(spec.among, Every):
            assert spec.among is not None
            out.append((f"{spec.key}__among", _flatten(spec.among)))
        if spec.kind == "event_count" and spec.incident is not None:
            out.append((f"{spec.key}__incident", _flatten(spec.incident)))
    return out


def _linked_event_kinds(protocol: Protocol) -> list[str]:
    return [k for k, e in protocol.events.items() if e.link("incident") is not None]


def lead_days(protocol: Protocol) -> int:
    """How far before a span an incident can be and still matter: its event came in the span."""
    return max(
        (protocol.events[k].incident_window_days for k in _linked_event_kinds(protocol)), default=0
    )


def _incident_base(
    protocol: Protocol, flags: list[tuple[str, Condition]], *, key: bool = True
) -> exp.Expr:
    """`incident_base` (see the module docstring); without `key`, the incidents' 32-digit
    keys are left unread: the counts join and count on their 128-bit ids."""
    atoms = _Atoms(protocol)
    flag_sql = [(name, condition_sql(cond, atoms)) for name, cond in flags]
    keys = ["incident_key"] if key else []
    columns = [
        *keys,
        "incident_id",
        "created_at",
        "beat",
        *sorted(atoms.incident_columns - {"beat"}),
    ]
    select_list = ", ".join(f"i.{c}" for c in columns)
    lead = lead_days(protocol)
    linked_parts = []
    # With events, the incidents are read once (`near`: the view keeps the days before the
    # spans too) and both the spans' incidents and the events' earlier ones taken from it.
    source = "near" if _linked_event_kinds(protocol) else "incidents"
    for kind in _linked_event_kinds(protocol):
        event = protocol.events[kind]
        time = event.time
        linked_parts.append(
            f"SELECT DISTINCT {select_list} FROM {source} AS i "
            f"JOIN {kind} AS d ON d.incident_id = i.incident_id "
            f"JOIN spans AS s ON d.{time} >= s.start_at AND d.{time} < s.end_before "
            f"WHERE i.created_at <= d.{time} "
            f"AND i.created_at >= d.{time} - INTERVAL {event.incident_window_days} DAY "
            "AND NOT EXISTS (SELECT 1 FROM spans AS o WHERE i.created_at >= o.start_at "
            "AND i.created_at < o.end_before)"
        )
    scoped = (
        f"SELECT {select_list} FROM {source} AS i "
        "JOIN spans AS s ON i.created_at >= s.start_at AND i.created_at < s.end_before"
    )
    if linked_parts:
        scoped += " UNION ALL " + (
            linked_parts[0]
            if len(linked_parts) == 1
            else "SELECT * FROM (" + " UNION ".join(linked_parts) + ") AS linked"
        )
    oh = protocol.definitions.office_hours
    start_minute = oh.start.hour * 60 + oh.start.minute
    end_minute = oh.end.hour * 60 + oh.end.minute
    minute = "EXTRACT(HOUR FROM i.created_at) * 60 + EXTRACT(MINUTE FROM i.created_at)"
    station = (
        "b.station_id"
        if protocol.assignment.incidents_to_station == "location"
        else "COALESCE(lead.station_id, b.station_id)"
    )
    base = own_sql(
        f"""
        SELECT
            {"".join(f"i.{k}, " for k in keys)}i.incident_id, i.created_at,
            b.station_id AS station_by_location,
            lead.station_id AS station_by_officer,
            {station} AS station_id,
            COALESCE(att.officers, 0) > 0 AS attended,
            COALESCE(att.both_arms, FALSE) AS contaminated,
            NOT (
                wd.day IS NOT NULL
                AND {minute} >= {start_minute}
                AND {minute} < {end_minute}
            ) AS out_of_hours
        FROM scoped AS i
        LEFT JOIN beats AS b ON b.beat = i.beat
        LEFT JOIN attendance AS att ON att.incident_id = i.incident_id
        LEFT JOIN postings AS lead ON lead.posting_no = att.lead_posting
        LEFT JOIN working_days AS wd ON wd.day = CAST(i.created_at AS DATE)
        """
    )
    assert isinstance(base, exp.Select)
    for name, alias in atoms.joins:
        base = base.join(
            exp.alias_(exp.to_table(name), alias, table=True),
            on=exp.EQ(this=col("incident_id", alias), expression=col("incident_id", "i")),
            join_type="left",
            copy=False,
        )
    if atoms.columns:
        base = base.select(*atoms.columns, copy=False)
    near = ", ".join(columns)
    ctes: list[tuple[str, exp.Expr, bool]] = [
        *((("near", own_sql(f"SELECT {near} FROM incidents"), False),) if linked_parts else ()),
        ("scoped", own_sql(scoped), True),
        (
            "reach",
            own_sql(f"SELECT start_at - INTERVAL {lead} DAY AS start_at, end_before FROM spans"),
            False,
        ),
        (
            "postings",
            own_sql(
                """
                SELECT o.officer_key, o.station_id, o.posted_from, o.posted_to,
                    ROW_NUMBER() OVER (ORDER BY o.officer_key, o.station_id, o.posted_from)
                        AS posting_no,
                    CASE WHEN a.arm IS NOT NULL THEN DENSE_RANK() OVER (ORDER BY a.arm) END
                        AS arm_no
                FROM officers AS o
                LEFT JOIN arms AS a ON a.station_id = o.station_id
                WHERE o.station_id IS NOT NULL
                """
            ),
            False,
        ),
        (
            "posting",
            own_sql(
                """
                SELECT io.incident_id, io.role, o.posting_no, o.arm_no
                FROM incident_officers AS io
                LEFT JOIN postings AS o
                    ON o.officer_key = io.officer_key
                    AND CAST(io.created_at AS DATE) >= o.posted_from
                    AND (o.posted_to IS NULL OR CAST(io.created_at AS DATE) <= o.posted_to)
                JOIN reach AS r ON io.created_at >= r.start_at AND io.created_at < r.end_before
                """
            ),
            False,
        ),
        (
            "attendance",
            own_sql(
                """
                SELECT incident_id, COUNT(*) AS officers,
                    COALESCE(MIN(CASE WHEN role = 'lead' THEN posting_no END), MIN(posting_no))
                        AS lead_posting,
                    MIN(arm_no) <> MAX(arm_no) AS both_arms
                FROM posting
                GROUP BY incident_id
                """
            ),
            False,
        ),
        *((name, query, False) for name, query in atoms.ctes),
        ("atoms", base, False),
    ]
    final = exp.select(
        *(
            col(c)
            for c in (
                *keys,
                "incident_id",
                "created_at",
                "station_by_location",
                "station_by_officer",
                "station_id",
                "attended",
                "contaminated",
                "out_of_hours",
            )
        ),
        *(exp.alias_(expression, name) for name, expression in flag_sql),
    ).from_("atoms")
    for name, query, materialized in ctes:
        final = final.with_(name, as_=query, materialized=materialized or None, copy=False)
    return final


def _station_period(specs: Iterable[OutcomeSpec]) -> exp.Expr:
    sums = []
    for spec in specs:
        if spec.kind != "incident_count":
            continue
        test = (
            own_sql("ib.incident_id IS NOT NULL")
            if isinstance(spec.where, Every)
            else col(spec.key, "ib")
        )
        sums.append(count_if(test, spec.key))
    sums.append(count_if(col("contaminated", "ib"), "contaminated"))
    return (
        exp.select(col("station_id", "w"), col("period", "w"), *sums)
        .from_(exp.alias_(exp.to_table("windows"), "w", table=True))
        .join(
            exp.alias_(exp.to_table("incident_base"), "ib", table=True),
            on=own_sql(
                "ib.station_id = w.station_id AND ib.created_at >= w.start_at "
                "AND ib.created_at < w.end_before"
            ),
            join_type="left",
        )
        .group_by(col("station_id", "w"), col("period", "w"))
    )


def _incident_table(flags: list[str]) -> exp.Expr:
    return own_sql(
        "SELECT ib.incident_key, ib.station_id, w.arm, w.period, ib.created_at"
        + "".join(f", ib.{exp.to_identifier(f).sql(READ)}" for f in flags)
        + ", ib.attended, ib.out_of_hours, ib.contaminated, ib.station_by_location, "
        "ib.station_by_officer "
        "FROM incident_base AS ib JOIN windows AS w ON ib.station_id = w.station_id "
        "AND ib.created_at >= w.start_at AND ib.created_at < w.end_before "
        "ORDER BY ib.created_at, ib.incident_key"
    )


def _monthly(key: str) -> exp.Expr:
    column = exp.to_identifier(key).sql(READ)
    return own_sql(
        f"""
        SELECT station_id, CAST(DATE_TRUNC('month', created_at) AS DATE) AS month,
            COUNT(*) AS incidents,
            SUM(CASE WHEN {column} THEN 1 ELSE 0 END) AS outcome
        FROM incident_base
        WHERE station_id IS NOT NULL
        GROUP BY station_id, CAST(DATE_TRUNC('month', created_at) AS DATE)
        ORDER BY month, station_id
        """
    )


def compile_outcomes(protocol: Protocol) -> CompiledOutcomes:
    """Every declared outcome of `protocol` as SQL (see the module docstring)."""
    declared = protocol.declared
    specs = list(declared.specs.values())
    flags = _flag_columns(specs)
    incident_flags = tuple(
        s.key for s in specs if s.kind in ("incident_count", "incident_binary")
    ) + tuple(name for name, _ in flags if "__" in name)
    person = {s.key: person_count_sql(protocol, s) for s in specs if s.kind == "person_count"}
    by_kind: dict[str, list[OutcomeSpec]] = {}
    for s in specs:
        if s.kind == "event_count" and s.event is not None:
            by_kind.setdefault(s.event, []).append(s)
    events = {k: event_count_sql(protocol, k, v) for k, v in by_kind.items()}
    monthly_key = protocol.monthly_outcome
    return CompiledOutcomes(
        incident_base=_incident_base(protocol, flags),
        count_base=_incident_base(protocol, _flag_columns(specs, counts_only=True), key=False),
        station_period=_station_period(specs),
        person_counts=person,
        event_counts=events,
        incident_table=_incident_table(list(incident_flags)),
        monthly=None if monthly_key is None else _monthly(monthly_key),
        incident_flags=incident_flags,
        count_columns=declared.counts,
        sources=(
            "incidents",
            "incident_tags",
            "incident_officers",
            "incident_persons",
            "warning_markers",
            *protocol.events,
            "officers",
            "beats",
        ),
    )
