"""Timers that fail are retried with backoff and parked after repeated failures.

Revision ID: escalation_0004_timer_retries
Revises: escalation_0003_notes
"""

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "escalation_0004_timer_retries"
down_revision = "escalation_0003_notes"
branch_labels = None
depends_on = None
S = "escalation"


def upgrade() -> None:
    add_timer_retries_v1(S)


def downgrade() -> None:
    drop_timer_retries_v1(S)
