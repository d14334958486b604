"""alert records (the dedup memory), the notification outbox and its delivery attempts, the
newest bucket seen

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_id", sa.String(length=1000), nullable=False),
        sa.Column("identity_key", sa.String(length=1000), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("threshold", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=1000), nullable=True),
        sa.Column("threshold_rank", sa.BigInteger(), nullable=True),
        sa.Column("persistent", sa.Boolean(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False),
        sa.Column("rule_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("opened_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_notified_at", service.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("resolved_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_id"),
    )
    with op.batch_alter_table("alert_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_record_identity_key"), ["identity_key"])
        batch_op.create_index(batch_op.f("ix_alert_record_rule"), ["rule"])
        batch_op.create_index(batch_op.f("ix_alert_record_group_key"), ["group_key"])
    # The outbox of 0001 was never written (no rule produced alerts before this revision).
    op.drop_table("alert_outbox")
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("dedup_id", sa.String(length=1000), nullable=False),
        sa.Column("message_id", sa.String(length=1100), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column(
            "first_attempt_at", service.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("sent_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("failure", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["alert_record.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "channel", name="uq_outbox_message_channel"),
    )
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_outbox_record_id"), ["record_id"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_dedup_id"), ["dedup_id"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_message_id"), ["message_id"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_rule"), ["rule"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_state"), ["state"])
        batch_op.create_index(batch_op.f("ix_alert_outbox_channel"), ["channel"])
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("started_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["alert_outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_attempt_outbox_id"), ["outbox_id"])
        batch_op.create_index(batch_op.f("ix_delivery_attempt_channel"), ["channel"])
    with op.batch_alter_table("collection_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "newest_bucket_start",
                service.store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("collection_state", schema=None) as batch_op:
        batch_op.drop_column("newest_bucket_start")
    op.drop_table("delivery_attempt")
    op.drop_table("alert_outbox")
    op.drop_table("alert_record")
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
