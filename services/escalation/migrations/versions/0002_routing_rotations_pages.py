"""Routing, rotations, notifiers, page deliveries, the sandbox pager and the audit trail.

Revision ID: escalation_0002
Revises: escalation_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "escalation_0002"
down_revision = "escalation_0001"
branch_labels = None
depends_on = None
S = "escalation"
TS = sa.DateTime(timezone=True)


def _jsonb(name: str, default: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, pg.JSONB, nullable=False, server_default=sa.text(f"'{default}'::jsonb"))


def upgrade() -> None:
    for column in (
        sa.Column("rule_id", sa.Text),
        sa.Column("rotation_id", sa.Text),
        sa.Column("responder_id", sa.Text),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("step", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ack_due_at", TS),
        sa.Column("page_at", TS),
        sa.Column("first_paged_at", TS),
        sa.Column("last_paged_attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledged_at", TS),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolved_at", TS),
        sa.Column("note", sa.Text),  # staff free text: stored and shown to staff, never logged
        sa.Column("resume_outreach", sa.Boolean),
        sa.Column("exhausted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source_message_id", sa.Text),
        sa.Column("sequence_id", sa.Text),
        sa.Column("service_line", sa.Text),
        sa.Column("channel", sa.Text),
        sa.Column("raised_event_id", pg.UUID(as_uuid=True)),
        sa.Column("correlation_id", pg.UUID(as_uuid=True)),
        sa.Column("updated_at", TS),
    ):
        op.add_column("cases", column, schema=S)
    op.execute(f"UPDATE {S}.cases SET state = 'queued' WHERE state = 'open'")
    op.create_index("cases_queue", "cases", ["state", "severity", "raised_at"], schema=S)

    op.create_table(
        "clinics",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("opens", sa.Time, nullable=False),
        sa.Column("closes", sa.Time, nullable=False),
        _jsonb("open_days", "[0,1,2,3,4]"),
        _jsonb("ack_minutes", "{}"),
        _jsonb("default_notifiers", '["sandbox"]'),
        sa.Column("created_at", TS, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "rotations",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("rotation_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("handoff_time", sa.Time, nullable=False),
        sa.Column("shift_days", sa.Integer, nullable=False),
        sa.Column("anchor_date", sa.Date, nullable=False),
        _jsonb("members", "[]"),
        sa.Column("fallback_rotation_id", sa.Text),
        _jsonb("notifier_ids", "[]"),
        sa.Column("updated_at", TS, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("clinic_id", "rotation_id"),
        schema=S,
    )
    op.create_table(
        "rotation_overrides",
        sa.Column("override_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("rotation_id", sa.Text, nullable=False),
        sa.Column("responder_id", sa.Text, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index(
        "overrides_by_rotation", "rotation_overrides", ["clinic_id", "rotation_id"], schema=S
    )
    op.create_table(
        "routing_rules",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("rotation_id", sa.Text, nullable=False),
        _jsonb("case_types", "[]"),
        _jsonb("severities", "[]"),
        sa.Column("hours", sa.Text, nullable=False),
        sa.Column("page", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "rule_id"),
        schema=S,
    )
    op.create_table(
        "notifiers",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("notifier_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        _jsonb("settings", "{}"),
        sa.Column("secret_env", sa.Text),
        sa.Column("secret_value", sa.Text),  # write-only: never returned, never logged
        sa.Column("updated_at", TS, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("clinic_id", "notifier_id"),
        schema=S,
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", sa.Text, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("notifier_id", sa.Text, nullable=False),
        sa.Column("notifier_kind", sa.Text, nullable=False),
        sa.Column("rotation_id", sa.Text, nullable=False),
        sa.Column("responder_id", sa.Text, nullable=False),
        sa.Column("notice", pg.JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),  # wall time: provider back-off
        sa.Column("last_error", sa.Text),
        sa.Column("provider_ref", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.UniqueConstraint("escalation_id", "attempt", "action", "notifier_id", name="pages_once"),
        schema=S,
    )
    op.create_index(
        "pages_due",
        "pages",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("pages_by_case", "pages", ["escalation_id", "notifier_id", "id"], schema=S)
    op.create_table(
        "sandbox_pages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("page_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("escalation_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("rotation_id", sa.Text, nullable=False),
        sa.Column("responder_id", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("case_type", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("case_url", sa.Text),
        sa.Column("recorded_at", TS, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("sandbox_pages_by_clinic", "sandbox_pages", ["clinic_id", "id"], schema=S)
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("escalation_id", sa.Text),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        _jsonb("detail", "{}"),
        schema=S,
    )
    op.create_index("audit_by_case", "audit", ["escalation_id", "id"], schema=S)
    op.create_index("audit_by_clinic", "audit", ["clinic_id", "id"], schema=S)


def downgrade() -> None:
    for table in (
        "audit",
        "sandbox_pages",
        "pages",
        "notifiers",
        "routing_rules",
        "rotation_overrides",
        "rotations",
        "clinics",
    ):
        op.drop_table(table, schema=S)
    op.drop_index("cases_queue", table_name="cases", schema=S)
    op.execute(f"UPDATE {S}.cases SET state = 'open' WHERE state <> 'resolved'")
    for name in (
        "rule_id",
        "rotation_id",
        "responder_id",
        "attempt",
        "step",
        "ack_due_at",
        "page_at",
        "first_paged_at",
        "last_paged_attempt",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "note",
        "resume_outreach",
        "exhausted",
        "source_message_id",
        "sequence_id",
        "service_line",
        "channel",
        "raised_event_id",
        "correlation_id",
        "updated_at",
    ):
        op.drop_column("cases", name, schema=S)
