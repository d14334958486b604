"""collection start and stored settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_setting",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("collection_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "collected_from", service.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    # Databases collected before this column existed started at their earliest stored bucket.
    op.execute(
        "UPDATE collection_state SET collected_from = (SELECT MIN(bucket_start) FROM usage "
        "WHERE usage.bucket_width = collection_state.bucket_width)"
    )


def downgrade() -> None:
    with op.batch_alter_table("collection_state", schema=None) as batch_op:
        batch_op.drop_column("collected_from")
    op.drop_table("stored_setting")
