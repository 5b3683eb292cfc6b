"""anonymise: de-identification log

Revision ID: anonymise_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0001"
down_revision = None
S = "anonymise"


def upgrade() -> None:
    op.create_table(
        "deidentifications",
        sa.Column("object_key", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("sop_uid", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("key_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("deidentifications", schema=S)
