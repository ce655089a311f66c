"""What each reply was read as, for the person who reads it: the consent and safety readings,
the confidence, the one-line summary of the patient's words and every layer's reading.

Revision ID: messenger_0010_reply_readings
Revises: messenger_0009_faults
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0010_reply_readings"
down_revision = "messenger_0009_faults"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    op.add_column("inbound", sa.Column("consent", sa.Text), schema=S)
    op.add_column("inbound", sa.Column("safety", sa.Text), schema=S)
    op.add_column("inbound", sa.Column("confidence", sa.Float), schema=S)
    op.add_column("inbound", sa.Column("needs_person", sa.Boolean), schema=S)
    # The patient's words, summarised: shown to staff by the API, never sent in an event.
    op.add_column("inbound", sa.Column("summary", sa.Text), schema=S)
    op.add_column("inbound", sa.Column("reading", pg.JSONB), schema=S)


def downgrade() -> None:
    for column in ("reading", "summary", "needs_person", "confidence", "safety", "consent"):
        op.drop_column("inbound", column, schema=S)
