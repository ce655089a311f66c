"""Freed slots: one row per freed appointment's slot, folded from SlotFreed, SlotOffered and
SlotRefilled (each carries the whole slot, so the row never waits for another event).

Revision ID: metrics_0005_freed_slots
Revises: metrics_0004_timer_retries
"""

import sqlalchemy as sa
from alembic import op

revision = "metrics_0005_freed_slots"
down_revision = "metrics_0004_timer_retries"
branch_labels = None
depends_on = None
S = "metrics"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "freed_slots",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("freed_at", TS, nullable=False),
        sa.Column("offers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_offered_at", TS),
        sa.Column("refilled_at", TS),
        sa.Column("price_cents", sa.BigInteger),
        sa.Column("currency", sa.Text),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("freed_slots", schema=S)
