"""api: each instance's DICOM JSON in the catalogue, study- and series-level attributes and
counts kept for QIDO-RS

Revision ID: api_0003

Instances archived before keep ``attributes`` NULL and their ``metadata_key``: the api moves
their metadata from the archive into the catalogue as it starts (``CatalogueService.move_metadata``).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "api_0003"
down_revision = "api_0002"
S = "api"


def upgrade() -> None:
    for table in ("studies", "series"):
        op.add_column(
            table,
            sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
            schema=S,
        )
        op.add_column(
            table,
            sa.Column("instance_count", sa.Integer, nullable=False, server_default="0"),
            schema=S,
        )
    op.add_column(
        "studies",
        sa.Column("series_count", sa.Integer, nullable=False, server_default="0"),
        schema=S,
    )
    op.add_column(
        "studies",
        sa.Column("modalities", ARRAY(sa.String), nullable=False, server_default="{}"),
        schema=S,
    )
    op.add_column("instances", sa.Column("attributes", JSONB, nullable=True), schema=S)
    op.alter_column("instances", "metadata_key", server_default="", schema=S)
    op.execute(
        f"""UPDATE {S}.series s SET instance_count = c.n
        FROM (SELECT project, series_uid, count(*) AS n FROM {S}.instances
              GROUP BY project, series_uid) c
        WHERE s.project = c.project AND s.series_uid = c.series_uid"""
    )
    op.execute(
        f"""UPDATE {S}.studies s
        SET series_count = c.series, instance_count = c.instances, modalities = c.modalities
        FROM (SELECT project, study_uid, count(*) AS series, sum(instance_count) AS instances,
                     coalesce(array_agg(DISTINCT modality ORDER BY modality)
                              FILTER (WHERE modality <> ''), '{{}}') AS modalities
              FROM {S}.series GROUP BY project, study_uid) c
        WHERE s.project = c.project AND s.study_uid = c.study_uid"""
    )
    # QIDO's orders and scopes
    op.create_index("studies_by_date", "studies", ["project", "study_date", "study_uid"], schema=S)
    op.create_index(
        "series_by_study", "series", ["project", "study_uid", "number", "series_uid"], schema=S
    )
    op.create_index(
        "instances_by_series",
        "instances",
        ["project", "series_uid", "number", "sop_uid"],
        schema=S,
    )
    op.create_index("instances_unmoved", "instances", ["project"], schema=S,
                    postgresql_where=sa.text("attributes IS NULL"))


def downgrade() -> None:
    op.drop_index("instances_unmoved", "instances", schema=S)
    op.drop_index("instances_by_series", "instances", schema=S)
    op.drop_index("series_by_study", "series", schema=S)
    op.drop_index("studies_by_date", "studies", schema=S)
    op.drop_column("instances", "attributes", schema=S)
    for column in ("modalities", "series_count"):
        op.drop_column("studies", column, schema=S)
    for table in ("studies", "series"):
        op.drop_column(table, "instance_count", schema=S)
        op.drop_column(table, "attributes", schema=S)
