"""Why staff paused, resumed or stopped a patient's outreach: a reason code from a fixed list,
who, when, and an optional note (staff free text: shown to staff, never logged or sent).

Revision ID: sequencer_0003_staff_actions
Revises: sequencer_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "sequencer_0003_staff_actions"
down_revision = "sequencer_0002"
branch_labels = None
depends_on = None
S = "sequencer"


def upgrade() -> None:
    op.create_table(
        "staff_actions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),  # pause | resume | stop
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("staff_actions_by_patient", "staff_actions", ["patient_key", "id"], schema=S)


def downgrade() -> None:
    op.drop_table("staff_actions", schema=S)
