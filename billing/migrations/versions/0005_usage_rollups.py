"""usage rollups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 16:23:12.779917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "anomalies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("counter", sa.String(length=16), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("previous_msg_id", sa.String(length=64), nullable=True),
        sa.Column("ts", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detected_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint(
            "vehicle_id",
            "kind",
            "counter",
            "msg_id",
            name=op.f("uq_anomalies_vehicle_id_kind_counter_msg_id"),
        ),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index("ix_anomalies_status", ["status", "detected_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_anomalies_vehicle_id"), ["vehicle_id"], unique=False)

    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    op.create_table(
        "trips",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("trip_id", sa.String(length=64), nullable=False),
        sa.Column("start_ts", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("start_msg_id", sa.String(length=64), nullable=True),
        sa.Column("end_ts", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_msg_id", sa.String(length=64), nullable=True),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "trip_id", name=op.f("pk_trips")),
    )
    with op.batch_alter_table("trips", schema=None) as batch_op:
        batch_op.create_index("ix_trips_vehicle_end", ["vehicle_id", "end_ts"], unique=False)

    op.create_table(
        "usage_buckets",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.BigInteger(), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "bucket_start", name=op.f("pk_usage_buckets")),
    )
    op.create_table(
        "usage_days",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("distance_m", sa.BigInteger(), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "day", name=op.f("pk_usage_days")),
    )


def downgrade() -> None:

    op.drop_table("usage_days")
    op.drop_table("usage_buckets")
    with op.batch_alter_table("trips", schema=None) as batch_op:
        batch_op.drop_index("ix_trips_vehicle_end")

    op.drop_table("trips")
    op.drop_table("job_leases")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomalies_vehicle_id"))
        batch_op.drop_index("ix_anomalies_status")

    op.drop_table("anomalies")
