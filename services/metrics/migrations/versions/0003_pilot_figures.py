"""Pilot figures: clicks, the needs' facts for screening the previous weeks, pilot plans.

The new episode columns are filled when the rows are rebuilt at start-up (the rules' version
changed), from the facts the histories hold.

Revision ID: metrics_0003
Revises: metrics_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "metrics_0003"
down_revision = "metrics_0002"
branch_labels = None
depends_on = None
S = "metrics"
TS = sa.DateTime(timezone=True)
EPISODE_COLUMNS = (
    ("clicked_at", TS),
    ("provider_id", sa.Text),
    ("location_id", sa.Text),
    ("urgency", sa.Text),
    ("due_at", TS),
    ("cancellation_reason", sa.Text),
    ("cancelled_by", sa.Text),
)


def upgrade() -> None:
    for name, kind in EPISODE_COLUMNS:
        op.add_column("episodes", sa.Column(name, kind), schema=S)
    op.create_index(
        "episodes_clinic_segment_eligible",
        "episodes",
        ["clinic_id", "segment", "eligible_at"],
        schema=S,
    )
    # One row per pilot: its cohort and dates, as its SequenceStarted carry them.
    op.create_table(
        "pilot_plans",
        sa.Column("pilot_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("plan", pg.JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("pilot_plans", schema=S)
    op.drop_index("episodes_clinic_segment_eligible", table_name="episodes", schema=S)
    for name, _ in EPISODE_COLUMNS:
        op.drop_column("episodes", name, schema=S)
