"""Opt-outs that outlive an erasure: a patient erased after saying STOP stays opted out if the
EHR sends their record again. Kept under a hash of the patient_key, with nothing else of theirs.

Revision ID: messenger_0012_erased_opt_outs
Revises: messenger_0011_template_ids
"""

import sqlalchemy as sa
from alembic import op

revision = "messenger_0012_erased_opt_outs"
down_revision = "messenger_0011_template_ids"
branch_labels = None
depends_on = None
S = "messenger"


def upgrade() -> None:
    op.create_table(
        "erased_opt_outs",
        sa.Column("key_hash", sa.Text, primary_key=True),  # hex sha256 of the patient_key
        sa.Column("clinic_id", sa.Text, nullable=False),
        sa.Column("opted_out_sms", sa.Boolean, nullable=False),
        sa.Column("opted_out_email", sa.Boolean, nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("erased_opt_outs", schema=S)
