"""The web application: accounts, sessions, failed logins and auditors' skips.

Passwords are stored only as argon2 hashes; a session row holds the SHA-256 of the random
session id that the signed cookie carries, so a copy of the database opens no session.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("rater_code", sa.String(32)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.UniqueConstraint("username", name="uq_web_users_username"),
        sa.UniqueConstraint("rater_code", name="uq_web_users_rater_code"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("web_users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
    )
    op.create_table(
        "web_login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_web_login_failures_at", "web_login_failures", ["at"])
    op.create_table(
        "audit_skips",
        sa.Column("sample_id", sa.Integer, sa.ForeignKey("audit_samples.id"), primary_key=True),
        sa.Column("audit_id", sa.String(16), primary_key=True),
        sa.Column("rater", sa.String(64), primary_key=True),
        sa.Column("skipped_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_skips", "web_login_failures", "web_sessions", "web_users"):
        op.drop_table(table)
