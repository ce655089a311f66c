"""Failures survived: timer retries, a send's identity for its provider, held consent changes.

- timers: attempts, last error, real-time retry and parking (shared ``add_timer_retries_v1``);
- outgoing.send_ref: the stable identity of a send per (sequence, step, channel) (a reply's
  own key for answers), carried to the provider, so an ambiguous send is found again by it;
- consent_ledger.note: why a change was held (an EHR opt-in after the patient's STOP) or the
  reason staff gave for undoing a STOP; consent_ledger.recorded_at: the database's wall clock
  when the change was written (``at`` is the practice's clock), which orders an opt-out against
  a send decision exactly (the fault run's checker reads it).

Revision ID: messenger_0009_faults
Revises: messenger_0008_words_and_policy
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "messenger_0009_faults"
down_revision = "messenger_0008_words_and_policy"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    add_timer_retries_v1(S)
    op.add_column("outgoing", sa.Column("send_ref", sa.Text), schema=S)
    op.execute(
        f"UPDATE {S}.outgoing SET send_ref = CASE WHEN kind = 'step' "
        "THEN sequence_id || ':' || step || ':' || channel ELSE idempotency_key END"
    )
    op.create_index("outgoing_by_send_ref", "outgoing", ["send_ref"], schema=S)
    op.add_column("consent_ledger", sa.Column("note", sa.Text), schema=S)
    op.add_column(
        "consent_ledger",
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
        ),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("consent_ledger", "recorded_at", schema=S)
    op.drop_column("consent_ledger", "note", schema=S)
    op.drop_index("outgoing_by_send_ref", "outgoing", schema=S)
    op.drop_column("outgoing", "send_ref", schema=S)
    drop_timer_retries_v1(S)
