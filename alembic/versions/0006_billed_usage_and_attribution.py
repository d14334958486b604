"""the Analytics API's hourly bill on usage rows, and usage attributed to actors and products

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billed_nanos", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("list_nanos", sa.BigInteger(), nullable=True))
    counts = [
        "uncached_input_tokens",
        "cache_creation_5m_tokens",
        "cache_creation_1h_tokens",
        "cache_read_tokens",
        "output_tokens",
        "web_search_requests",
    ]
    op.create_table(
        "attributed_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bucket_width", _string(2), nullable=False),
        sa.Column("actor", _string(300), nullable=False),
        sa.Column("actor_type", _string(50), nullable=False),
        sa.Column("product", _string(100), nullable=False),
        sa.Column("model", _string(200), nullable=False),
        sa.Column("service_tier", _string(50), nullable=False),
        sa.Column("context_window", _string(50), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in counts),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("billed_nanos", sa.BigInteger(), nullable=True),
        sa.Column("list_nanos", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "bucket_start",
            "bucket_width",
            "actor",
            "product",
            "model",
            "service_tier",
            "context_window",
            name="uq_attributed_usage_natural_key",
        ),
    )
    op.create_index(
        "ix_attributed_usage_width_start", "attributed_usage", ["bucket_width", "bucket_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_attributed_usage_width_start", table_name="attributed_usage")
    op.drop_table("attributed_usage")
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_column("list_nanos")
        batch_op.drop_column("billed_nanos")
