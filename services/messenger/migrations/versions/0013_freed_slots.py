"""Freed slots refilled: the waitlist, who is in a segment for which service, the freed slots
and their offers, the practice's service prices and the clinic's latest outreach policy.

Revision ID: messenger_0013_freed_slots
Revises: messenger_0012_erased_opt_outs
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0013_freed_slots"
down_revision = "messenger_0012_erased_opt_outs"
branch_labels = None
depends_on = None
S = "messenger"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "waitlist",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text),  # NULL: any service
        sa.Column("provider_id", sa.Text),  # NULL: any provider
        sa.Column("added_at", TS, nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        sa.Column("removed_at", TS),
        sa.Column("removed_by", sa.Text),
        schema=S,
    )
    op.create_index(
        "waitlist_open",
        "waitlist",
        ["clinic_id", "service_line"],
        schema=S,
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "recall_members",
        sa.Column("eligibility_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("due_on", sa.Date),
        sa.Column("marketing", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("left_at", TS),
        schema=S,
    )
    op.create_index(
        "recall_members_open",
        "recall_members",
        ["clinic_id", "service_line"],
        schema=S,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_table(
        "freed_slots",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("appointment_id", sa.Text, nullable=False),
        sa.Column("freed_by", sa.Text, nullable=False),
        sa.Column("slot_id", sa.Text),  # found in the EHR after the cancellation
        sa.Column("start", TS, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Text),
        sa.Column("location_id", sa.Text),
        sa.Column("price_cents", sa.BigInteger),
        sa.Column("currency", sa.Text),
        sa.Column("freed_at", TS, nullable=False),
        # looking | offering | claimed | refilled | taken | not_free | closed
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("batches", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_reply", sa.Text),
        sa.Column("refilled_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        schema=S,
    )
    op.create_index(
        "freed_slots_when", "freed_slots", ["clinic_id", "provider_id", "start"], schema=S
    )
    op.create_table(
        "slot_offers",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("offered_at", TS, nullable=False),
        # offered | accepted | gone (told the time has gone) | withdrawn (no reply; closed)
        sa.Column("status", sa.Text, nullable=False),
        schema=S,
    )
    op.create_table(
        "service_prices",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("service_line", sa.Text, primary_key=True),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        schema=S,
    )
    op.create_table(
        "clinic_policies",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("policy", pg.JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        schema=S,
    )
    op.add_column("conversations", sa.Column("offer_id", sa.Text), schema=S)


def downgrade() -> None:
    op.drop_column("conversations", "offer_id", schema=S)
    for table in (
        "clinic_policies",
        "service_prices",
        "slot_offers",
        "freed_slots",
        "recall_members",
        "waitlist",
    ):
        op.drop_table(table, schema=S)
