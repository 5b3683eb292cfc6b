"""api: Flower runs started through the hub's api, the hub's runner, and the SuperNode keys
it registers

Revision ID: api_0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "api_0013"
down_revision = "api_0012"
S = "api"


def upgrade() -> None:
    op.create_table(
        "federation_flower_runner",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("client_id", sa.String, nullable=False),
        sa.Column("registered_by", sa.String, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True)),
        sa.Column("projects", JSONB, nullable=False, server_default="[]"),
        sa.Column("apps", JSONB, nullable=False, server_default="[]"),
        schema=S,
    )
    op.create_table(
        "federation_flower_runs",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("app", sa.String, nullable=False),
        sa.Column("config", JSONB, nullable=False, server_default="{}"),
        sa.Column("asked_by", sa.String, nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("flower_run", sa.String),
        sa.Column("result", JSONB),
        sa.Column("cancel", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_table(
        "federation_flower_nodes",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("public_key", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("node_id", sa.String),
        sa.Column("asked_by", sa.String, nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("federation_flower_nodes", schema=S)
    op.drop_table("federation_flower_runs", schema=S)
    op.drop_table("federation_flower_runner", schema=S)
