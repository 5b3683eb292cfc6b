"""api: every instance's DICOM JSON is in the catalogue; the sidecar objects of the first
archives (moved in by api_0003's release as it started) are no longer read, and the column
that named them goes. An instance still waiting to be moved stops the upgrade, saying so.

Revision ID: api_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0006"
down_revision = "api_0005"
S = "api"


def upgrade() -> None:
    waiting = op.get_bind().execute(
        sa.text(
            f"SELECT count(*) FROM {S}.instances"  # noqa: S608
            " WHERE attributes IS NULL AND metadata_key <> ''"
        )
    )
    count = waiting.scalar_one()
    if count:
        raise RuntimeError(
            f"{count} instance(s) still have their metadata beside them in the archive: start"
            " the previous release once (it moves the metadata into the catalogue), then upgrade"
        )
    op.execute(f"UPDATE {S}.instances SET attributes = '{{}}'::jsonb WHERE attributes IS NULL")
    op.alter_column("instances", "attributes", nullable=False, schema=S)
    op.drop_index("instances_unmoved", "instances", schema=S)
    op.drop_column("instances", "metadata_key", schema=S)


def downgrade() -> None:
    op.add_column(
        "instances",
        sa.Column("metadata_key", sa.String, nullable=False, server_default=""),
        schema=S,
    )
    op.create_index("instances_unmoved", "instances", ["project"], schema=S,
                    postgresql_where=sa.text("attributes IS NULL"))  # fmt: skip
    op.alter_column("instances", "attributes", nullable=True, schema=S)
