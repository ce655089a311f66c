"""Marketing consent per channel, the patient's address state, and each queued step's send
window (its clinic's outreach policy, zone and state, for the check at the moment of sending).
Additive: the old single marketing flag seeds both channels; old queued rows use the default.

Revision ID: messenger_0008_words_and_policy
Revises: messenger_0007_held_steps
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "messenger_0008_words_and_policy"
down_revision = "messenger_0007_held_steps"
branch_labels = None
depends_on = None
S = "messenger"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for channel in ("sms", "email"):
        op.add_column(
            "contacts",
            sa.Column(
                f"marketing_{channel}", sa.Boolean, nullable=False, server_default=sa.false()
            ),
            schema=S,
        )
        op.add_column("contacts", sa.Column(f"marketing_{channel}_at", TS), schema=S)
    op.execute(
        f"UPDATE {S}.contacts SET marketing_sms = marketing_consent, "
        "marketing_email = marketing_consent, marketing_sms_at = marketing_consent_at, "
        "marketing_email_at = marketing_consent_at"
    )
    op.add_column("contacts", sa.Column("home_state", sa.Text), schema=S)
    op.add_column("outgoing", sa.Column("send_window", pg.JSONB), schema=S)


def downgrade() -> None:
    op.drop_column("outgoing", "send_window", schema=S)
    op.drop_column("contacts", "home_state", schema=S)
    for channel in ("sms", "email"):
        op.drop_column("contacts", f"marketing_{channel}_at", schema=S)
        op.drop_column("contacts", f"marketing_{channel}", schema=S)
