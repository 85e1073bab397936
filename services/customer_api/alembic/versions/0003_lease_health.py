"""lease health: the block from which the node reported a lease's GPUs unhealthy

Revision ID: 0003_lease_health
Revises: 0002_submissions
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_lease_health"
down_revision: str | None = "0002_submissions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unhealthy_since_block", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.drop_column("unhealthy_since_block")
