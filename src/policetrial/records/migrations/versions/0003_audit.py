"""The independent audit: the sample drawn, its items and the auditors' ratings.

All three tables are append-only: a sample cannot be quietly redrawn or a rating quietly
changed; a new draw is a new row, logged with its reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_samples", "audit_items", "audit_ratings")


def upgrade() -> None:
    op.create_table(
        "audit_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("fraction", sa.Text, nullable=False),
        sa.Column("untagged_fraction", sa.Text, nullable=False),
        sa.Column("double_rated_fraction", sa.Text, nullable=False),
        sa.Column("allocation_digest", sa.String(64), nullable=False),
        sa.Column("strata", sa.Text, nullable=False),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "audit_items",
        sa.Column("sample_id", sa.Integer, sa.ForeignKey("audit_samples.id"), primary_key=True),
        sa.Column("audit_id", sa.String(16), primary_key=True),
        sa.Column("incident_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("double_rated", sa.Boolean, nullable=False),
    )
    op.create_table(
        "audit_ratings",
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
    _append_only(APPEND_ONLY)


def _append_only(tables: tuple[str, ...]) -> None:
    """Refuse UPDATE and DELETE, as 0001 does for the allocation record."""
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
    for table in ("audit_ratings", "audit_items", "audit_samples"):
        op.drop_table(table)
