"""Backbone, integration API keys and accepted source messages.

Revision ID: ingest_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from shared.migration_ops import create_backbone_v1

revision = "ingest_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "ingest"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_table(
        "source_messages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("source_key", sa.Text, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        # Kept so a message can be replayed after a mapping fix; purged after the retention.
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("event_ids", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("clinic_id", "source_key", name="source_messages_once"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("source_messages", schema=S)
    op.drop_table("api_keys", schema=S)
