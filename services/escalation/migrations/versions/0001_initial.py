"""Backbone and cases.

Revision ID: escalation_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_backbone_v1

revision = "escalation_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "escalation"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "cases",
        sa.Column("escalation_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("case_type", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text),
        schema=S,
    )
    op.create_index("cases_open", "cases", ["clinic_id", "state"], schema=S)


def downgrade() -> None:
    op.drop_table("cases", schema=S)
