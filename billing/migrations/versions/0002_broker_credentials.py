"""broker credentials

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 15:59:23.116903
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_credentials",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("fleet_id", sa.String(length=32), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'vehicle' AND vehicle_id IS NOT NULL AND fleet_id IS NULL)"
            " OR (kind = 'gateway' AND fleet_id IS NOT NULL AND vehicle_id IS NULL)",
            name=op.f("ck_broker_credentials_kind_matches_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_broker_credentials_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_broker_credentials_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_credentials")),
    )
    with op.batch_alter_table("broker_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broker_credentials_fleet_id"), ["fleet_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_broker_credentials_vehicle_id"), ["vehicle_id"], unique=False
        )
        batch_op.create_index(
            "uq_broker_credentials_active_username",
            ["username"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("broker_credentials", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_broker_credentials_active_username",
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_broker_credentials_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_broker_credentials_fleet_id"))

    op.drop_table("broker_credentials")
