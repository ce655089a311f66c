"""The recall read model: patient histories, episodes and what is attributed to them.

Revision ID: metrics_0002
Revises: metrics_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "metrics_0002"
down_revision = "metrics_0001"
branch_labels = None
depends_on = None
S = "metrics"
TS = sa.DateTime(timezone=True)


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "send_counts",
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "channel", "status", "reason"),
        schema=S,
    )
    # One document per patient: the facts every figure is derived from (history.PatientHistory).
    op.create_table(
        "histories",
        *_key(),
        sa.Column("doc", pg.JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("patient_key"),
        schema=S,
    )
    op.create_table(
        "episodes",
        *_key(),
        sa.Column("eligibility_id", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("eligible_at", TS, nullable=False),
        sa.Column("left_reason", sa.Text),
        sa.Column("sequence_id", sa.Text),
        sa.Column("workflow_key", sa.Text),
        sa.Column("pilot_id", sa.Text),
        sa.Column("arm", sa.Text),
        sa.Column("started_at", TS),
        sa.Column("first_sent_at", TS),
        sa.Column("messages_sent", sa.Integer, nullable=False),
        sa.Column("first_delivered_at", TS),
        sa.Column("replied", sa.Boolean, nullable=False),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("booked_at", TS),
        sa.Column("bookings", sa.Integer, nullable=False),
        sa.Column("completed_visits", sa.Integer, nullable=False),
        sa.Column("revenue_cents", sa.BigInteger, nullable=False),
        sa.Column("assigned_booked_at", TS),
        sa.Column("assigned_bookings", sa.Integer, nullable=False),
        sa.Column("assigned_completed_visits", sa.Integer, nullable=False),
        sa.Column("assigned_revenue_cents", sa.BigInteger, nullable=False),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("rules_version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("patient_key", "eligibility_id"),
        schema=S,
    )
    op.create_index("episodes_clinic_eligible", "episodes", ["clinic_id", "eligible_at"], schema=S)
    op.create_index(
        "episodes_pilot",
        "episodes",
        ["pilot_id", "clinic_id"],
        schema=S,
        postgresql_where=sa.text("pilot_id IS NOT NULL"),
    )
    op.create_table(
        "replies",
        *_key(),
        sa.Column("reply_id", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("barrier", sa.Text),
        sa.Column("eligibility_id", sa.Text),
        sa.PrimaryKeyConstraint("patient_key", "reply_id"),
        schema=S,
    )
    op.create_index("replies_clinic_at", "replies", ["clinic_id", "at"], schema=S)
    op.create_table(
        "opt_outs",
        *_key(),
        sa.Column("opt_out_id", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("eligibility_id", sa.Text),
        sa.PrimaryKeyConstraint("patient_key", "opt_out_id"),
        schema=S,
    )
    op.create_index("opt_outs_clinic_at", "opt_outs", ["clinic_id", "at"], schema=S)
    op.create_table(
        "escalations",
        *_key(),
        sa.Column("escalation_id", sa.Text, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("severity", sa.Text),
        sa.Column("case_type", sa.Text),
        sa.Column("acknowledged_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("eligibility_id", sa.Text),
        sa.PrimaryKeyConstraint("patient_key", "escalation_id"),
        schema=S,
    )
    op.create_index(
        "escalations_clinic_raised", "escalations", ["clinic_id", "raised_at"], schema=S
    )


def downgrade() -> None:
    for table in ("escalations", "opt_outs", "replies", "episodes", "histories", "send_counts"):
        op.drop_table(table, schema=S)
