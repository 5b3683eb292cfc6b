"""ingest: what became of each accepted instance

Revision ID: ingest_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0002"
down_revision = "ingest_0001"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "upload_outcomes",
        sa.Column("upload_id", sa.String, primary_key=True),
        sa.Column("item", sa.String, primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("upload_outcomes", schema=S)
