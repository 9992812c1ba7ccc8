"""dunning

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 07:01:13.898957

Dunning: the steps taken on each overdue invoice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dunning_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("done_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mail_to", sa.String(length=254), nullable=True),
        sa.Column("mail_status", sa.String(length=16), nullable=False),
        sa.Column("mail_attempts", sa.Integer(), nullable=False),
        sa.Column("mail_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_dunning_records_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_dunning_records_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_records")),
        sa.UniqueConstraint("invoice_id", "step", name=op.f("uq_dunning_records_invoice_id_step")),
    )
    with op.batch_alter_table("dunning_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dunning_records_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dunning_records_invoice_id"), ["invoice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dunning_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dunning_records_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_dunning_records_customer_id"))

    op.drop_table("dunning_records")
