"""auth: account states, SSO identities, refresh tokens, machine credentials, one-time
links, sign-in failures, per-project networks, signing-key rotation

Revision ID: auth_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0004"
down_revision = "auth_0003"
S = "auth"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String, nullable=False, server_default=""), schema=S)
    op.add_column(
        "users", sa.Column("disabled", sa.Boolean, nullable=False, server_default="false"), schema=S
    )
    op.add_column("users", sa.Column("oidc_issuer", sa.String, nullable=False, server_default=""), schema=S)
    op.add_column("users", sa.Column("oidc_subject", sa.String, nullable=False, server_default=""), schema=S)
    op.add_column(
        "users",
        sa.Column("password_changed_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.execute(
        f"CREATE UNIQUE INDEX users_oidc_identity ON {S}.users (oidc_issuer, oidc_subject)"
        " WHERE oidc_subject <> ''"
    )
    op.add_column("projects", sa.Column("networks", sa.String, nullable=True), schema=S)
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
        schema=S,
    )
    op.add_column(
        "signing_keys", sa.Column("activates_at", TS, nullable=False, server_default=sa.func.now()), schema=S
    )
    op.add_column("signing_keys", sa.Column("retires_at", TS, nullable=True), schema=S)
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column("family", sa.String, nullable=False, index=True),
        sa.Column("username", sa.String, nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        schema=S,
    )
    op.create_table(
        "clients",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("secret_hash", sa.String, nullable=False),
        sa.Column("created_by", sa.String, nullable=False, index=True),
        sa.Column("networks", sa.String, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        schema=S,
    )
    op.create_table(
        "client_grants",
        sa.Column("client_id", sa.String, sa.ForeignKey(f"{S}.clients.id"), primary_key=True),
        sa.Column("project", sa.String(64), sa.ForeignKey(f"{S}.projects.name"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        schema=S,
    )
    op.create_table(
        "one_time_links",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("username", sa.String, nullable=False, server_default=""),
        sa.Column("project", sa.String, nullable=False, server_default=""),
        sa.Column("role", sa.String, nullable=False, server_default=""),
        sa.Column("site_roles", sa.String, nullable=False, server_default=""),
        sa.Column("email", sa.String, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        schema=S,
    )
    op.create_table(
        "oidc_requests",
        sa.Column("state_hash", sa.String, primary_key=True),
        sa.Column("verifier", sa.String, nullable=False),
        sa.Column("nonce", sa.String, nullable=False),
        sa.Column("next_path", sa.String, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "revocations",
        sa.Column("subject", sa.String, primary_key=True),
        sa.Column("revoked_before", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        schema=S,
    )


def downgrade() -> None:
    for table in ("oidc_requests", "revocations", "sign_in_failures", "one_time_links", "client_grants", "clients", "refresh_tokens", "site_settings"):
        op.drop_table(table, schema=S)
    op.drop_column("signing_keys", "retires_at", schema=S)
    op.drop_column("signing_keys", "activates_at", schema=S)
    op.drop_column("projects", "networks", schema=S)
    op.execute(f"DROP INDEX {S}.users_oidc_identity")
    for column in ("password_changed_at", "oidc_subject", "oidc_issuer", "disabled", "email"):
        op.drop_column("users", column, schema=S)
