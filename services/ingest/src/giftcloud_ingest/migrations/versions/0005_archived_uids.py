"""ingest: where each archived instance of an upload now is (its de-identified UIDs), so a
STOW-RS RetrieveURL can lead to it

Revision ID: ingest_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0005"
down_revision = "ingest_0004"
S = "ingest"


def upgrade() -> None:
    for column in ("study_uid", "series_uid", "sop_uid"):
        op.add_column(
            "upload_outcomes",
            sa.Column(column, sa.String(64), nullable=False, server_default=""),
            schema=S,
        )


def downgrade() -> None:
    for column in ("study_uid", "series_uid", "sop_uid"):
        op.drop_column("upload_outcomes", column, schema=S)
