"""ingest: the networks each project's data may be reached from (from auth's events)

Revision ID: ingest_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0004"
down_revision = "ingest_0003"
S = "ingest"


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("networks", sa.String, nullable=False, server_default=""), schema=S
    )


def downgrade() -> None:
    op.drop_column("projects", "networks", schema=S)
