"""Steps waiting for their prerequisites (the contact card, a marketing consent) to arrive.

Revision ID: messenger_0007_held_steps
Revises: messenger_0006_booking_links
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0007_held_steps"
down_revision = "messenger_0006_booking_links"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    op.create_table(
        "held_steps",
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("waiting_for", sa.Text, nullable=False),  # contact | marketing_consent
        sa.Column("command", sa.Text, nullable=False),  # the SendStep envelope, as consumed
        sa.Column("trace_headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # waiting | blocked
        sa.Column("reason", sa.Text),  # the BlockReason, once blocked
        sa.Column("why", sa.Text),  # for staff, once blocked
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("sequence_id", "step"),
        schema=S,
    )
    op.create_index("held_steps_by_patient", "held_steps", ["patient_key"], schema=S)
    op.create_index("held_steps_by_clinic", "held_steps", ["clinic_id", "status"], schema=S)


def downgrade() -> None:
    op.drop_table("held_steps", schema=S)
