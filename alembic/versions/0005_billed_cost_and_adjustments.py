"""billed cost (the cost report per day) and reconcile's adjustments

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billed_cost",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("cost_type", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("token_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("service_tier", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("context_window", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("inference_geo", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "day",
            "workspace_id",
            "description",
            "cost_type",
            "model",
            "token_type",
            "service_tier",
            "context_window",
            "inference_geo",
            name="uq_billed_cost_natural_key",
        ),
    )
    with op.batch_alter_table("billed_cost", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billed_cost_day"), ["day"])
    op.create_table(
        "bill_adjustment",
        sa.Column("day", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("billed_nanos", sa.BigInteger(), nullable=False),
        sa.Column("estimated_nanos", sa.BigInteger(), nullable=False),
        sa.Column("priority_nanos", sa.BigInteger(), nullable=False),
        sa.Column("adjusted_nanos", sa.BigInteger(), nullable=False),
        sa.Column("breakdown", sa.Text(), nullable=False),
        sa.Column("checked_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "workspace_id"),
    )


def downgrade() -> None:
    op.drop_table("bill_adjustment")
    with op.batch_alter_table("billed_cost", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billed_cost_day"))
    op.drop_table("billed_cost")
