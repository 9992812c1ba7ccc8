"""plans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:19:37.022351
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_plans")),
    )
    op.create_table(
        "plan_versions",
        sa.Column("plan_code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_plan_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["plan_code"], ["plans.code"], name=op.f("fk_plan_versions_plan_code_plans")
        ),
        sa.PrimaryKeyConstraint("plan_code", "version", name=op.f("pk_plan_versions")),
    )
    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_plan_assignments_plan_code_plan_versions"),
            "plan_versions",
            ["plan_code", "plan_version"],
            ["plan_code", "version"],
        )


def downgrade() -> None:
    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_plan_assignments_plan_code_plan_versions"), type_="foreignkey"
        )

    op.drop_table("plan_versions")
    op.drop_table("plans")
