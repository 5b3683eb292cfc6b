"""api: for the web pages: studies in the order they are listed (subject, date), so a
page of a project's studies is read from an index however many it holds; instances by
arrival (instances per minute); what waits in quarantine, with the reason

Revision ID: api_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0005"
down_revision = "api_0004"
S = "api"


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX studies_by_subject_date ON {S}.studies"
        " (project, subject, study_date, study_uid)"
    )
    op.create_index("instances_by_arrival", "instances", ["archived_at"], schema=S)
    op.create_table(
        "quarantined",
        sa.Column("project", sa.String, primary_key=True),
        sa.Column("object_key", sa.String, primary_key=True),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("upload", sa.String, nullable=False, server_default=""),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("quarantined_by_time", "quarantined", ["occurred_at"], schema=S)


def downgrade() -> None:
    op.drop_table("quarantined", schema=S)
    op.drop_index("instances_by_arrival", "instances", schema=S)
    op.drop_index("studies_by_subject_date", "studies", schema=S)
