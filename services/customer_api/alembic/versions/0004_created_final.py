"""created_final: whether a lease's creation is known from a finalized block

Rows written before this revision were made from finalized blocks (Chopsticks finalizes every
block), so they start as final.

Revision ID: 0004_created_final
Revises: 0003_lease_health
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_created_final"
down_revision: str | None = "0003_lease_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("created_final", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_index("ix_leaserecord_created_final", ["created_final"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.drop_index("ix_leaserecord_created_final")
        batch_op.drop_column("created_final")
