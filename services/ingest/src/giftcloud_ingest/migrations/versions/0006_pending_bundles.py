"""ingest: bundles being stored and announced, so one whose process died in between is
swept away rather than left in incoming

Revision ID: ingest_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0006"
down_revision = "ingest_0005"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "pending_bundles",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index(
        "ix_pending_bundles_created_at", "pending_bundles", ["created_at"], schema=S
    )


def downgrade() -> None:
    op.drop_table("pending_bundles", schema=S)
