"""anonymise: the original UIDs of each study's instances, sealed, so results from a hub map
back to the hospital's originals

Revision ID: anonymise_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0006"
down_revision = "anonymise_0005"
S = "anonymise"


def upgrade() -> None:
    op.create_table(
        "vault_uids",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("study_uid", sa.String, nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("vault_key_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index(
        "vault_uids_subject", "vault_uids", ["project", "subject", "study_uid"], schema=S
    )


def downgrade() -> None:
    op.drop_table("vault_uids", schema=S)
