"""Care journeys, segment memberships and per-clinic segment parameters.

Replaces the walking skeleton's ``needs`` table: its open needs are carried over as open
memberships (same eligibility ids), so each one still gets its PatientLeftSegment.

Revision ID: segmenter_0002
Revises: segmenter_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "segmenter_0002"
down_revision = "segmenter_0001"
branch_labels = None
depends_on = None
S = "segmenter"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("recovery_hold", sa.Boolean, nullable=False, server_default=sa.false()),
        # Service-recovery escalations already raised for the patient (their ids).
        sa.Column("raised", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        # When time alone next changes one of the patient's memberships: the sweep's index.
        sa.Column("next_transition_at", TS),
        sa.Column("params_version", sa.Integer, nullable=False, server_default="0"),
        # A new random value at every write of the patient's state: a process may reuse the
        # state it cached only while this still matches (see repository.StateCache).
        sa.Column("rev", pg.UUID(as_uuid=True)),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index(
        "patients_next_transition",
        "patients",
        ["next_transition_at"],
        schema=S,
        postgresql_where=sa.text("next_transition_at IS NOT NULL"),
    )
    # Deliberately no index on clinic_id: every write of a patient's state (the sweep's
    # included) would maintain it, for the rare re-evaluation after a parameter change.

    op.create_table(
        "records",
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("source_updated_at", TS, nullable=False),
        sa.Column("source_version", sa.Text),
        sa.Column("type_rank", sa.SmallInteger, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False),
        sa.Column("stored_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("patient_key", "kind", "record_id"),
        schema=S,
    )

    op.create_table(
        "memberships",
        sa.Column("need_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("source_kind", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("surface_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("cosmetic", sa.Boolean, nullable=False),
        sa.Column("fields", pg.JSONB, nullable=False),
        sa.Column("emissions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("eligibility_id", sa.Text),
        sa.Column("hold_reason", sa.Text),
        sa.Column("closed_reason", sa.Text),
        sa.Column("closed_at", TS),
        sa.Column("opened_at", TS),
        # The causing event's trace headers, correlation and causation ids (see sweep.py).
        sa.Column("origin", pg.JSONB),
        sa.Column("found_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("memberships_patient", "memberships", ["patient_key"], schema=S)
    # No index mentions status or hold_reason, and pages keep room for new row versions, so
    # the sweep's status changes are HOT updates (no index maintenance).
    op.execute(f"ALTER TABLE {S}.memberships SET (fillfactor = 70)")
    op.create_index(
        "memberships_surfacing", "memberships", ["clinic_id", "segment", "surface_at"], schema=S
    )

    op.create_table(
        "clinic_params",
        sa.Column("clinic_id", sa.Text, primary_key=True),
        sa.Column("overrides", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_by", sa.Text),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )

    op.execute(
        f"""
        INSERT INTO {S}.memberships (need_id, patient_key, clinic_id, segment, kind, service_line,
            source_kind, source_id, status, surface_at, rank, cosmetic, fields, emissions,
            eligibility_id, opened_at)
        SELECT eligibility_id, patient_key, split_part(patient_key, ':', 1), segment,
            'reactivation', service_line, source_kind, source_id, 'open', opened_at, 0, false,
            '{{}}'::jsonb, 1, eligibility_id, opened_at
        FROM {S}.needs WHERE closed_reason IS NULL
        """
    )
    op.execute(
        f"""
        INSERT INTO {S}.patients (patient_key, clinic_id)
        SELECT DISTINCT patient_key, clinic_id FROM {S}.memberships ON CONFLICT DO NOTHING
        """
    )
    op.drop_table("needs", schema=S)


def downgrade() -> None:
    op.create_table(
        "needs",
        sa.Column("eligibility_id", sa.Text, primary_key=True),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("service_line", sa.Text, nullable=False),
        sa.Column("source_kind", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_reason", sa.Text),
        sa.Column("updated_at", TS, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("needs_patient", "needs", ["patient_key"], schema=S)
    for table in ("clinic_params", "memberships", "records", "patients"):
        op.drop_table(table, schema=S)
