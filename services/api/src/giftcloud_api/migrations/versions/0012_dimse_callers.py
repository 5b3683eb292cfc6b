"""api: the AE titles registered for DICOM query/retrieve, with their owner's sealed API key

Revision ID: api_0012
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0012"
down_revision = "api_0011"
S = "api"


def upgrade() -> None:
    op.create_table(
        "dimse_callers",
        sa.Column("ae_title", sa.String(16), primary_key=True),
        sa.Column("username", sa.String, nullable=False, index=True),
        sa.Column("host", sa.String, nullable=False),
        sa.Column("port", sa.Integer, nullable=True),
        sa.Column("key_sealed", sa.LargeBinary, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("dimse_callers", schema=S)
