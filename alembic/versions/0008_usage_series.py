"""usage rows keyed by a series id: the grouping strings stored once in usage_series

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:00:00

Every existing row keeps its id, counts, costs and times; its grouping moves to the series of
the same six strings. Downgrade puts the strings back on each row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grouping as this revision knows it (a snapshot: later code may name it differently).
GROUPING = (
    ("model", 200),
    ("api_key_id", 200),
    ("workspace_id", 200),
    ("service_tier", 50),
    ("context_window", 50),
    ("inference_geo", 50),
)
NAMES = [name for name, _ in GROUPING]
OLD_KEY = ["bucket_start", "bucket_width", *NAMES]


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _same_grouping(series: str, usage: str) -> str:
    return " AND ".join(f"{series}.{name} = {usage}.{name}" for name in NAMES)


def upgrade() -> None:
    op.create_table(
        "usage_series",
        sa.Column("id", sa.Integer(), nullable=False),
        *(sa.Column(name, _string(length), nullable=False) for name, length in GROUPING),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "api_key_id",
            "model",
            "workspace_id",
            "service_tier",
            "context_window",
            "inference_geo",
            name="uq_usage_series_grouping",
        ),
    )
    columns = ", ".join(NAMES)
    op.execute(
        f"INSERT INTO usage_series ({columns}) "  # noqa: S608 - this revision's column names
        f"SELECT DISTINCT {columns} FROM usage"
    )
    op.add_column("usage", sa.Column("series_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE usage SET series_id = (SELECT s.id FROM usage_series AS s "  # noqa: S608
        f"WHERE {_same_grouping('s', 'usage')})"
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_constraint("uq_usage_natural_key", type_="unique")
        batch_op.drop_index("ix_usage_width_start")
        for name in NAMES:
            batch_op.drop_column(name)
        batch_op.alter_column("series_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            "uq_usage_natural_key", ["bucket_width", "bucket_start", "series_id"]
        )


def downgrade() -> None:
    columns = ", ".join(NAMES)
    with op.batch_alter_table("usage", schema=None) as batch_op:
        for name, length in GROUPING:
            batch_op.add_column(sa.Column(name, _string(length), nullable=False, server_default=""))
    # One pass that sets all six (a row value), not six passes over the table.
    op.execute(
        f"UPDATE usage SET ({columns}) = "  # noqa: S608 - names are this revision's columns
        f"(SELECT {columns} FROM usage_series AS s WHERE s.id = usage.series_id)"
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_constraint("uq_usage_natural_key", type_="unique")
        batch_op.drop_column("series_id")
        for name, length in GROUPING:
            batch_op.alter_column(
                name, existing_type=_string(length), existing_nullable=False, server_default=None
            )
        batch_op.create_unique_constraint("uq_usage_natural_key", OLD_KEY)
        batch_op.create_index("ix_usage_width_start", ["bucket_width", "bucket_start"])
    op.drop_table("usage_series")
