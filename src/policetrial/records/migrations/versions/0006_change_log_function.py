"""PostgreSQL: append to the change log in one call that locks, chains and inserts.

A VOLATILE PL/pgSQL function takes a fresh snapshot for each statement, so after the lock
its SELECT sees the newest committed entry, as the two statements `changelog.append_change` sent
before did; in one round trip, the lock is held for less time (every concurrent write
queues on it). The hash is `sha256(prev_hash || body)`, the digest `changelog._entry_hash` makes
and `changelog.verify_change_log` checks. Nothing changes on SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION policetrial_append_change(
            p_at timestamp, p_actor text, p_action text, p_entity text, p_entity_id text,
            p_before text, p_after text, p_reason text, p_body text
        ) RETURNS text AS $$
        DECLARE
            prev text;
            digest text;
        BEGIN
            LOCK TABLE change_log IN SHARE ROW EXCLUSIVE MODE;
            SELECT hash INTO prev FROM change_log ORDER BY id DESC LIMIT 1;
            prev := COALESCE(prev, repeat('0', 64));
            digest := encode(sha256(convert_to(prev || p_body, 'UTF8')), 'hex');
            INSERT INTO change_log
                (at, actor, action, entity, entity_id, before, after, reason, prev_hash, hash)
            VALUES
                (p_at, p_actor, p_action, p_entity, p_entity_id, p_before, p_after, p_reason,
                 prev, digest);
            RETURN digest;
        END
        $$ LANGUAGE plpgsql VOLATILE
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS policetrial_append_change")
