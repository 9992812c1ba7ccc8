"""registry and api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-28 15:53:55.998971
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=True),
        sa.Column("vat_number", sa.String(length=20), nullable=True),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("address_line2", sa.String(length=200), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_api_keys_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
    )
    op.create_table(
        "fleets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_fleets_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleets")),
    )
    with op.batch_alter_table("fleets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fleets_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "api_key_fleets",
        sa.Column("api_key_id", sa.String(length=32), nullable=False),
        sa.Column("fleet_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_fleets_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_api_key_fleets_fleet_id_fleets")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "fleet_id", name=op.f("pk_api_key_fleets")),
    )
    op.create_table(
        "vehicles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("fleet_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("commissioned_on", sa.Date(), nullable=True),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_vehicles_fleet_id_fleets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("serial", name=op.f("uq_vehicles_serial")),
    )
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vehicles_fleet_id"), ["fleet_id"], unique=False)

    op.create_table(
        "fleet_memberships",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("fleet_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_fleet_memberships_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_fleet_memberships_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_memberships")),
    )
    with op.batch_alter_table("fleet_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fleet_memberships_fleet_id"), ["fleet_id"], unique=False
        )
        batch_op.create_index(
            "ix_fleet_memberships_vehicle_start", ["vehicle_id", "started_at"], unique=False
        )

    op.create_table(
        "plan_assignments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("plan_code", sa.String(length=40), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=True),
        sa.Column("effective_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_plan_assignments_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_assignments")),
    )
    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plan_assignments_vehicle_start", ["vehicle_id", "effective_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_assignments_vehicle_start")

    op.drop_table("plan_assignments")
    with op.batch_alter_table("fleet_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_memberships_vehicle_start")
        batch_op.drop_index(batch_op.f("ix_fleet_memberships_fleet_id"))

    op.drop_table("fleet_memberships")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicles_fleet_id"))

    op.drop_table("vehicles")
    op.drop_table("api_key_fleets")
    with op.batch_alter_table("fleets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fleets_customer_id"))

    op.drop_table("fleets")
    op.drop_table("api_keys")
    op.drop_table("customers")
