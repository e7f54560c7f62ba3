"""The trial's first schema: stations, officers, training, imports, allocation, change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("change_log", "allocations", "allocation_arms", "scheme_sets")


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "stations",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("station_name", sa.Text, nullable=False),
        sa.Column("district", sa.Text),
        sa.Column("area_type", sa.String(16), nullable=False),
        sa.Column("population", sa.Integer),
    )
    op.create_table(
        "beats",
        sa.Column("beat", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "officers",
        sa.Column("officer_key", sa.String(64), primary_key=True),
        sa.Column("posted_from", sa.Date, primary_key=True),
        sa.Column("rank", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("posted_to", sa.Date),
    )
    op.create_table(
        "training_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("session_date", sa.Date, nullable=False),
        sa.Column("trainer", sa.Text),
    )
    op.create_table(
        "training_attendance",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("officer_key", sa.String(64), primary_key=True),
        sa.Column("attended", sa.Boolean, nullable=False),
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("rows_rejected", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
    )
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("rng", sa.Text, nullable=False),
        sa.Column("versions", sa.Text, nullable=False),
        sa.Column("cluster_ids", sa.Text, nullable=False),
        sa.Column("chosen_index", sa.Integer, nullable=False),
        sa.Column("n_schemes", sa.Integer, nullable=False),
        sa.Column("total_schemes", sa.Float, nullable=False),
        sa.Column("enumerated", sa.Boolean, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "allocation_arms",
        sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), primary_key=True),
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(16), nullable=False),
    )
    op.create_table(
        "scheme_sets",
        sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), primary_key=True),
        sa.Column("n_schemes", sa.Integer, nullable=False),
        sa.Column("n_clusters", sa.Integer, nullable=False),
        sa.Column("packed", sa.LargeBinary, nullable=False),
        sa.Column("scores", sa.LargeBinary),
    )
    op.create_table(
        "change_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.Text),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    _append_only(APPEND_ONLY)


def _append_only(tables: tuple[str, ...]) -> None:
    """Refuse UPDATE and DELETE on tables that are records of what happened."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
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
    for table in (
        "change_log", "scheme_sets", "allocation_arms", "allocations", "imports",
        "training_attendance", "training_sessions", "officers", "beats", "stations", "meta",
    ):  # fmt: skip
        op.drop_table(table)
