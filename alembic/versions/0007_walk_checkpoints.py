"""the balance walk's checkpoints and the changes that make them stale

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "walk_checkpoint",
        sa.Column("bucket_width", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket_width", "at"),
    )
    op.create_table(
        "walk_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("walk_change")
    op.drop_table("walk_checkpoint")
