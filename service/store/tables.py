"""Database tables (SQLModel). Money is integer nano-USD (1e-9 dollar); times are aware UTC.

A usage row's grouping (model, API key, workspace, tier, context window, geography) is stored
once per distinct grouping in ``usage_series``; ``usage`` rows carry its id. Grouping columns
store ``""`` for Anthropic's ``null`` so that each key is a plain unique constraint on both
SQLite and PostgreSQL (SQL treats NULLs as distinct). ``""`` in ``workspace_id`` is the default
workspace and in ``api_key_id`` Console use. ``USAGE_ROWS`` reads usage with its grouping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    String,
    Subquery,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlmodel import Field, SQLModel

from service.store.types import UTCDateTime


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _nanos() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


def _count() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class UsageSeries(SQLModel, table=True):
    """One distinct grouping of usage rows: what a usage row is of, beside its bucket.

    Rows are added by booking and never changed or deleted, so ``usage.series_id`` needs no
    foreign key (whose per-row check on PostgreSQL doubled the time to book a backfill).
    """

    __tablename__ = "usage_series"
    __table_args__ = (
        # The API key first: booking looks series up by the keys a read brings.
        UniqueConstraint(
            "api_key_id",
            "model",
            "workspace_id",
            "service_tier",
            "context_window",
            "inference_geo",
            name="uq_usage_series_grouping",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(default="", max_length=200)
    api_key_id: str = Field(default="", max_length=200)
    workspace_id: str = Field(default="", max_length=200)
    service_tier: str = Field(default="", max_length=50)
    context_window: str = Field(default="", max_length=50)
    inference_geo: str = Field(default="", max_length=50)


class UsageRecord(SQLModel, table=True):
    """One usage result row at its latest (largest) reading, with its priced and charged cost.

    Its natural key is (width, start, series): one narrow unique index, which also serves every
    read of a window (its grouping strings in the key had cost booking 2.7x a bare table).
    """

    __tablename__ = "usage"
    __table_args__ = (
        UniqueConstraint("bucket_width", "bucket_start", "series_id", name="uq_usage_natural_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bucket_start: datetime = _utc()
    bucket_width: str = Field(max_length=2)
    series_id: int
    uncached_input_tokens: int = _count()
    cache_creation_5m_tokens: int = _count()
    cache_creation_1h_tokens: int = _count()
    cache_read_tokens: int = _count()
    output_tokens: int = _count()
    web_search_requests: int = _count()
    cost_nanos: int = _nanos()
    charged_nanos: int = _nanos()
    estimated: bool = Field(default=False)
    # The Analytics API's hourly bill for the row (None: no cost row yet, or the legacy report):
    # when set, ``cost_nanos`` is ``billed_nanos``; ``list_nanos`` is the same at list price.
    billed_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    list_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    first_seen_at: datetime = _utc()
    updated_at: datetime = _utc()


class AttributedUsage(SQLModel, table=True):
    """Usage by who and what was behind it (Analytics API only): one row per bucket, actor,
    product and the dimensions that price it. It never touches the balance (``usage`` does):
    it is what budgets scoped by ``actor`` or ``product`` and ``report --by actor|product``
    read. ``actor`` is the user, service account or API key id (``""`` when none is known)."""

    __tablename__ = "attributed_usage"
    __table_args__ = (
        UniqueConstraint(
            "bucket_start",
            "bucket_width",
            "actor",
            "product",
            "model",
            "service_tier",
            "context_window",
            name="uq_attributed_usage_natural_key",
        ),
        Index("ix_attributed_usage_width_start", "bucket_width", "bucket_start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bucket_start: datetime = _utc()
    bucket_width: str = Field(max_length=2)
    actor: str = Field(default="", max_length=300)
    actor_type: str = Field(default="", max_length=50)
    product: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=200)
    service_tier: str = Field(default="", max_length=50)
    context_window: str = Field(default="", max_length=50)
    uncached_input_tokens: int = _count()
    cache_creation_5m_tokens: int = _count()
    cache_creation_1h_tokens: int = _count()
    cache_read_tokens: int = _count()
    output_tokens: int = _count()
    web_search_requests: int = _count()
    cost_nanos: int = _nanos()
    estimated: bool = Field(default=False)
    billed_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    list_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: datetime = _utc()


class LedgerEntry(SQLModel, table=True):
    """A signed change of the credit balance. The balance is the sum of ``amount_nanos``.

    Kinds: ``opening`` and ``purchase`` (lots the operator states; ``expires_at`` overrides the
    default lifetime), ``usage``, ``adjustment`` (reconciliation with the bill, see
    :mod:`service.store.bills`), and the walk's derived ``reload`` and ``expiry`` entries.

    ``usage`` entries are per bucket and per booking: the sum of the cost differences of that
    bucket's rows that were new or grew, so re-reading unchanged data books nothing.
    """

    __tablename__ = "ledger_entry"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)
    at: datetime = _utc(index=True)
    amount_nanos: int = _nanos()
    bucket_width: str | None = Field(default=None, max_length=2)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    expires_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class ReloadBlock(SQLModel, table=True):
    """A simulated auto-reload that the monthly limit shrank or blocked (derived by the walk)."""

    __tablename__ = "reload_block"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(index=True)
    wanted_nanos: int = _nanos()
    granted_nanos: int = _nanos()
    created_at: datetime = _utc()


class WalkCheckpointRecord(SQLModel, table=True):
    """The balance walk's state at an instant, so a cycle resumes there instead of replaying
    every bucket since the starting balance (:mod:`service.store.walk_checkpoints`). ``basis``
    fingerprints what the state was derived under: the starting balance and the credit terms."""

    __tablename__ = "walk_checkpoint"

    bucket_width: str = Field(primary_key=True, max_length=2)
    at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    basis: str = Field(max_length=64)
    state: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _utc()


class WalkChange(SQLModel, table=True):
    """A write to what the walk reads (a charge, a lot), at the earliest instant it touched:
    every checkpoint after ``at`` is stale. Booked in the writer's transaction; the next
    booking walk drops the stale checkpoints and these rows."""

    __tablename__ = "walk_change"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc()
    created_at: datetime = _utc()


class StoredSetting(SQLModel, table=True):
    """Settings the ledger was last booked under (e.g. the auto-reload terms), as JSON."""

    __tablename__ = "stored_setting"

    name: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _utc()


class CollectionState(SQLModel, table=True):
    """Where collection stands for one bucket width: the watermark and the latest outcome."""

    __tablename__ = "collection_state"

    bucket_width: str = Field(primary_key=True, max_length=2)
    collected_from: datetime | None = _utc(nullable=True)
    watermark: datetime | None = _utc(nullable=True)
    last_success_at: datetime | None = _utc(nullable=True)
    last_attempt_at: datetime | None = _utc(nullable=True)
    failing_since: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The newest bucket the API returned, empty ones included: a quiet night is not staleness.
    newest_bucket_start: datetime | None = _utc(nullable=True)


class UnknownModel(SQLModel, table=True):
    """A model id the price book did not know, kept so rules can alert on it."""

    __tablename__ = "unknown_model"

    model: str = Field(primary_key=True, max_length=200)
    priced_as: str = Field(default="", max_length=200)
    first_seen_at: datetime = _utc()
    last_seen_at: datetime = _utc()


class EntityName(SQLModel, table=True):
    """Display names of API keys and workspaces, refreshed from the Admin API."""

    __tablename__ = "entity_name"

    kind: str = Field(primary_key=True, max_length=20)
    id: str = Field(primary_key=True, max_length=200)
    name: str = Field(sa_column=Column(String(500), nullable=False))
    updated_at: datetime = _utc()


class AlertRecord(SQLModel, table=True):
    """The dedup memory: one row per alert identity (per episode, for conditions).

    Events (a budget threshold in a period) have one row forever; a persistent condition has
    one row per episode, open until ``resolved_at``. ``group_key`` and ``threshold_rank`` (a
    threshold's level, in millionths of a percent of its limit) let the dedup stage find the
    highest threshold already alerted in a budget's period.
    """

    __tablename__ = "alert_record"

    id: int | None = Field(default=None, primary_key=True)
    dedup_id: str = Field(sa_column=Column(String(1000), nullable=False, unique=True))
    identity_key: str = Field(sa_column=Column(String(1000), nullable=False, index=True))
    rule: str = Field(max_length=200, index=True)
    scope: str = Field(sa_column=Column(String(500), nullable=False))
    period: str = Field(max_length=50)
    threshold: str = Field(max_length=100)
    group_key: str | None = Field(
        default=None, sa_column=Column(String(1000), nullable=True, index=True)
    )
    threshold_rank: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    persistent: bool = Field(default=False)
    episode: int = Field(default=1)
    notices: int = Field(default=0)
    rule_name: str = Field(max_length=200)
    title: str = Field(sa_column=Column(Text, nullable=False))
    opened_at: datetime = _utc()
    last_notified_at: datetime = _utc()
    resolved_at: datetime | None = _utc(nullable=True)
    closed_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxAlert(SQLModel, table=True):
    """One notification waiting for, or done with, delivery. Rows first, sends second.

    ``dedup_id`` is the alert's identity (reminders and the resolved notice share it);
    ``message_id`` is this notification's own, stable across retries.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (UniqueConstraint("message_id", "channel", name="uq_outbox_message_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="alert_record.id", index=True)
    dedup_id: str = Field(sa_column=Column(String(1000), nullable=False, index=True))
    message_id: str = Field(sa_column=Column(String(1100), nullable=False, index=True))
    kind: str = Field(max_length=20)
    rule: str = Field(max_length=200, index=True)
    severity: str = Field(max_length=20)
    title: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _utc(index=True)
    state: str = Field(default="pending", max_length=20, index=True)
    channel: str | None = Field(default=None, max_length=100, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A worker's claim: a row 'sending' whose claim is older than the lease was abandoned (a
    # crash between send and acknowledgement) and is claimed again, with the same message id.
    # Only the holder of ``claim_token`` acknowledges: a late worker's answer changes nothing.
    claimed_at: datetime | None = _utc(nullable=True)
    claim_token: str | None = Field(default=None, max_length=32)
    # The maximum age counts from the first attempt: an alert that waited out a long outage of
    # creditwatch itself is still tried for that long.
    first_attempt_at: datetime | None = _utc(nullable=True)
    sent_at: datetime | None = _utc(nullable=True)
    finished_at: datetime | None = _utc(nullable=True)  # sent or failed
    last_status: str | None = Field(default=None, max_length=20)
    failure: str | None = Field(default=None, max_length=20)  # permanent | expired | removed


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt to deliver one notification to one channel, with how it went."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="alert_outbox.id", index=True)
    channel: str = Field(max_length=100, index=True)
    started_at: datetime = _utc()
    duration_ms: int = Field(default=0)
    outcome: str = Field(max_length=20)  # sent | retry | failed
    status: str | None = Field(default=None, max_length=20)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BilledCost(SQLModel, table=True):
    """One row of Anthropic's ``cost_report`` for a UTC day (grouped by workspace and
    description), as last fetched: what the organization is billed, in nano-USD.

    ``""`` stands for the report's ``null`` (``workspace_id ""`` is the default workspace; a
    row without a model, such as code execution, has ``model ""``). A revised bill replaces the
    day's rows; a fetch that returns nothing for a day keeps the rows it had (a bill does not
    vanish). Stored for every day reconcile fetched, also days it does not adjust (before the
    starting balance). Priority-tier usage is never in it (Anthropic's report omits it).
    """

    __tablename__ = "billed_cost"
    __table_args__ = (
        UniqueConstraint(
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

    id: int | None = Field(default=None, primary_key=True)
    day: datetime = _utc(index=True)
    workspace_id: str = Field(default="", max_length=200)
    description: str = Field(default="", sa_column=Column(String(500), nullable=False))
    cost_type: str = Field(default="", max_length=50)
    model: str = Field(default="", max_length=200)
    token_type: str = Field(default="", max_length=100)
    service_tier: str = Field(default="", max_length=50)
    context_window: str = Field(default="", max_length=50)
    inference_geo: str = Field(default="", max_length=50)
    amount_nanos: int = _nanos()
    fetched_at: datetime = _utc()


class BillAdjustment(SQLModel, table=True):
    """Reconcile's state for one adjusted UTC day and workspace: the bill, the estimate it was
    compared with, and the adjustment booked so far (the sum of its ``adjustment`` ledger
    entries, each booked at the start of the day's last hour).

    ``estimated_nanos`` is the usage charged for the day and workspace *less* the priority
    tier, which the bill omits: that part, ``priority_nanos``, keeps its estimate and is left
    out of the comparison. After each run ``adjusted_nanos == billed_nanos - estimated_nanos``,
    so the ledger charges the day ``billed_nanos + priority_nanos``; the difference a report
    shows is ``billed_nanos - estimated_nanos``. ``breakdown`` is JSON, ``[[model, kind,
    billed_nanos, estimated_nanos], …]`` per model and token type (``kind`` is the cost
    report's ``token_type``, or its ``cost_type`` such as ``web_search`` or
    ``code_execution``), which names what drifted. Days before the starting balance, today
    and days whose bill is not out yet have no row.
    """

    __tablename__ = "bill_adjustment"

    day: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    workspace_id: str = Field(primary_key=True, max_length=200)
    billed_nanos: int = _nanos()
    estimated_nanos: int = _nanos()
    priority_nanos: int = _nanos()
    adjusted_nanos: int = _nanos()
    breakdown: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    checked_at: datetime = _utc()


# The Core tables, for bulk statements that bypass the ORM.
USAGE: Table = SQLModel.metadata.tables[UsageRecord.__tablename__]
SERIES: Table = SQLModel.metadata.tables[UsageSeries.__tablename__]
ATTRIBUTED: Table = SQLModel.metadata.tables[AttributedUsage.__tablename__]
LEDGER: Table = SQLModel.metadata.tables[LedgerEntry.__tablename__]
WALK_CHECKPOINT: Table = SQLModel.metadata.tables[WalkCheckpointRecord.__tablename__]

SERIES_FIELDS = (
    "model",
    "api_key_id",
    "workspace_id",
    "service_tier",
    "context_window",
    "inference_geo",
)
"""A usage series' grouping, in its natural key's order."""

USAGE_ROWS: Subquery = (
    select(*USAGE.c, *(SERIES.c[name] for name in SERIES_FIELDS))
    .join_from(USAGE, SERIES, USAGE.c.series_id == SERIES.c.id)
    .subquery("usage_rows")
)
"""Usage rows with their grouping: every column of ``usage`` and of its series but the series'
id, by name (``USAGE_ROWS.c.model``). For reads that group or filter by the grouping; a read of
buckets and amounts alone reads ``USAGE``, without the join."""
