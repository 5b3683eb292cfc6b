"""ingest: known projects, uploads

Revision ID: ingest_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = None
S = "ingest"


def upgrade() -> None:
    op.create_table("projects", sa.Column("name", sa.String, primary_key=True), schema=S)
    op.create_table(
        "uploads",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("uploads", schema=S)
    op.drop_table("projects", schema=S)
