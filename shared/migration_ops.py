"""Frozen DDL steps that several services' migrations share.

A migration must keep doing what it did when it was written, so these are versioned by name
(``create_backbone_v1``) and never edited; a later change to the backbone is a new function
called from a new migration in every service.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg


def create_backbone_v1(schema: str) -> None:
    """Outbox, inbox and timers for one service schema."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("message_key", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=schema,
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
        schema=schema,
    )
    op.create_table(
        "timers",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("timer_key", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_key", sa.Text),
        sa.Column("payload", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.UniqueConstraint("kind", "timer_key", name="timers_kind_key"),
        schema=schema,
    )
    op.create_index("timers_due", "timers", ["due_at"], schema=schema)


def add_timer_retries_v1(schema: str) -> None:
    """Timers that fail: how often, why, when to try again (wall clock), and parked ones."""
    for column in (
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        # Real time before which the timer is not fired again: a backoff after a failure, or
        # the lease of a timer whose work is calling outside (claim, commit, call, record).
        sa.Column("retry_at", sa.DateTime(timezone=True)),
        # Set once a timer failed max_attempts times: left for a person to re-arm.
        sa.Column("parked_at", sa.DateTime(timezone=True)),
    ):
        op.add_column("timers", column, schema=schema)
    op.create_index(
        "timers_parked",
        "timers",
        ["parked_at"],
        schema=schema,
        postgresql_where=sa.text("parked_at IS NOT NULL"),
    )


def drop_timer_retries_v1(schema: str) -> None:
    op.drop_index("timers_parked", "timers", schema=schema)
    for column in ("parked_at", "retry_at", "last_error", "attempts"):
        op.drop_column("timers", column, schema=schema)
