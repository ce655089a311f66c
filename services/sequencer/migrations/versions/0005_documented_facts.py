"""What the eligibility documented (for the words of each step), the patient's address state
(for that state's allowed hours), and the reminders a patient was told are closed (the last
step says no more messages will follow about them). Additive: old rows read as "not
documented", "unknown" and "none closed".

Revision ID: sequencer_0005_documented_facts
Revises: sequencer_0004_pilot_cohorts
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "sequencer_0005_documented_facts"
down_revision = "sequencer_0004_pilot_cohorts"
branch_labels = None
depends_on = None
S = "sequencer"


def upgrade() -> None:
    op.add_column("sequences", sa.Column("documented", pg.JSONB), schema=S)
    op.add_column("sequences", sa.Column("home_state", sa.Text), schema=S)
    op.add_column("sequences", sa.Column("reminder_key", sa.Text), schema=S)
    op.add_column("patients", sa.Column("home_state", sa.Text), schema=S)
    op.add_column(
        "patients",
        sa.Column("closed_reminders", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("patients", "closed_reminders", schema=S)
    op.drop_column("patients", "home_state", schema=S)
    op.drop_column("sequences", "reminder_key", schema=S)
    op.drop_column("sequences", "home_state", schema=S)
    op.drop_column("sequences", "documented", schema=S)
