"""api: project networks, and the access audit (append-only: rows cannot change or go)

Revision ID: api_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0002"
down_revision = "api_0001"
S = "api"


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("networks", sa.String, nullable=False, server_default=""), schema=S
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project", sa.String, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.String, nullable=False),
        schema=S,
    )
    op.create_index("audit_project_time", "audit", ["project", "occurred_at"], schema=S)
    op.execute(
        f"""CREATE FUNCTION {S}.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP;
        END $$"""
    )
    op.execute(
        f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {S}.audit"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {S}.audit_is_append_only()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER audit_append_only ON {S}.audit")
    op.execute(f"DROP FUNCTION {S}.audit_is_append_only()")
    op.drop_table("audit", schema=S)
    op.drop_column("projects", "networks", schema=S)
