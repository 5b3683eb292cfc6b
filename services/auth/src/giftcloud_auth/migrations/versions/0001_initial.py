"""auth: users, projects, memberships, signing keys

Revision ID: auth_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = None
S = "auth"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True, index=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("site_roles", sa.String, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("title", sa.String, nullable=False, server_default=""),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "memberships",
        sa.Column("project", sa.String(64), sa.ForeignKey(f"{S}.projects.name"), primary_key=True),
        sa.Column("username", sa.String(128), sa.ForeignKey(f"{S}.users.username"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        schema=S,
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String, primary_key=True),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in ("memberships", "projects", "users", "signing_keys"):
        op.drop_table(table, schema=S)
