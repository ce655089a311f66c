"""Pilot cohorts and phases: filters, the launch, exclusive pilots, checklists, screenings.

Every eligibility of a running pilot's segment is screened once and the verdict kept
(``pilot_screenings``): the preview shows who is in and why before (and after) the launch.

Revision ID: sequencer_0004_pilot_cohorts
Revises: sequencer_0003_staff_actions
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "sequencer_0004_pilot_cohorts"
down_revision = "sequencer_0003_staff_actions"
branch_labels = None
depends_on = None
S = "sequencer"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "pilots", sa.Column("cohort", pg.JSONB, nullable=False, server_default="{}"), schema=S
    )
    op.add_column(
        "pilots",
        sa.Column("exclusive", sa.Boolean, nullable=False, server_default="false"),
        schema=S,
    )
    op.add_column(
        "pilots",
        sa.Column("baseline_days", sa.Integer, nullable=False, server_default="28"),
        schema=S,
    )
    op.add_column("pilots", sa.Column("launched_at", TS), schema=S)
    op.add_column(
        "pilot_reviews",
        sa.Column("checklist", pg.JSONB, nullable=False, server_default="[]"),
        schema=S,
    )
    op.create_table(
        "pilot_screenings",
        sa.Column("pilot_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("eligibility_id", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),  # enrolled, held, out
        sa.Column("arm", sa.Text),
        sa.Column("why", pg.JSONB, nullable=False),
        # Codes and ids only (service line, provider, location, cancellation, urgency, due).
        sa.Column("facts", pg.JSONB, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),  # the plain reason
        sa.Column("screened_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pilot_id", "patient_key", "eligibility_id"),
        schema=S,
    )
    op.create_index(
        "pilot_screenings_pilot_at", "pilot_screenings", ["pilot_id", "screened_at"], schema=S
    )


def downgrade() -> None:
    op.drop_table("pilot_screenings", schema=S)
    op.drop_column("pilot_reviews", "checklist", schema=S)
    for column in ("launched_at", "baseline_days", "exclusive", "cohort"):
        op.drop_column("pilots", column, schema=S)
