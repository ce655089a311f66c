"""Backbone and outreach sequences.

Revision ID: sequencer_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_backbone_v1

revision = "sequencer_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "sequencer"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "sequences",
        sa.Column("sequence_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("eligibility_id", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("workflow_key", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("urgency", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Text),
        sa.Column("location_id", sa.Text),
        sa.Column("steps_planned", sa.Integer, nullable=False),
        sa.Column("steps_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("stop_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    # One active sequence per patient, enforced by the database as well as the domain.
    op.create_index(
        "sequences_one_active",
        "sequences",
        ["patient_key"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("state = 'active'"),
    )


def downgrade() -> None:
    op.drop_table("sequences", schema=S)
