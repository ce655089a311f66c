"""Backbone and segment memberships (needs).

Revision ID: segmenter_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_backbone_v1

revision = "segmenter_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "segmenter"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "needs",
        sa.Column("eligibility_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("source_kind", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_reason", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("needs_patient", "needs", ["patient_key"], schema=S)


def downgrade() -> None:
    op.drop_table("needs", schema=S)
