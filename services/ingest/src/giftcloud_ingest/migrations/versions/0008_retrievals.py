"""ingest: remote nodes and cohort retrievals (C-FIND, C-MOVE) with what each moved

Revision ID: ingest_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0008"
down_revision = "ingest_0007"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "remote_nodes",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("ae_title", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("max_concurrent", sa.Integer(), nullable=False, server_default="2"),
        sa.Column("updated_by", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "retrievals",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(), nullable=False, server_default=""),
        schema=S,
    )
    op.create_table(
        "retrieval_queries",
        sa.Column("retrieval_id", sa.String(), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("keys", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.String(), nullable=False, server_default=""),
        schema=S,
    )
    op.create_table(
        "retrieval_studies",
        sa.Column("retrieval_id", sa.String(), primary_key=True),
        sa.Column("study_uid", sa.String(), primary_key=True),
        sa.Column("query_index", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("warning", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(), nullable=False, server_default=""),
        schema=S,
    )
    op.create_index("ix_retrievals_project", "retrievals", ["project"], schema=S)
    op.create_index(
        "ix_retrieval_studies_study_uid", "retrieval_studies", ["study_uid"], schema=S
    )
    op.create_table(
        "retrieval_parts",
        sa.Column("retrieval_id", sa.String(), primary_key=True),
        sa.Column("sop_uid", sa.String(), primary_key=True),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("item", sa.String(), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "retrieval_parts",
        "retrieval_studies",
        "retrieval_queries",
        "retrievals",
        "remote_nodes",
    ):
        op.drop_table(table, schema=S)
