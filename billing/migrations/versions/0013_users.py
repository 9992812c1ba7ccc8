"""users, sign-in links and page sessions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 06:40:00.000000

The people who use the web pages (customer contacts and staff), the single-use links
e-mailed to sign them in, and their page sessions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billing.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", billing.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'customer') = (customer_id IS NOT NULL)",
            name=op.f("ck_users_customer_contact"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_users_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index(op.f("ix_users_customer_id"), "users", ["customer_id"], unique=False)
    op.create_table(
        "user_fleets",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("fleet_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_user_fleets_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_fleets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "fleet_id", name=op.f("pk_user_fleets")),
    )
    for table, last in (("sign_in_links", "used_at"), ("page_sessions", "ended_at")):
        op.create_table(
            table,
            sa.Column("digest", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.String(length=32), nullable=False),
            sa.Column("created_at", billing.db.UTCDateTime(timezone=True), nullable=False),
            sa.Column(
                "expires_at" if table == "sign_in_links" else "last_seen_at",
                billing.db.UTCDateTime(timezone=True),
                nullable=False,
            ),
            sa.Column(last, billing.db.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f(f"fk_{table}_user_id_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("digest", name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_user_id"), table, ["user_id"], unique=False)


def downgrade() -> None:
    for table in ("page_sessions", "sign_in_links"):
        op.drop_index(op.f(f"ix_{table}_user_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("user_fleets")
    op.drop_index(op.f("ix_users_customer_id"), table_name="users")
    op.drop_table("users")
