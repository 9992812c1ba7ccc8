"""alerts

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 07:09:28.265690

Usage alerts: rules per customer, fleet or vehicle, and their firings.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("fleet_id", sa.String(length=32), nullable=True),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("threshold", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "measure IN ('amount', 'cap_percent', 'distance_km', 'energy_kwh', 'trips', "
            "'trip_minutes', 'active_days')",
            name=op.f("ck_alert_rules_measure_known"),
        ),
        sa.CheckConstraint(
            "scope IN ('customer', 'fleet', 'vehicle')", name=op.f("ck_alert_rules_scope_known")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_alert_rules_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_alert_rules_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_alert_rules_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_rules_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "alert_firings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("value", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("threshold", billing.db.ExactDecimal(precision=20, scale=6), nullable=False),
        sa.Column("fired_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_alert_firings_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_firings_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_firings")),
        sa.UniqueConstraint("rule_id", "period", name=op.f("uq_alert_firings_rule_id_period")),
    )
    with op.batch_alter_table("alert_firings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_firings_customer", ["customer_id", "fired_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_firings", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_firings_customer")

    op.drop_table("alert_firings")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rules_customer_id"))

    op.drop_table("alert_rules")
