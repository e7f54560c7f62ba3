"""The audit screen's undo: ratings get an id and an attempt; withdrawals are recorded.

`audit_ratings` was keyed by sample, incident and rater, so a rater could never rate an
incident again, even after taking a mis-tapped verdict back. It gets an `id` (its key
now) and an `attempt` (1 for every rating stored so far); one standing rating per rater
and incident is kept by the unique (sample, incident, rater, attempt), a rating after a
withdrawal being the next attempt. `audit_withdrawals` names each withdrawn rating, who
withdrew it and when, chained by SHA-256 like the change log. Both tables are
append-only: an undo adds a row and never changes or deletes one.

PostgreSQL alters the table in place (a rewrite that fires no row trigger); SQLite,
which cannot change a primary key, copies the ratings into a new table in the order they
were stored and puts the append-only triggers back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_RATING_COLUMNS = (
    "sample_id, audit_id, rater, verdict, imported_at, actor, source, source_sha256, synthetic"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_ratings DROP CONSTRAINT audit_ratings_pkey")
        op.execute("ALTER TABLE audit_ratings ADD COLUMN id SERIAL PRIMARY KEY")
        op.execute("ALTER TABLE audit_ratings ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
        op.create_unique_constraint(
            "uq_audit_ratings_attempt",
            "audit_ratings",
            ["sample_id", "audit_id", "rater", "attempt"],
        )
    else:
        op.create_table(
            "audit_ratings_0008",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("sample_id", sa.Integer, sa.ForeignKey("audit_samples.id"), nullable=False),
            sa.Column("audit_id", sa.String(16), nullable=False),
            sa.Column("rater", sa.String(64), nullable=False),
            sa.Column("verdict", sa.String(16), nullable=False),
            sa.Column("imported_at", sa.DateTime, nullable=False),
            sa.Column("actor", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("source_sha256", sa.String(64), nullable=False),
            sa.Column("synthetic", sa.Boolean, nullable=False),
            sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
            sa.UniqueConstraint(
                "sample_id", "audit_id", "rater", "attempt", name="uq_audit_ratings_attempt"
            ),
        )
        op.execute(
            f"INSERT INTO audit_ratings_0008 ({_RATING_COLUMNS}) "
            f"SELECT {_RATING_COLUMNS} FROM audit_ratings ORDER BY rowid"
        )
        op.drop_table("audit_ratings")  # its triggers go with it; no DELETE trigger fires
        op.rename_table("audit_ratings_0008", "audit_ratings")
        _append_only(("audit_ratings",))
    op.create_table(
        "audit_withdrawals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rating_id", sa.Integer, sa.ForeignKey("audit_ratings.id"), nullable=False),
        sa.Column("sample_id", sa.Integer, sa.ForeignKey("audit_samples.id"), nullable=False),
        sa.Column("audit_id", sa.String(16), nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("rated_at", sa.DateTime, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("rating_id", name="uq_audit_withdrawals_rating"),
    )
    _append_only(("audit_withdrawals",))


def _append_only(tables: tuple[str, ...]) -> None:
    """Refuse UPDATE and DELETE, as 0001 does for its records of what happened."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # 0001 created the function; repeated here so this revision stands on its own.
        op.execute(
            "CREATE OR REPLACE FUNCTION policetrial_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
    for table in tables:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION policetrial_append_only()"
            )


def downgrade() -> None:
    """Back to one rating per rater and incident; refused once any verdict has been
    withdrawn, since without its withdrawal a withdrawn rating would count again."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM audit_withdrawals")).scalar_one():
        raise RuntimeError("cannot downgrade below 0008: verdicts have been withdrawn")
    op.drop_table("audit_withdrawals")
    if bind.dialect.name == "postgresql":
        op.drop_constraint("uq_audit_ratings_attempt", "audit_ratings")
        op.execute("ALTER TABLE audit_ratings DROP COLUMN attempt")
        op.execute("ALTER TABLE audit_ratings DROP COLUMN id")
        op.execute("ALTER TABLE audit_ratings ADD PRIMARY KEY (sample_id, audit_id, rater)")
        return
    op.create_table(
        "audit_ratings_0007",
        sa.Column("sample_id", sa.Integer, sa.ForeignKey("audit_samples.id"), primary_key=True),
        sa.Column("audit_id", sa.String(16), primary_key=True),
        sa.Column("rater", sa.String(64), primary_key=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("synthetic", sa.Boolean, nullable=False),
    )
    op.execute(
        f"INSERT INTO audit_ratings_0007 ({_RATING_COLUMNS}) "
        f"SELECT {_RATING_COLUMNS} FROM audit_ratings ORDER BY id"
    )
    op.drop_table("audit_ratings")
    op.rename_table("audit_ratings_0007", "audit_ratings")
    _append_only(("audit_ratings",))
