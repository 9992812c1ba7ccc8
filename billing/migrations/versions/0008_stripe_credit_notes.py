"""stripe credit notes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 17:51:06.022456

The column is added and dropped with plain ALTER TABLE, not a batch rebuild, as in 0007:
on SQLite a rebuild drops `invoices`, and with foreign keys on, that would cascade to
every invoice line.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("stripe_credit_note_id", sa.String(length=255)))
    op.create_index(
        op.f("ix_invoices_stripe_credit_note_id"),
        "invoices",
        ["stripe_credit_note_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_invoices_stripe_credit_note_id"), table_name="invoices")
    op.drop_column("invoices", "stripe_credit_note_id")
