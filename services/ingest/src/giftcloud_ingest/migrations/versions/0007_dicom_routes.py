"""ingest: the DICOM node's routes, a called AE title per project with who may send

Revision ID: ingest_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0007"
down_revision = "ingest_0006"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "dicom_routes",
        sa.Column("project", sa.String(), primary_key=True),
        sa.Column("ae_title", sa.String(), nullable=False, unique=True),
        sa.Column("calling_ae_titles", sa.String(), nullable=False, server_default=""),
        sa.Column("networks", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_by", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("dicom_routes", schema=S)
