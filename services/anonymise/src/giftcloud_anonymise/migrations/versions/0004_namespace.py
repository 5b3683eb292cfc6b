"""anonymise: each de-identification records the patient namespace it keyed the subject in

Revision ID: anonymise_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0004"
down_revision = "anonymise_0003"
S = "anonymise"


def upgrade() -> None:
    op.add_column(
        "deidentifications",
        sa.Column("namespace", sa.String, nullable=False, server_default=""),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("deidentifications", "namespace", schema=S)
