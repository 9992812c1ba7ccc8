"""access

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 06:43:43.197147

The unlock check: what blocks each customer's vehicles, and caps that block when reached.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_blocks",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("since", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "cause IN ('overdue', 'spending_cap_reached')",
            name=op.f("ck_access_blocks_cause_known"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_access_blocks_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", "cause", name=op.f("pk_access_blocks")),
    )
    with op.batch_alter_table("spending_caps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("block_at_cap", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("spending_caps", schema=None) as batch_op:
        batch_op.drop_column("block_at_cap")

    op.drop_table("access_blocks")
