"""metering queue rows

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:30:00.000000

The metering queue becomes append-only: one row per vehicle per ingest batch, deleted by
the pass that read it. The pending rows are carried over as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _set_aside(name: str) -> None:
    """Rename the table and, on PostgreSQL, its primary key (an index named in the schema)."""
    op.rename_table("metering_queue", name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_metering_queue TO pk_{name}")


def upgrade() -> None:
    _set_aside("metering_queue_0014")
    op.create_table(
        "metering_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("since", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metering_queue")),
    )
    op.create_index(op.f("ix_metering_queue_vehicle_id"), "metering_queue", ["vehicle_id"])
    op.create_index(op.f("ix_metering_queue_enqueued_at"), "metering_queue", ["enqueued_at"])
    op.execute(
        "INSERT INTO metering_queue (vehicle_id, since, until, enqueued_at) "
        "SELECT vehicle_id, since, until, enqueued_at FROM metering_queue_0014"
    )
    op.drop_table("metering_queue_0014")


def downgrade() -> None:
    _set_aside("metering_queue_0015")
    op.drop_index(op.f("ix_metering_queue_enqueued_at"), "metering_queue_0015")
    op.drop_index(op.f("ix_metering_queue_vehicle_id"), "metering_queue_0015")
    op.create_table(
        "metering_queue",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("since", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("enqueued_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_metering_queue")),
    )
    op.execute(
        "INSERT INTO metering_queue (vehicle_id, since, until, version, enqueued_at) "
        "SELECT vehicle_id, MIN(since), MAX(until), 1, MIN(enqueued_at) "
        "FROM metering_queue_0015 GROUP BY vehicle_id"
    )
    op.drop_table("metering_queue_0015")
