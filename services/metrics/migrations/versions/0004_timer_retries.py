"""Timers that fail are retried with backoff and parked after repeated failures.

Revision ID: metrics_0004_timer_retries
Revises: metrics_0003
"""

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "metrics_0004_timer_retries"
down_revision = "metrics_0003"
branch_labels = None
depends_on = None
S = "metrics"


def upgrade() -> None:
    add_timer_retries_v1(S)


def downgrade() -> None:
    drop_timer_retries_v1(S)
