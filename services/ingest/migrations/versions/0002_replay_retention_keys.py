"""Replay, retention, appointment versions, refused messages and key rotation.

Revision ID: ingest_0002
Revises: ingest_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None
S = "ingest"


def upgrade() -> None:
    # The raw bytes are purged after the retention; the row stays for de-duplication.
    op.alter_column("source_messages", "raw", nullable=True, schema=S)
    op.add_column("source_messages", sa.Column("fingerprint", sa.Text), schema=S)
    op.add_column("source_messages", sa.Column("purged_at", sa.DateTime(timezone=True)), schema=S)
    op.add_column("source_messages", sa.Column("replayed_at", sa.DateTime(timezone=True)), schema=S)
    op.create_index(
        "source_messages_received", "source_messages", ["clinic_id", "received_at"], schema=S
    )
    op.create_index("source_messages_retention", "source_messages", ["received_at"], schema=S)
    # Messages refused for their content, kept (within the retention) to replay after a fix.
    op.create_table(
        "refused_messages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("source_key", sa.Text),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("problems", pg.JSONB, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "refused_messages_received", "refused_messages", ["clinic_id", "received_at"], schema=S
    )
    # What each version of an appointment said, by the source's own timestamp, so a booking
    # whose start moved is published as a reschedule whatever order the versions arrive in.
    op.create_table(
        "appointment_versions",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("appointment_key", sa.Text, nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "appointment_key", "source_updated_at"),
        schema=S,
    )
    op.add_column("api_keys", sa.Column("created_by", sa.Text), schema=S)
    op.create_index("api_keys_clinic", "api_keys", ["clinic_id"], schema=S)


def downgrade() -> None:
    op.drop_index("api_keys_clinic", table_name="api_keys", schema=S)
    op.drop_column("api_keys", "created_by", schema=S)
    op.drop_table("appointment_versions", schema=S)
    op.drop_table("refused_messages", schema=S)
    op.drop_index("source_messages_retention", table_name="source_messages", schema=S)
    op.drop_index("source_messages_received", table_name="source_messages", schema=S)
    op.drop_column("source_messages", "replayed_at", schema=S)
    op.drop_column("source_messages", "purged_at", schema=S)
    op.drop_column("source_messages", "fingerprint", schema=S)
    op.execute(f"DELETE FROM {S}.source_messages WHERE raw IS NULL")
    op.alter_column("source_messages", "raw", nullable=False, schema=S)
