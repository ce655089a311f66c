"""Notes on a case: staff write as many as the case needs while it is worked (the resolution's
note stays on the case itself). Free text: stored and shown to staff, never logged.

Revision ID: escalation_0003_notes
Revises: escalation_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "escalation_0003_notes"
down_revision = "escalation_0002"
branch_labels = None
depends_on = None
S = "escalation"


def upgrade() -> None:
    op.create_table(
        "case_notes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", sa.Text, nullable=False),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("case_notes_by_case", "case_notes", ["escalation_id", "id"], schema=S)


def downgrade() -> None:
    op.drop_table("case_notes", schema=S)
