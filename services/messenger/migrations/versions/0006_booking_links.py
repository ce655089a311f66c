"""Tracked booking links: one random token per outreach step, and its clicks.

Revision ID: messenger_0006_booking_links
Revises: messenger_0005_inbox
"""

import sqlalchemy as sa
from alembic import op

revision = "messenger_0006_booking_links"
down_revision = "messenger_0005_inbox"
branch_labels = None
depends_on = None
S = "messenger"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "booking_links",
        sa.Column("token", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("target_url", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("clicks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_clicked_at", TS),
        sa.UniqueConstraint("sequence_id", "step", name="booking_links_step"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("booking_links", schema=S)
