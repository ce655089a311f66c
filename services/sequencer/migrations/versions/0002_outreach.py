"""Full sequences, patients' outreach facts, steps, activity, workflows, rules and pilots.

Revision ID: sequencer_0002
Revises: sequencer_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "sequencer_0002"
down_revision = "sequencer_0001"
branch_labels = None
depends_on = None
S = "sequencer"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    add = [
        sa.Column("clinic_id", sa.Text),
        sa.Column("kind", sa.Text, nullable=False, server_default="reactivation"),
        sa.Column("needs_marketing_consent", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("time_zone", sa.Text),
        sa.Column("next_step", sa.Integer),
        sa.Column("next_due", TS),
        sa.Column("armed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("snoozed_until", TS),
        sa.Column("closes_at", TS),
        sa.Column("pilot_id", sa.Text),
        sa.Column("arm", sa.Text, nullable=False, server_default="outreach"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("correlation_id", sa.Text),
    ]
    for column in add:
        op.add_column("sequences", column, schema=S)
    op.execute(
        f"UPDATE {S}.sequences SET clinic_id = split_part(patient_key, ':', 1), "
        "started_at = coalesce(created_at, now())"
    )
    op.alter_column("sequences", "clinic_id", nullable=False, schema=S)
    op.alter_column("sequences", "started_at", nullable=False, schema=S)
    op.create_index(
        "sequences_clinic_state", "sequences", ["clinic_id", "state", "segment"], schema=S
    )
    op.create_index("sequences_patient", "sequences", ["patient_key"], schema=S)
    op.create_index(
        "sequences_pilot",
        "sequences",
        ["pilot_id"],
        schema=S,
        postgresql_where=sa.text("pilot_id IS NOT NULL"),
    )
    # Every step rewrites its sequence, its patient and its step rows without touching an
    # indexed column: room on each page lets Postgres update in place (HOT) instead of adding
    # index entries (bench/sequencer.py).
    op.execute(f"ALTER TABLE {S}.sequences SET (fillfactor = 70)")
    # The timer poller claims "ORDER BY due_at, id LIMIT n": with only (due_at) indexed, every
    # claim sorted all due timers (50-80 ms at 100,000 due steps); this index hands them over
    # in order.
    op.create_index("timers_due_id", "timers", ["due_at", "id"], schema=S)

    op.create_table(
        "patients",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("time_zone", sa.Text),
        sa.Column("opt_outs", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("escalations", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("operator_paused", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("sends", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("rest_until", TS),
        sa.Column("updated_at", TS, server_default=sa.func.now()),
        schema=S,
        postgresql_with={"fillfactor": 70},
    )
    op.create_table(
        "steps",
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("template_key", sa.Text),
        sa.Column("scheduled_for", TS),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("commanded_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sequence_id", "step"),
        schema=S,
        postgresql_with={"fillfactor": 80},
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        schema=S,
    )
    op.create_index("activity_sequence", "activity", ["sequence_id", "at"], schema=S)
    op.create_table(
        "workflows",
        sa.Column("clinic_id", sa.Text, nullable=False),  # "*": every clinic
        sa.Column("workflow_key", sa.Text, nullable=False),
        sa.Column("definition", pg.JSONB, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "workflow_key"),
        schema=S,
    )
    op.create_table(
        "clinic_rules",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("rules", pg.JSONB, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "state_hours",
        sa.Column("state_code", sa.Text, primary_key=True),
        sa.Column("allowed_from", sa.Time, nullable=False),
        sa.Column("allowed_until", sa.Time, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "pilots",
        sa.Column("pilot_id", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("cohort_size", sa.Integer, nullable=False),
        sa.Column("holdout_share", sa.Float, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("starts_at", TS),
        sa.Column("ends_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("enrolled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        schema=S,
    )
    op.create_index("pilots_clinic", "pilots", ["clinic_id", "status"], schema=S)
    op.create_table(
        "pilot_assignments",
        sa.Column("pilot_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("arm", sa.Text, nullable=False),
        sa.Column("sequence_id", sa.Text, nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pilot_id", "patient_key"),
        schema=S,
    )
    op.create_table(
        "pilot_reviews",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.Text, nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("reviewed_by", sa.Text, nullable=False),
        sa.Column("reviewed_at", TS, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_index("timers_due_id", table_name="timers", schema=S)
    for table in (
        "pilot_reviews",
        "pilot_assignments",
        "pilots",
        "state_hours",
        "clinic_rules",
        "workflows",
        "activity",
        "steps",
        "patients",
    ):
        op.drop_table(table, schema=S)
    op.execute(f"ALTER TABLE {S}.sequences RESET (fillfactor)")
    for index in ("sequences_pilot", "sequences_patient", "sequences_clinic_state"):
        op.drop_index(index, table_name="sequences", schema=S)
    for column in (
        "clinic_id",
        "kind",
        "needs_marketing_consent",
        "reason",
        "time_zone",
        "next_step",
        "next_due",
        "armed",
        "snoozed_until",
        "closes_at",
        "pilot_id",
        "arm",
        "failures",
        "started_at",
        "closed_at",
        "correlation_id",
    ):
        op.drop_column("sequences", column, schema=S)
