"""stripe

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 16:44:58.683466

The invoices' columns are added and dropped with plain ALTER TABLE, not a batch
rebuild: on SQLite a rebuild drops the table, and with foreign keys on, that would
cascade to every invoice line.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=True),
        sa.Column("received_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "stripe_customers",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_stripe_customers_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_stripe_customers")),
        sa.UniqueConstraint(
            "stripe_customer_id", name=op.f("uq_stripe_customers_stripe_customer_id")
        ),
    )
    op.create_table(
        "stripe_outbox",
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("enqueued_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_stripe_outbox_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_stripe_outbox")),
    )
    op.create_index(
        "ix_stripe_outbox_due",
        "stripe_outbox",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("done_at IS NULL"),
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.add_column("invoices", sa.Column("stripe_invoice_id", sa.String(length=255)))
    op.add_column("invoices", sa.Column("payment_status", sa.String(length=16)))
    op.add_column("invoices", sa.Column("paid_at", billing.db.UTCDateTime(timezone=True)))
    op.create_index(
        op.f("ix_invoices_stripe_invoice_id"), "invoices", ["stripe_invoice_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_invoices_stripe_invoice_id"), table_name="invoices")
    op.drop_column("invoices", "paid_at")
    op.drop_column("invoices", "payment_status")
    op.drop_column("invoices", "stripe_invoice_id")
    op.drop_index("ix_stripe_outbox_due", table_name="stripe_outbox")
    op.drop_table("stripe_outbox")
    op.drop_table("stripe_customers")
    op.drop_table("stripe_events")
