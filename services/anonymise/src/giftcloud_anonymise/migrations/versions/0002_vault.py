"""anonymise: re-identification vault and its audit trail

Revision ID: anonymise_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "anonymise_0002"
down_revision = "anonymise_0001"
S = "anonymise"


def upgrade() -> None:
    op.create_table(
        "vault",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("subject", sa.String, primary_key=True),
        sa.Column("study_uid", sa.String, primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("vault_key_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "reidentification_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("project", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("correlation_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("reidentification_audit", schema=S)
    op.drop_table("vault", schema=S)
