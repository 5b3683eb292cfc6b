"""ingest: when an upload last received something, so one whose process died while it was
receiving is marked interrupted (with what was acknowledged) rather than left receiving

Revision ID: ingest_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0010"
down_revision = "ingest_0009"
S = "ingest"


def upgrade() -> None:
    op.add_column(
        "uploads",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    op.create_index(
        "ix_uploads_receiving", "uploads", ["updated_at"], schema=S,
        postgresql_where=sa.text("state = 'receiving'"),
    )


def downgrade() -> None:
    op.drop_index("ix_uploads_receiving", "uploads", schema=S)
    op.drop_column("uploads", "updated_at", schema=S)
