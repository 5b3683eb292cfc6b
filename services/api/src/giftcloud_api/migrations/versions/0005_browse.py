"""api: studies in the order the web pages list them (subject, date), so a page of a
project's studies is read from an index however many it holds

Revision ID: api_0005
"""

from alembic import op

revision = "api_0005"
down_revision = "api_0004"
S = "api"


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX studies_by_subject_date ON {S}.studies"
        " (project, subject, study_date, study_uid)"
    )


def downgrade() -> None:
    op.drop_index("studies_by_subject_date", "studies", schema=S)
