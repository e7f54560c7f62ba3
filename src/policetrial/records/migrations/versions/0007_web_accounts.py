"""The web application's accounts: login throttling and one-time password-reset links.

`web_login_throttle` holds one row per account and one per client address that failed to
log in lately: how many failures, since when, and until when further tries are refused.
It is read and written under a row lock, so parallel guesses are all counted.
`web_password_resets` holds the SHA-256 of each one-time reset link an administrator made
(never the link itself), its expiry and when it was used.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_login_throttle",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime, nullable=False),
        sa.Column("last_at", sa.DateTime, nullable=False),
        sa.Column("locked_until", sa.DateTime),
    )
    op.create_index("ix_web_login_throttle_last_at", "web_login_throttle", ["last_at"])
    op.create_table(
        "web_password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("web_users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("web_password_resets")
    op.drop_index("ix_web_login_throttle_last_at", "web_login_throttle")
    op.drop_table("web_login_throttle")
