"""Template ids drawn at random (52 bits, within a JSON number's exact range) instead of from a
sequence, so one clinic's ids say nothing about another's (how many, or which come next).

Revision ID: messenger_0011_template_ids
Revises: messenger_0010_reply_readings
"""

from alembic import op

revision = "messenger_0011_template_ids"
down_revision = "messenger_0010_reply_readings"
branch_labels = None
depends_on = None

RANDOM_52_BITS = (
    "('x' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 13))::bit(52)::bigint + 1"
)


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE messenger.templates ALTER COLUMN template_id SET DEFAULT ({RANDOM_52_BITS})"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE messenger.templates ALTER COLUMN template_id "
        "SET DEFAULT nextval('messenger.templates_template_id_seq'::regclass)"
    )
