"""api: federation -- at a hub the sites, questions and each site's part; at a site its
disclosure policy and every answer it gave

Revision ID: api_0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "api_0009"
down_revision = "api_0008"
S = "api"
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "federation_sites",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("client_id", sa.String, nullable=False, unique=True),
        sa.Column("capabilities", ARRAY(sa.String), nullable=False, server_default="{}"),
        sa.Column("registered_by", sa.String, nullable=False),
        sa.Column("registered_at", WHEN, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.String, nullable=False, server_default=""),
        sa.Column("policy", JSONB, nullable=False, server_default="{}"),
        schema=S,
    )
    op.create_table(
        "federation_questions",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("question", JSONB, nullable=False),
        sa.Column("asked_by", sa.String, nullable=False),
        sa.Column("asked_at", WHEN, nullable=False),
        schema=S,
    )
    op.create_table(
        "federation_parts",
        sa.Column("question", sa.String, primary_key=True),
        sa.Column("site", sa.String, primary_key=True),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("answer", JSONB, nullable=False, server_default="{}"),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("fetched_at", WHEN, nullable=True),
        sa.Column("answered_at", WHEN, nullable=True),
        schema=S,
    )
    op.create_index("federation_parts_pending", "federation_parts", ["site", "state"], schema=S)
    op.create_table(
        "federation_policy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("noise", sa.String, nullable=False),
        sa.Column("budget", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("k >= 5", name="federation_k_floor"),
        schema=S,
    )
    op.create_table(
        "federation_answers",
        sa.Column("question", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("asked_by", sa.String, nullable=False),
        sa.Column("digest", sa.String, nullable=False),
        sa.Column("raw_digest", sa.String, nullable=False, server_default=""),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("raw", JSONB, nullable=False, server_default="{}"),
        sa.Column("released", JSONB, nullable=False, server_default="{}"),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("epsilon", sa.Float, nullable=False, server_default="0"),
        sa.Column("answered_at", WHEN, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.create_index(
        "federation_answers_same",
        "federation_answers",
        ["project", "digest", "raw_digest"],
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "federation_answers",
        "federation_policy",
        "federation_parts",
        "federation_questions",
        "federation_sites",
    ):
        op.drop_table(table, schema=S)
