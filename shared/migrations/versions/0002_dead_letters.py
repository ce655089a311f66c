"""What was done with each dead letter (replayed, purged), so a list shows what is left.

Kafka cannot delete one record from a topic; the dead-letter topics keep theirs for their
retention (30 days by default) and this ledger says which ones a person already handled.

Revision ID: platform_0002
Revises: platform_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0002"
down_revision = "platform_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters_handled",
        sa.Column("dlq_topic", sa.Text, nullable=False),
        sa.Column("dlq_partition", sa.Integer, nullable=False),
        sa.Column("dlq_offset", sa.BigInteger, nullable=False),
        sa.Column("action", sa.Text, nullable=False),  # replayed | purged
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("dlq_topic", "dlq_partition", "dlq_offset"),
        schema="platform",
    )


def downgrade() -> None:
    op.drop_table("dead_letters_handled", schema="platform")
