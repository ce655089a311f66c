"""EHR connections per clinic, the patient's record numbers and EHR identity, booking tasks for
staff, appointments Revisit created, and the queue of messages to write to the chart.

Revision ID: messenger_0004_ehr
Revises: messenger_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0004_ehr"
down_revision = "messenger_0003"
branch_labels = None
depends_on = None
S = "messenger"


def _at(name: str, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    # Secrets are not here: settings name environment variables, never values.
    op.create_table(
        "ehr_connections",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("settings", pg.JSONB, nullable=False),
        sa.Column("capabilities", pg.JSONB),
        _at("capabilities_checked_at"),
        sa.Column("updated_by", sa.Text, nullable=False),
        _at("updated_at", nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "ehr_patient_identifiers",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("identifiers", pg.JSONB, nullable=False),
        _at("source_updated_at", nullable=False),
        schema=S,
    )
    op.create_table(
        "ehr_patient_links",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("fhir_patient_id", sa.Text, nullable=False),
        sa.Column("matched_on", sa.Text, nullable=False),  # the identifier system, not the value
        _at("checked_at", nullable=False),
        schema=S,
    )
    op.create_table(
        "ehr_booking_tasks",
        sa.Column("escalation_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("booking_request_id", sa.Text, nullable=False),
        sa.Column("reply_message_id", sa.Text),
        sa.Column("service_line", sa.Text),
        sa.Column("details", pg.JSONB, nullable=False),
        _at("created_at", nullable=False),
        schema=S,
    )
    op.create_index(
        "ehr_tasks_by_clinic", "ehr_booking_tasks", ["clinic_id", "created_at"], schema=S
    )
    op.create_table(
        "ehr_appointments",
        sa.Column("booking_request_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("appointment_id", sa.Text, nullable=False),
        sa.Column("slot_id", sa.Text, nullable=False),
        sa.Column("sequence_id", sa.Text),
        _at("created_at", nullable=False),
        schema=S,
    )
    op.create_index("ehr_appointments_by_patient", "ehr_appointments", ["patient_key"], schema=S)
    op.create_table(
        "ehr_chart_queue",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),  # outbound | inbound
        sa.Column("status", sa.Text, nullable=False),  # pending | written | failed
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _at("available_at", nullable=False, server_default=sa.func.now()),
        sa.Column("communication_id", sa.Text),
        sa.Column("failure", sa.Text),
        _at("created_at", nullable=False, server_default=sa.func.now()),
        _at("written_at"),
        schema=S,
    )
    op.execute(
        f"CREATE INDEX ehr_chart_pending ON {S}.ehr_chart_queue (available_at) "
        "WHERE status = 'pending'"
    )


def downgrade() -> None:
    for table in (
        "ehr_chart_queue",
        "ehr_appointments",
        "ehr_booking_tasks",
        "ehr_patient_links",
        "ehr_patient_identifiers",
        "ehr_connections",
    ):
        op.drop_table(table, schema=S)
