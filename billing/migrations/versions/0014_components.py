"""components: bills of materials, parts, their fittings and events

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 06:30:52.481959

Bills of materials per vehicle model (versioned), the physical parts of the vehicles, their
stays in vehicles and their repairs, refurbishments and inspections (docs/components.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bom_versions",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_bom_versions_version_positive")),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_bom_versions")),
    )
    op.create_table(
        "component_parts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("bom_version", sa.Integer(), nullable=False),
        sa.Column("component_code", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("service_since", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("service_since_on", sa.Date(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('fitted', 'spare', 'scrapped')",
            name=op.f("ck_component_parts_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["model", "bom_version"],
            ["bom_versions.model", "bom_versions.version"],
            name=op.f("fk_component_parts_model_bom_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_parts")),
        sa.UniqueConstraint("serial", name=op.f("uq_component_parts_serial")),
    )
    with op.batch_alter_table("component_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_component_parts_category"), ["category"], unique=False)

    op.create_table(
        "component_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("part_id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cost", billing.db.ExactDecimal(precision=20, scale=6), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('repair', 'refurbishment', 'inspection')",
            name=op.f("ck_component_events_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["part_id"],
            ["component_parts.id"],
            name=op.f("fk_component_events_part_id_component_parts"),
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_component_events_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_events")),
    )
    with op.batch_alter_table("component_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_component_events_part_id"), ["part_id"], unique=False)

    op.create_table(
        "component_fittings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("part_id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("installed_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=False),
        sa.Column("removed_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.String(length=16), nullable=True),
        sa.Column(
            "vehicle_km_at_install", billing.db.ExactDecimal(precision=20, scale=6), nullable=False
        ),
        sa.Column(
            "vehicle_kwh_at_install", billing.db.ExactDecimal(precision=20, scale=6), nullable=False
        ),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "removed_on IS NULL OR removed_on >= installed_on",
            name=op.f("ck_component_fittings_days_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["part_id"],
            ["component_parts.id"],
            name=op.f("fk_component_fittings_part_id_component_parts"),
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_component_fittings_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_fittings")),
    )
    with op.batch_alter_table("component_fittings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_component_fittings_vehicle", ["vehicle_id", "removed_at"], unique=False
        )
        batch_op.create_index("ix_component_fittings_part", ["part_id"], unique=False)
        batch_op.create_index(
            "uq_component_fittings_open_part",
            ["part_id"],
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("component_fittings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_component_fittings_open_part",
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )
        batch_op.drop_index("ix_component_fittings_part")
        batch_op.drop_index("ix_component_fittings_vehicle")

    op.drop_table("component_fittings")
    with op.batch_alter_table("component_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_component_events_part_id"))

    op.drop_table("component_events")
    with op.batch_alter_table("component_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_component_parts_category"))

    op.drop_table("component_parts")
    op.drop_table("bom_versions")
