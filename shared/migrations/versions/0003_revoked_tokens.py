"""Staff tokens revoked before their expiry, by ``jti``; every service refuses them.

A row is only needed until the token would have expired anyway (``expires_at``); after that the
token is refused for its age and the row can go.

Revision ID: platform_0003
Revises: platform_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0003"
down_revision = "platform_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "revoked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema="platform",
    )
    op.create_index("revoked_tokens_expiry", "revoked_tokens", ["expires_at"], schema="platform")


def downgrade() -> None:
    op.drop_table("revoked_tokens", schema="platform")
