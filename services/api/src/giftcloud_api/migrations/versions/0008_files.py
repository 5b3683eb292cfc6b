"""api: files that are not DICOM attached to a project, subject, study or series, with their
provenance (inputs, tool and version, who and when) and checksum

Revision ID: api_0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "api_0008"
down_revision = "api_0007"
S = "api"


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("subject", sa.String, nullable=False, server_default=""),
        sa.Column("study_uid", sa.String, nullable=False, server_default=""),
        sa.Column("series_uid", sa.String, nullable=False, server_default=""),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("media_type", sa.String, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String, nullable=False),
        sa.Column("object_key", sa.String, nullable=False),
        sa.Column("inputs", ARRAY(sa.String), nullable=False, server_default="{}"),
        sa.Column("tool", sa.String, nullable=False, server_default=""),
        sa.Column("tool_version", sa.String, nullable=False, server_default=""),
        sa.Column("description", sa.String, nullable=False, server_default=""),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("files_by_study", "files", ["project", "study_uid"], schema=S)


def downgrade() -> None:
    op.drop_table("files", schema=S)
