"""Backbone and event counts.

Revision ID: metrics_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_backbone_v1

revision = "metrics_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "metrics"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "event_counts",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "event_type"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("event_counts", schema=S)
