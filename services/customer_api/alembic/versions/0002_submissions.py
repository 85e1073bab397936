"""lease requests tied to their extrinsic; signer locks shared by API replicas

Revision ID: 0002_submissions
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # by full name: mypy does not see it through `import sqlmodel`
from alembic import op

revision: str = "0002_submissions"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extrinsic_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True)
        )
        batch_op.add_column(sa.Column("extrinsic_nonce", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("extrinsic_data", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("valid_from_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("valid_until_block", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_leaserecord_extrinsic_hash"), ["extrinsic_hash"], unique=False
        )
    op.create_table(
        "signerlock",
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=True),
        sa.Column("nonce_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("signerlock")
    with op.batch_alter_table("leaserecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leaserecord_extrinsic_hash"))
        batch_op.drop_column("valid_until_block")
        batch_op.drop_column("valid_from_block")
        batch_op.drop_column("extrinsic_data")
        batch_op.drop_column("extrinsic_nonce")
        batch_op.drop_column("extrinsic_hash")
