"""Timers that fail are retried with backoff and parked after repeated failures.

Revision ID: sequencer_0006_timer_retries
Revises: sequencer_0005_documented_facts
"""

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "sequencer_0006_timer_retries"
down_revision = "sequencer_0005_documented_facts"
branch_labels = None
depends_on = None
S = "sequencer"


def upgrade() -> None:
    add_timer_retries_v1(S)


def downgrade() -> None:
    drop_timer_retries_v1(S)
