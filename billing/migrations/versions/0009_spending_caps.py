"""spending caps

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spending_caps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("effective_from", sa.String(length=7), nullable=False),
        sa.Column("amount", billing.db.ExactDecimal(precision=20, scale=6), nullable=True),
        sa.Column("include_flat_fees", sa.Boolean(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_spending_caps_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spending_caps")),
        sa.UniqueConstraint(
            "customer_id",
            "effective_from",
            name=op.f("uq_spending_caps_customer_id_effective_from"),
        ),
    )
    op.create_index(
        op.f("ix_spending_caps_customer_id"), "spending_caps", ["customer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_spending_caps_customer_id"), table_name="spending_caps")
    op.drop_table("spending_caps")
