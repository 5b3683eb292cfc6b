"""anonymise: what a project's owners chose for its de-identification (options, burned-in
attestations with who and when), over the server's profile file or the default

Revision ID: anonymise_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0005"
down_revision = "anonymise_0004"
S = "anonymise"


def upgrade() -> None:
    op.create_table(
        "project_profiles",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("options", sa.Text, nullable=True),
        sa.Column("attested", sa.Text, nullable=False, server_default="{}"),
        sa.Column("updated_by", sa.String, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("project_profiles", schema=S)
