"""ingest: forwarding to a hub, an outbox of archived instances per project

Revision ID: ingest_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0009"
down_revision = "ingest_0008"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "forward_projects",
        sa.Column("project", sa.String(), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_by", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=False, server_default=""),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        schema=S,
    )
    op.create_table(
        "forward_outbox",
        sa.Column("project", sa.String(), primary_key=True),
        sa.Column("sop_uid", sa.String(), primary_key=True),
        sa.Column("object_key", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_forward_outbox_next_at", "forward_outbox", ["next_at"], schema=S)


def downgrade() -> None:
    op.drop_table("forward_outbox", schema=S)
    op.drop_table("forward_projects", schema=S)
