"""implausible jump counter

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:30:00.000000

An implausible jump is the odometer's: its anomalies now say so in `counter`, like
counter resets. Rows recorded before get it here, so that the next metering pass finds
them under the same key (vehicle, kind, counter, msg_id) with their decisions.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE anomalies SET counter = 'odometer' WHERE kind = 'implausible_jump' AND counter = ''"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE anomalies SET counter = '' WHERE kind = 'implausible_jump' AND counter = 'odometer'"
    )
