"""The force a station belongs to, in a trial of several forces.

`stations.force` holds the force's code from the protocol's `[forces]` table; it is empty in
a trial of one force. The force is a station attribute like its district, so randomisation
can stratify by it and the outcomes and the report can group stations by it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stations", sa.Column("force", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("force")
