"""api: the Flower apps a site's admin approved, by the SHA-256 of the bundle

Revision ID: api_0011
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0011"
down_revision = "api_0010"
S = "api"


def upgrade() -> None:
    op.create_table(
        "federation_flower_apps",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("approved_by", sa.String, nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("federation_flower_apps", schema=S)
