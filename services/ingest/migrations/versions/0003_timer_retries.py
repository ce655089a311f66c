"""Timers that fail are retried with backoff and parked after repeated failures.

Revision ID: ingest_0003
Revises: ingest_0002
"""

from shared.migration_ops import add_timer_retries_v1, drop_timer_retries_v1

revision = "ingest_0003"
down_revision = "ingest_0002"
branch_labels = None
depends_on = None
S = "ingest"


def upgrade() -> None:
    add_timer_retries_v1(S)


def downgrade() -> None:
    drop_timer_retries_v1(S)
