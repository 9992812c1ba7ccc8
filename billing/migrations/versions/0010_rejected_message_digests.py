"""rejected message digests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:50:00.000000

Rejected messages keep the size and SHA-256 digest of the payload they were received
with (the payload itself may be kept truncated), and how many times the same bytes were
rejected for the same reason. Existing rows get theirs computed from their payload.
Plain ALTER TABLE, as in 0007 and 0008.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rejected_messages",
        sa.Column("payload_size", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "rejected_messages",
        sa.Column("payload_sha256", sa.String(length=64), server_default="", nullable=False),
    )
    op.add_column(
        "rejected_messages",
        sa.Column("received_count", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column(
        "rejected_messages",
        sa.Column("last_received_at", billing.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(
        op.f("ix_rejected_messages_payload_sha256"), "rejected_messages", ["payload_sha256"]
    )
    rejected = sa.table(
        "rejected_messages",
        sa.column("id", sa.BigInteger()),
        sa.column("payload", sa.LargeBinary()),
        sa.column("payload_size", sa.BigInteger()),
        sa.column("payload_sha256", sa.String()),
    )
    connection = op.get_bind()
    # Typed, for the rows to unpack as (id, payload).
    id_column: sa.ColumnElement[int] = rejected.c.id
    payload_column: sa.ColumnElement[bytes] = rejected.c.payload
    rows = connection.execute(sa.select(id_column, payload_column)).all()
    for row_id, payload in rows:
        connection.execute(
            rejected.update()
            .where(rejected.c.id == row_id)
            .values(payload_size=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_rejected_messages_payload_sha256"), table_name="rejected_messages")
    for column in ("last_received_at", "received_count", "payload_sha256", "payload_size"):
        op.drop_column("rejected_messages", column)
