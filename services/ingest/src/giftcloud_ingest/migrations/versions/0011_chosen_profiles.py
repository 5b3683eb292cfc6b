"""ingest: each project's de-identification choices, as anonymise announces them, so a file
is admitted on arrival by the profile anonymise will apply

Revision ID: ingest_0011
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0011"
down_revision = "ingest_0010"
S = "ingest"


def upgrade() -> None:
    op.create_table(
        "chosen_profiles",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("choices", sa.Text, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("chosen_profiles", schema=S)
