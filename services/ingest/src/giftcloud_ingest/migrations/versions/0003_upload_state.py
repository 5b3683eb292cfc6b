"""ingest: an upload's state (receiving until its last file is in), counted as it goes

Revision ID: ingest_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0003"
down_revision = "ingest_0002"
S = "ingest"


def upgrade() -> None:
    op.add_column(
        "uploads",
        sa.Column("state", sa.String, nullable=False, server_default="received"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("uploads", "state", schema=S)
