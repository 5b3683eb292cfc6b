"""api: analysis jobs -- at a hub the jobs and each site's part (a standing job's released
outputs too); at a site the approved algorithms and every job it took

Revision ID: api_0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "api_0010"
down_revision = "api_0009"
S = "api"
WHEN = sa.DateTime(timezone=True)


def _json(name: str, empty: str = "{}") -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, JSONB, nullable=False, server_default=empty)


def upgrade() -> None:
    op.create_table(
        "federation_jobs",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("algorithm", sa.String, nullable=False),
        sa.Column("digest", sa.String, nullable=False, server_default=""),
        _json("criteria", "[]"),
        sa.Column("question", sa.String, nullable=False, server_default=""),
        _json("parameters"),
        sa.Column("submitted_by", sa.String, nullable=False),
        sa.Column("submitted_at", WHEN, nullable=False),
        sa.Column("standing", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.create_table(
        "federation_job_parts",
        sa.Column("job", sa.String, primary_key=True),
        sa.Column("site", sa.String, primary_key=True),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        _json("output"),
        _json("released", "[]"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("run", sa.Integer, nullable=False, server_default="1"),
        sa.Column("as_of", WHEN, nullable=True),
        sa.Column("fetched_at", WHEN, nullable=True),
        sa.Column("cancel", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", WHEN, nullable=False),
        schema=S,
    )
    op.create_index(
        "federation_job_parts_waiting", "federation_job_parts", ["site", "state"], schema=S
    )
    op.create_table(
        "federation_algorithms",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("digest", sa.String, nullable=False),
        sa.Column("approved_by", sa.String, nullable=False),
        sa.Column("approved_at", WHEN, nullable=False),
        schema=S,
    )
    op.create_table(
        "federation_site_jobs",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("project", sa.String, nullable=False, index=True),
        sa.Column("algorithm", sa.String, nullable=False),
        sa.Column("digest", sa.String, nullable=False, server_default=""),
        _json("criteria", "[]"),
        sa.Column("question", sa.String, nullable=False, server_default=""),
        _json("parameters"),
        sa.Column("submitted_by", sa.String, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("standing", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run", sa.Integer, nullable=False, server_default="1"),
        sa.Column("seen_until", WHEN, nullable=True),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False, server_default=""),
        sa.Column("series", sa.Integer, nullable=False, server_default="0"),
        _json("output"),
        _json("released"),
        sa.Column("decided_by", sa.String, nullable=False, server_default=""),
        sa.Column("cancel", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("reported", sa.String, nullable=False, server_default=""),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        schema=S,
    )
    op.create_index("federation_site_jobs_state", "federation_site_jobs", ["state"], schema=S)
    # the series a count chose, kept at the site: a job may run on them by the question's id
    op.add_column("federation_answers", _json("series", "[]"), schema=S)


def downgrade() -> None:
    op.drop_column("federation_answers", "series", schema=S)
    for table in (
        "federation_site_jobs",
        "federation_algorithms",
        "federation_job_parts",
        "federation_jobs",
    ):
        op.drop_table(table, schema=S)
