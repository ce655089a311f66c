"""The staff inbox: which conversations a person has handled or taken, and who wrote each staff
reply (its words stay in ``outgoing``, like every message sent).

An inbound reply needs a person while its conversation has not been handled past it, so a new
question after "handled" reopens the conversation by itself.

Revision ID: messenger_0005_inbox
Revises: messenger_0004_ehr
"""

import sqlalchemy as sa
from alembic import op

revision = "messenger_0005_inbox"
down_revision = "messenger_0004_ehr"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    op.create_table(
        "inbox_conversations",
        sa.Column("patient_key", sa.Text, primary_key=True),
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("assigned_to", sa.Text),  # an opaque staff id
        sa.Column("assigned_by", sa.Text),
        sa.Column("handled_through", sa.DateTime(timezone=True)),  # replies up to here are done
        sa.Column("handled_by", sa.Text),
        sa.Column("handled_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "staff_replies",
        sa.Column("message_id", sa.Text, primary_key=True),  # the row in outgoing
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=False),
        sa.Column("in_reply_to", sa.Text),  # the inbound message it answers
        sa.Column("author", sa.Text, nullable=False),  # the staff subject who wrote it
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("staff_replies_by_patient", "staff_replies", ["patient_key"], schema=S)
    # The inbox lists a clinic's recent replies; until now they were only read per patient.
    op.create_index("inbound_by_clinic", "inbound", ["clinic_id", "received_at"], schema=S)


def downgrade() -> None:
    op.drop_index("inbound_by_clinic", "inbound", schema=S)
    op.drop_table("staff_replies", schema=S)
    op.drop_table("inbox_conversations", schema=S)
