"""invoices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 16:37:18.795990
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_number_series",
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("last_issue_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_invoice_number_series")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("period_ends_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("total_net", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("total_vat", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("total_gross", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("vat_breakdown", sa.Text(), nullable=False),
        sa.Column("usage_summary", sa.Text(), nullable=False),
        sa.Column("payment_terms", sa.Text(), nullable=True),
        sa.Column("seller", sa.Text(), nullable=True),
        sa.Column("buyer_name", sa.String(length=200), nullable=True),
        sa.Column("buyer_email", sa.String(length=254), nullable=True),
        sa.Column("buyer_address_line1", sa.String(length=200), nullable=True),
        sa.Column("buyer_address_line2", sa.String(length=200), nullable=True),
        sa.Column("buyer_postal_code", sa.String(length=20), nullable=True),
        sa.Column("buyer_city", sa.String(length=100), nullable=True),
        sa.Column("buyer_country", sa.String(length=2), nullable=True),
        sa.Column("buyer_siren", sa.String(length=9), nullable=True),
        sa.Column("buyer_vat_number", sa.String(length=20), nullable=True),
        sa.Column("buyer_language", sa.String(length=2), nullable=True),
        sa.Column("credited_invoice_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finalized_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'credit_note') = (credited_invoice_id IS NOT NULL)",
            name=op.f("ck_invoices_credit_note_cites_invoice"),
        ),
        sa.CheckConstraint(
            "(status = 'draft') = (number IS NULL)", name=op.f("ck_invoices_numbered_unless_draft")
        ),
        sa.CheckConstraint(
            "kind IN ('invoice', 'credit_note')", name=op.f("ck_invoices_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'finalized', 'paid', 'void')",
            name=op.f("ck_invoices_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["credited_invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoices_credited_invoice_id_invoices"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoices_credited_invoice_id"), ["credited_invoice_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_invoices_issue_date", ["issue_date"], unique=False)
        batch_op.create_index(
            "ix_invoices_status_period_ends_at", ["status", "period_ends_at"], unique=False
        )
        batch_op.create_index(
            "uq_invoices_customer_period",
            ["customer_id", "period"],
            unique=True,
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )

    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("plan_code", sa.String(length=40), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=True),
        sa.Column("charge_index", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=16), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("quantity", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column(
            "billable_quantity", billing.db.ExactDecimal(precision=20, scale=6), nullable=False
        ),
        sa.Column("unit_code", sa.String(length=3), nullable=False),
        sa.Column("unit_price", billing.db.ExactDecimal(precision=20, scale=6), nullable=True),
        sa.Column("amount", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("vat_category", sa.String(length=2), nullable=False),
        sa.Column("vat_rate", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column("credited_position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "position", name=op.f("pk_invoice_lines")),
    )
    op.create_table(
        "invoice_files",
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_files_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "format", name=op.f("pk_invoice_files")),
    )


def downgrade() -> None:
    op.drop_table("invoice_files")
    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invoices_customer_period",
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )
        batch_op.drop_index("ix_invoices_status_period_ends_at")
        batch_op.drop_index("ix_invoices_issue_date")
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_credited_invoice_id"))

    op.drop_table("invoices")
    op.drop_table("invoice_number_series")
