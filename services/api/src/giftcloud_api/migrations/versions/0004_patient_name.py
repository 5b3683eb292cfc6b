"""api: each study's patient name (upper case) in a column of its own, indexed for prefix
matching: QIDO's PatientName search without reading every study's JSON

Revision ID: api_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0004"
down_revision = "api_0003"
S = "api"


def upgrade() -> None:
    op.add_column(
        "studies",
        sa.Column("patient_name", sa.String, nullable=False, server_default=""),
        schema=S,
    )
    op.execute(
        f"""UPDATE {S}.studies
        SET patient_name = upper(coalesce(attributes #>> '{{00100010,Value,0,Alphabetic}}', ''))"""
    )
    op.execute(
        f"CREATE INDEX studies_by_patient_name ON {S}.studies"
        " (project, patient_name text_pattern_ops)"
    )


def downgrade() -> None:
    op.drop_index("studies_by_patient_name", "studies", schema=S)
    op.drop_column("studies", "patient_name", schema=S)
