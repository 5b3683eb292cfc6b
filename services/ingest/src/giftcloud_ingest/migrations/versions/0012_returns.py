"""ingest: results pulled back from the hub (the inbox), per project enabled or not, each to
be approved by a reidentifier and delivered to a hospital node (with renderings, if the node
wants them)

Revision ID: ingest_0012
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0012"
down_revision = "ingest_0011"
S = "ingest"
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "return_projects",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("since", WHEN, nullable=True),
        sa.Column("updated_by", sa.String, nullable=False, server_default=""),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("last_success_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("last_error_at", WHEN, nullable=True),
        schema=S,
    )
    op.create_table(
        "return_items",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("study_uid", sa.String, nullable=False, server_default=""),
        sa.Column("series_uid", sa.String, nullable=False, server_default=""),
        sa.Column("name", sa.String, nullable=False, server_default=""),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sha256", sa.String, nullable=False, server_default=""),
        sa.Column("object_key", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("prepared_key", sa.String, nullable=False, server_default=""),
        sa.Column("rendering_key", sa.String, nullable=False, server_default=""),
        sa.Column("destination", sa.String, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", WHEN, nullable=False),
        sa.Column("decided_by", sa.String, nullable=False, server_default=""),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        schema=S,
    )


    op.add_column(
        "remote_nodes",
        sa.Column("renderings", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("remote_nodes", "renderings", schema=S)
    op.drop_table("return_items", schema=S)
    op.drop_table("return_projects", schema=S)
