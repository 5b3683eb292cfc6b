"""api: results and what they derive from — each derived instance (a segmentation, a
structured report...) linked to every source instance it names, all of them the project's

Revision ID: api_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0007"
down_revision = "api_0006"
S = "api"


def upgrade() -> None:
    op.create_table(
        "derivations",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("sop_uid", sa.String, primary_key=True),
        sa.Column("source_sop_uid", sa.String, primary_key=True),
        sa.Column("source_series_uid", sa.String, nullable=False, server_default=""),
        sa.Column("kind", sa.String, nullable=False),
        schema=S,
    )
    op.create_index(
        "derivations_by_source_series", "derivations", ["project", "source_series_uid"], schema=S
    )


def downgrade() -> None:
    op.drop_table("derivations", schema=S)
