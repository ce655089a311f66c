"""The shared controlled clock.

Revision ID: platform_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("virtual_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("real_epoch", sa.Float, nullable=False),
        sa.Column("rate", sa.Float, nullable=False, server_default="1.0"),
        sa.CheckConstraint("id = 1", name="clock_single_row"),
        sa.CheckConstraint("rate >= 0", name="clock_forward_only"),
        schema="platform",
    )


def downgrade() -> None:
    op.drop_table("clock", schema="platform")
