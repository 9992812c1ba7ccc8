"""telemetry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 16:01:41.779070
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "metering_queue",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("since", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("enqueued_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_metering_queue")),
    )
    op.create_table(
        "readings",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("ts", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("odometer_m", sa.BigInteger(), nullable=True),
        sa.Column("energy_wh", sa.BigInteger(), nullable=True),
        sa.Column("battery_pct", sa.Float(), nullable=True),
        sa.Column("trip_id", sa.String(length=64), nullable=True),
        sa.Column("trip_event", sa.String(length=5), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.Column("received_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "msg_id", name=op.f("pk_readings")),
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index("ix_readings_vehicle_ts", ["vehicle_id", "ts"], unique=False)

    op.create_table(
        "rejected_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("topic", sa.String(length=300), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replayed_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replay_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
    )
    with op.batch_alter_table("rejected_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_messages_reason"), ["reason"], unique=False)
        batch_op.create_index(
            "ix_rejected_messages_status_received", ["status", "received_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rejected_messages_vehicle_id"), ["vehicle_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("rejected_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejected_messages_vehicle_id"))
        batch_op.drop_index("ix_rejected_messages_status_received")
        batch_op.drop_index(batch_op.f("ix_rejected_messages_reason"))

    op.drop_table("rejected_messages")
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index("ix_readings_vehicle_ts")

    op.drop_table("readings")
    op.drop_table("metering_queue")
