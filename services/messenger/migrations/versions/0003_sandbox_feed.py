"""The sandbox as a feed: an insertion order and the (controlled) clock's time of each message.

The simulator's patients read every new message of their practice in order (``seq``), and the
end-to-end tests check quiet hours against ``sent_at``: the service clock's "now" when the
message was handed to the sandbox, not the database's wall-clock ``created_at``.

Revision ID: messenger_0003
Revises: messenger_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "messenger_0003"
down_revision = "messenger_0002"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    op.add_column(
        "sandbox_messages",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        schema=S,
    )
    op.add_column("sandbox_messages", sa.Column("sent_at", sa.DateTime(timezone=True)), schema=S)
    op.create_index("sandbox_by_clinic_seq", "sandbox_messages", ["clinic_id", "seq"], schema=S)


def downgrade() -> None:
    op.drop_index("sandbox_by_clinic_seq", "sandbox_messages", schema=S)
    op.drop_column("sandbox_messages", "sent_at", schema=S)
    op.drop_column("sandbox_messages", "seq", schema=S)
