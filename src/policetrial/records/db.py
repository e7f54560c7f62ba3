"""The trial's records database: schema, engine and migrations.

SQLite in the workspace by default (`trial.db`), PostgreSQL when a URL is given. The
schema is SQLAlchemy Core; Alembic migrations (in `policetrial/records/migrations`)
create and upgrade it, and a test keeps the two in step. The change log, one of these
tables, is written only through `policetrial.records.changelog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

__all__ = [
    "APPEND_ONLY_TABLES",
    "connect",
    "metadata",
    "migrate",
    "schema_is_current",
    "select_frame",
    "sqlite_url",
]

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

stations = Table(
    "stations",
    metadata,
    Column("station_id", String(64), primary_key=True),
    Column("station_name", Text, nullable=False),
    Column("district", Text),
    Column("area_type", String(16), nullable=False),
    Column("population", Integer),
    Column("force", String(32)),
)

beats = Table(
    "beats",
    metadata,
    Column("beat", String(64), primary_key=True),
    Column("station_id", String(64), nullable=False),
)

officers = Table(
    "officers",
    metadata,
    Column("officer_key", String(64), primary_key=True),
    Column("posted_from", Date, primary_key=True),
    Column("rank", Text, nullable=False),
    Column("team", Text, nullable=False),
    Column("station_id", String(64), nullable=False),
    Column("posted_to", Date),
)

training_sessions = Table(
    "training_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("station_id", String(64), nullable=False),
    Column("session_date", Date, nullable=False),
    Column("trainer", Text),
)

training_attendance = Table(
    "training_attendance",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("officer_key", String(64), primary_key=True),
    Column("attended", Boolean, nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("imported_at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("method", String(32), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("rng", Text, nullable=False),
    Column("versions", Text, nullable=False),
    Column("cluster_ids", Text, nullable=False),
    Column("chosen_index", Integer, nullable=False),
    Column("n_schemes", Integer, nullable=False),
    Column("total_schemes", Float, nullable=False),
    Column("enumerated", Boolean, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("reason", Text),
    Column("inputs", Text),
    Column("diagnostics", Text),
)

allocation_arms = Table(
    "allocation_arms",
    metadata,
    Column("allocation_id", Integer, ForeignKey("allocations.id"), primary_key=True),
    Column("station_id", String(64), primary_key=True),
    Column("arm", String(16), nullable=False),
)

scheme_sets = Table(
    "scheme_sets",
    metadata,
    Column("allocation_id", Integer, ForeignKey("allocations.id"), primary_key=True),
    Column("n_schemes", Integer, nullable=False),
    Column("n_clusters", Integer, nullable=False),
    Column("packed", LargeBinary, nullable=False),
    Column("scores", LargeBinary),
)

change_log = Table(
    "change_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("entity_id", Text),
    Column("before", Text),
    Column("after", Text),
    Column("reason", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_samples = Table(
    "audit_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("fraction", Text, nullable=False),
    Column("untagged_fraction", Text, nullable=False),
    Column("double_rated_fraction", Text, nullable=False),
    Column("allocation_digest", String(64), nullable=False),
    Column("strata", Text, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("reason", Text),
)

audit_items = Table(
    "audit_items",
    metadata,
    Column("sample_id", Integer, ForeignKey("audit_samples.id"), primary_key=True),
    Column("audit_id", String(16), primary_key=True),
    Column("incident_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("station_id", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("double_rated", Boolean, nullable=False),
)

# A rating is identified by `id` (migration 0008). One rater rates an incident once, unless
# they withdrew that rating (an undo on the audit screen, `audit_withdrawals`): `attempt`
# counts from 1, and a rating after a withdrawal is the next attempt, so the unique
# constraint still refuses a second standing rating from one rater.
audit_ratings = Table(
    "audit_ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sample_id", Integer, ForeignKey("audit_samples.id"), nullable=False),
    Column("audit_id", String(16), nullable=False),
    Column("rater", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("imported_at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("synthetic", Boolean, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),
    UniqueConstraint("sample_id", "audit_id", "rater", "attempt", name="uq_audit_ratings_attempt"),
)

# An auditor's undo of their last verdict (migration 0008): the withdrawn rating stays in
# `audit_ratings`; this append-only row says who withdrew it and when, and is chained to
# the previous withdrawal by SHA-256 as the change log is (`audit.withdrawals`).
audit_withdrawals = Table(
    "audit_withdrawals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rating_id", Integer, ForeignKey("audit_ratings.id"), nullable=False),
    Column("sample_id", Integer, ForeignKey("audit_samples.id"), nullable=False),
    Column("audit_id", String(16), nullable=False),
    Column("rater", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("rated_at", DateTime, nullable=False),
    Column("withdrawn_at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("rating_id", name="uq_audit_withdrawals_rating"),
)

# Officer questionnaires (migration 0004). An invitation is a one-time link: only the
# SHA-256 of its token is stored; its status moves issued -> started -> submitted (or
# revoked). A submission is unique per officer and time point and per invitation, so a
# link cannot be used twice and a questionnaire cannot be stored twice; submissions and
# their answers are append-only.
survey_invitations = Table(
    "survey_invitations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False),
    Column("officer_key", String(64), nullable=False),
    Column("time", String(8), nullable=False),
    Column("instruments", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("issued_by", Text, nullable=False),
    Column("draft", Text),
    Column("saved_at", DateTime),
    Column("closed_at", DateTime),
    UniqueConstraint("token_hash", name="uq_survey_invitations_token_hash"),
)

survey_submissions = Table(
    "survey_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("officer_key", String(64), nullable=False),
    Column("time", String(8), nullable=False),
    Column("invitation_id", Integer, ForeignKey("survey_invitations.id")),
    Column("submitted_at", DateTime, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("instruments", Text, nullable=False),
    UniqueConstraint("officer_key", "time", name="uq_survey_submissions_officer_time"),
    UniqueConstraint("invitation_id", name="uq_survey_submissions_invitation"),
)

survey_answers = Table(
    "survey_answers",
    metadata,
    Column("submission_id", Integer, ForeignKey("survey_submissions.id"), primary_key=True),
    Column("item_id", String(64), primary_key=True),
    Column("instrument", String(64), nullable=False),
    Column("value", Integer, nullable=False),
)

# The web application (migration 0005): accounts (argon2 hashes only), server-side
# session records (the SHA-256 of the id the signed cookie carries, so logging out or
# disabling an account ends a session at once), failed logins for rate limiting, and the
# incidents an auditor chose to skip for now (they come back at the end of the queue).
web_users = Table(
    "web_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("rater_code", String(32)),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    UniqueConstraint("username", name="uq_web_users_username"),
    UniqueConstraint("rater_code", name="uq_web_users_rater_code"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("web_users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
)

web_login_failures = Table(
    "web_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("at", DateTime, nullable=False, index=True),
)

# Login throttling and one-time password-reset links (migration 0007): one row per account
# and per client address that failed lately, read and written under a row lock so that
# parallel guesses are all counted; a reset link is stored as its SHA-256 only.
web_login_throttle = Table(
    "web_login_throttle",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", DateTime, nullable=False),
    Column("last_at", DateTime, nullable=False, index=True),
    Column("locked_until", DateTime),
)

web_password_resets = Table(
    "web_password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("web_users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime),
)

audit_skips = Table(
    "audit_skips",
    metadata,
    Column("sample_id", Integer, ForeignKey("audit_samples.id"), primary_key=True),
    Column("audit_id", String(16), primary_key=True),
    Column("rater", String(64), primary_key=True),
    Column("skipped_at", DateTime, nullable=False),
)

APPEND_ONLY_TABLES = (
    "change_log",
    "allocations",
    "allocation_arms",
    "scheme_sets",
    "audit_samples",
    "audit_items",
    "audit_ratings",
    "audit_withdrawals",
    "survey_submissions",
    "survey_answers",
)


# Alembic's own record of the revision, read by `schema_is_current`; kept out of `metadata`,
# which holds only the tables the migrations create.
alembic_version = Table("alembic_version", MetaData(), Column("version_num", String(32)))


def connect(url: str) -> Engine:
    """An engine for a database URL; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


SCHEMA_REVISION = "0009"
"""The newest migration in `records/migrations` (a test keeps it equal to Alembic's head)."""


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration.

    Reads the revision Alembic recorded rather than asking Alembic: importing it costs
    every command 0.1 s, and it is needed only when there is something to migrate.
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        current = set(connection.execute(select(alembic_version.c.version_num)).scalars())
    return current == {SCHEMA_REVISION}


def select_frame(
    connection: Connection, statement: Executable, columns: Sequence[str]
) -> pd.DataFrame:
    """The rows of a query as a DataFrame with these column names.

    The rows become plain tuples first: pandas builds a frame from tuples in one pass but
    inspects SQLAlchemy `Row` objects one at a time, which made loading the demo's 30,000
    questionnaire answers take 7 times as long.
    """
    return pd.DataFrame(
        [tuple(row) for row in connection.execute(statement)], columns=list(columns)
    )
