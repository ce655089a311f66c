"""Templates, the durable send queue, replies, conversations, the consent ledger.

Revision ID: messenger_0002
Revises: messenger_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0002"
down_revision = "messenger_0001"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    # --- contacts: what the ledger and replies add to the EHR's card ---------------------------
    op.add_column("contacts", sa.Column("wrong_number_phone", sa.Text), schema=S)
    for column in ("sms_consent_at", "email_consent_at", "marketing_consent_at"):
        op.add_column("contacts", sa.Column(column, sa.DateTime(timezone=True)), schema=S)
    op.create_index("contacts_by_phone", "contacts", ["phone"], schema=S)
    op.create_index("contacts_by_email", "contacts", ["email"], schema=S)

    # --- practices: how the practice is named and reached ---------------------------------------
    op.add_column("practices", sa.Column("booking_url", sa.Text), schema=S)
    op.add_column("practices", sa.Column("sms_number", sa.Text), schema=S)
    op.add_column("practices", sa.Column("email_address", sa.Text), schema=S)
    op.add_column("practices", sa.Column("time_zone", sa.Text), schema=S)
    op.create_table(
        "practice_providers",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "provider_id"),
        schema=S,
    )

    # --- templates ---------------------------------------------------------------------------
    op.create_table(
        "templates",
        sa.Column("template_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text),  # NULL: the library every clinic shares
        sa.Column("workflow_key", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("tone", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("urgency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # draft | approved | retired
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("approved_by", sa.Text),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.execute(
        f"CREATE UNIQUE INDEX templates_version ON {S}.templates (coalesce(clinic_id, ''), "
        "workflow_key, step, channel, tone, language, version)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX templates_one_approved ON {S}.templates (coalesce(clinic_id, ''), "
        "workflow_key, step, channel, tone, language) WHERE status = 'approved'"
    )

    # --- the durable send queue and record of every outbound message ----------------------------
    op.add_column("sends", sa.Column("channel", sa.Text), schema=S)
    op.create_table(
        "outgoing",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),  # step | reply
        sa.Column("priority", sa.SmallInteger, nullable=False),  # 0 answers first, 1 outreach
        sa.Column("sequence_id", sa.Text),
        sa.Column("step", sa.Integer),
        sa.Column("reply_kind", sa.Text),
        sa.Column("in_reply_to", sa.Text),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("is_fallback", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("template_key", sa.Text),
        sa.Column("template_id", sa.BigInteger),
        sa.Column("purpose", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reconcile_attempts", sa.Integer, nullable=False, server_default="0"),
        # Wall-clock (database) times: leases and retries are about processes, not the
        # controlled clock a simulation moves forward.
        sa.Column("available_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("attempted_at", sa.DateTime(timezone=True)),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("trace_headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("correlation_id", pg.UUID(as_uuid=True)),
        sa.Column("causation_id", pg.UUID(as_uuid=True)),
        # Revisit's clock: when the message was decided and sent.
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.execute(
        f"CREATE INDEX outgoing_queue ON {S}.outgoing (provider, priority, seq) "
        "WHERE status = 'queued'"
    )
    op.execute(
        f"CREATE INDEX outgoing_in_flight ON {S}.outgoing (lease_until) WHERE status = 'sending'"
    )
    op.create_index("outgoing_by_patient", "outgoing", ["patient_key", "created_at"], schema=S)
    op.create_index("outgoing_by_provider_id", "outgoing", ["provider_message_id"], schema=S)
    op.create_index("outgoing_by_sequence", "outgoing", ["sequence_id"], schema=S)

    op.create_table(
        "provider_events",
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("provider", "provider_message_id", "status"),
        schema=S,
    )

    # --- replies and conversations -----------------------------------------------------------
    op.create_table(
        "inbound",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text),
        sa.Column("patient_key", sa.Text),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text, nullable=False),
        sa.Column("from_address", sa.Text, nullable=False),
        sa.Column("to_address", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("intent", sa.Text),
        sa.Column("barrier", sa.Text),
        sa.Column("red_flags", pg.ARRAY(sa.Text)),
        sa.Column("sequence_id", sa.Text),
        sa.Column("in_reply_to", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "provider_message_id", name="inbound_provider_once"),
        schema=S,
    )
    op.create_index("inbound_by_patient", "inbound", ["patient_key", "received_at"], schema=S)
    op.create_table(
        "conversations",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("sequence_id", sa.Text),
        sa.Column("last_outbound_message_id", sa.Text),
        sa.Column("service_line", sa.Text),
        sa.Column("provider_id", sa.Text),
        sa.Column("location_id", sa.Text),
        sa.Column("offer", pg.JSONB, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "consent_ledger",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("channel", sa.Text),  # NULL: every channel
        sa.Column("purpose", sa.Text, nullable=False),  # care | marketing
        sa.Column("change", sa.Text, nullable=False),  # opted_out | opted_in | granted | revoked
        sa.Column("via", sa.Text, nullable=False),  # reply_keyword | reply_classified | staff ...
        sa.Column("actor", sa.Text, nullable=False),  # patient | staff:<subject> | ehr:<record>
        sa.Column("source_message_id", sa.Text),
        sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("consent_by_patient", "consent_ledger", ["patient_key", "id"], schema=S)
    op.create_table(
        "open_escalations",
        sa.Column("escalation_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("open_escalations_by_patient", "open_escalations", ["patient_key"], schema=S)

    # --- sandbox -------------------------------------------------------------------------------
    op.create_index("sandbox_by_address", "sandbox_messages", ["address"], schema=S)
    op.add_column("sandbox_messages", sa.Column("subject", sa.Text), schema=S)
    op.create_table(
        "sandbox_bookings",
        sa.Column("slot_id", sa.Text, primary_key=True),
        sa.Column("booking_request_id", sa.Text, nullable=False, unique=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("appointment_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "sandbox_bookings",
        "open_escalations",
        "consent_ledger",
        "conversations",
        "inbound",
        "provider_events",
        "outgoing",
        "templates",
        "practice_providers",
    ):
        op.drop_table(table, schema=S)
    op.drop_column("sandbox_messages", "subject", schema=S)
    op.drop_index("sandbox_by_address", "sandbox_messages", schema=S)
    op.drop_column("sends", "channel", schema=S)
    for column in ("booking_url", "sms_number", "email_address", "time_zone"):
        op.drop_column("practices", column, schema=S)
    op.drop_index("contacts_by_email", "contacts", schema=S)
    op.drop_index("contacts_by_phone", "contacts", schema=S)
    for column in (
        "wrong_number_phone",
        "sms_consent_at",
        "email_consent_at",
        "marketing_consent_at",
    ):
        op.drop_column("contacts", column, schema=S)
