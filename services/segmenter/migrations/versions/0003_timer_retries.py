"""Timers that fail are retried with backoff and parked after repeated failures.

Revision ID: segmenter_0003
Revises: segmenter_0002
"""

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "segmenter_0003"
down_revision = "segmenter_0002"
branch_labels = None
depends_on = None
S = "segmenter"


def upgrade() -> None:
    add_timer_retries_v1(S)


def downgrade() -> None:
    drop_timer_retries_v1(S)
