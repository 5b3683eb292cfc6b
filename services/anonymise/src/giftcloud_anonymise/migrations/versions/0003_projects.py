"""anonymise: the projects it serves re-identification for, and their networks

Revision ID: anonymise_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0003"
down_revision = "anonymise_0002"
S = "anonymise"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("networks", sa.String, nullable=False, server_default=""),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("projects", schema=S)
