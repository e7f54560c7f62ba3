"""Officer questionnaires: one-time invitations, submissions and answers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Only the SHA-256 of an invitation's token is stored. A submission is unique per officer and
time point and per invitation; submissions and answers are append-only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("survey_submissions", "survey_answers")


def upgrade() -> None:
    op.create_table(
        "survey_invitations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("officer_key", sa.String(64), nullable=False),
        sa.Column("time", sa.String(8), nullable=False),
        sa.Column("instruments", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("issued_by", sa.Text, nullable=False),
        sa.Column("draft", sa.Text),
        sa.Column("saved_at", sa.DateTime),
        sa.Column("closed_at", sa.DateTime),
        sa.UniqueConstraint("token_hash", name="uq_survey_invitations_token_hash"),
    )
    op.create_table(
        "survey_submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("officer_key", sa.String(64), nullable=False),
        sa.Column("time", sa.String(8), nullable=False),
        sa.Column("invitation_id", sa.Integer, sa.ForeignKey("survey_invitations.id")),
        sa.Column("submitted_at", sa.DateTime, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("instruments", sa.Text, nullable=False),
        sa.UniqueConstraint("officer_key", "time", name="uq_survey_submissions_officer_time"),
        sa.UniqueConstraint("invitation_id", name="uq_survey_submissions_invitation"),
    )
    op.create_table(
        "survey_answers",
        sa.Column(
            "submission_id",
            sa.Integer,
            sa.ForeignKey("survey_submissions.id"),
            primary_key=True,
        ),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
    )
    _append_only(APPEND_ONLY)


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
    for table in ("survey_answers", "survey_submissions", "survey_invitations"):
        op.drop_table(table)
