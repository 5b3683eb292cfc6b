"""auth: usernames are case-insensitive (admin, Admin and ADMIN are one account)

Revision ID: auth_0003
"""

from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
S = "auth"


def upgrade() -> None:
    op.execute(f"CREATE UNIQUE INDEX users_username_folded ON {S}.users (lower(username))")


def downgrade() -> None:
    op.execute(f"DROP INDEX {S}.users_username_folded")
