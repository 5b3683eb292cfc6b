"""api: the ledger of learning's privacy budget at a site (per person and project), and
the one API key the site's Flower gate reports with

Revision ID: api_0014
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0014"
down_revision = "api_0013"
S = "api"


def upgrade() -> None:
    op.create_table(
        "federation_flower_spends",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("asked_by", sa.String, nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("hub_run", sa.String, nullable=False, server_default=""),
        sa.Column("run", sa.String, nullable=False, server_default=""),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "federation_flower_gate",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("client_id", sa.String, nullable=False),
        sa.Column("registered_by", sa.String, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("federation_flower_gate", schema=S)
    op.drop_table("federation_flower_spends", schema=S)
