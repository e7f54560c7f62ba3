"""Randomisation record: the inputs the allocation used and its score diagnostics.

`allocations.inputs` holds the station ids with the strata and covariate values the
allocation depended on (JSON); `allocations.diagnostics` the number of schemes examined,
the cutoff score and the score distribution (JSON). Both are covered by the record's
digest. The scores of the candidate schemes go in the existing `scheme_sets.scores`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a nullable column fires no UPDATE trigger, so the append-only tables keep
    # their guards (and their rows) as they are.
    op.add_column("allocations", sa.Column("inputs", sa.Text))
    op.add_column("allocations", sa.Column("diagnostics", sa.Text))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+, PostgreSQL) keeps the append-only triggers,
    # which a batch-mode table rebuild would lose.
    op.drop_column("allocations", "diagnostics")
    op.drop_column("allocations", "inputs")
