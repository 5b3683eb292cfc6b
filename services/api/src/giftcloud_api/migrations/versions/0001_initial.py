"""api: the catalogue (project, subject, study, series, instance)

Revision ID: api_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0001"
down_revision = None
S = "api"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("title", sa.String, nullable=False),
        schema=S,
    )
    op.create_table(
        "subjects",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("label", sa.String, primary_key=True),
        schema=S,
    )
    op.create_table(
        "studies",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("study_uid", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String, nullable=False, index=True),
        sa.Column("study_date", sa.String, nullable=False),
        sa.Column("description", sa.String, nullable=False),
        schema=S,
    )
    op.create_table(
        "series",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("series_uid", sa.String(64), primary_key=True),
        sa.Column("study_uid", sa.String(64), nullable=False, index=True),
        sa.Column("modality", sa.String, nullable=False),
        sa.Column("description", sa.String, nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        schema=S,
    )
    op.create_table(
        "instances",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("sop_uid", sa.String(64), primary_key=True),
        sa.Column("series_uid", sa.String(64), nullable=False, index=True),
        sa.Column("study_uid", sa.String(64), nullable=False, index=True),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("object_key", sa.String, nullable=False),
        sa.Column("metadata_key", sa.String, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(64), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in ("instances", "series", "studies", "subjects", "projects"):
        op.drop_table(table, schema=S)
