"""Backbone, contacts, practices, sends and the sandbox message store.

Revision ID: messenger_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_backbone_v1

revision = "messenger_0001"
down_revision = None
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    create_backbone_v1(S)
    op.create_table(
        "contacts",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("given_name", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("language", sa.Text, nullable=False, server_default="en"),
        sa.Column("time_zone", sa.Text),
        sa.Column("deceased", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("opted_out_sms", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("opted_out_email", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("marketing_consent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "practices",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False),
        schema=S,
    )
    op.create_table(
        "sends",
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("provider", sa.Text),
        sa.PrimaryKeyConstraint("sequence_id", "step"),
        schema=S,
    )
    op.create_table(
        "cancelled_sequences",
        sa.Column("sequence_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "sandbox_messages",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("trace_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("sandbox_by_patient", "sandbox_messages", ["patient_key"], schema=S)


def downgrade() -> None:
    for table in ("sandbox_messages", "cancelled_sequences", "sends", "practices", "contacts"):
        op.drop_table(table, schema=S)
