"""The seam between collection and where token usage comes from (``CREDITWATCH_USAGE_SOURCE``).

``UsageFetcher.fetch`` returns a chunk's usage as the ``UsageRow``s booking takes, whichever API
fed them: the legacy usage report (``messages``) or the Usage and Cost Analytics API (beta,
``analytics``). Booking, the credit walk, the rules and delivery do not know which.

Analytics rows are made to look like the legacy report's:
- the Console default workspace has a real ``wrkspc_…`` id there and ``null`` in the legacy
  report. The id that ``/v1/organizations/workspaces`` does not list is the default one (that list
  never shows it); it is stored once found and read as ``None`` (``""`` in the store), so one
  ledger stays continuous across a switch. ``api_key_id: null`` (no API key) is ``None`` as in the
  legacy report (``""`` in the store);
- ``group_by[]`` takes at most 5 dimensions and booking needs model, API key, workspace, service
  tier and context window (the Sonnet 4/4.5 long-context price), so ``inference_geo`` is left
  out: analytics rows book with ``inference_geo`` None. Usage with ``inference_geo: us`` on
  Claude 4.6 and later costs 1.1x list and is estimated at 1x here, until its hour is billed
  (the cost rows' amount has the 1.1x in it) or, for a bill that never came within the
  look-back, until the daily reconcile against ``cost_report`` books the day's difference.

With the Analytics API, each read of usage also reads ``/analytics/cost`` for the same window
and dimensions: a row whose hour has a cost row carries that bill (``amount``, after discounts,
and ``list_amount``), and booking charges the bill instead of the estimate. A cost row with no
usage row in the read (a group whose tokens were read before, code execution) comes as a row of
zero counts with its bill. Hours whose cost rows are not there yet stay estimates until a read
finds them; a bill that arrives later than the look-back is left to the daily reconcile.
Priority-tier usage has no cost row and stays an estimate.

A second pair of reads groups by ``actor`` and ``product`` (with model, tier and context window
to price what is not billed yet): usage attributed to people and products, which only budgets
scoped by ``actor``/``product`` and ``report --by actor|product`` read (``attributed_usage``).

A switch of source keeps one ledger: the buckets collected before it (up to the watermark at the
switch, rounded up to a bucket) stay with the source that booked them, and later re-reads of those
buckets (the look-back, an earlier backfill) ask that source again, so their natural keys match
(no double booking of the overlap) and late data still arrives (no gap). From the boundary on, the
configured source is read. The boundaries are stored with the ledger (``usage_sources``).

The Analytics API refuses ``starting_at`` before 2026-01-01 or more than 365 days back: a read
that reaches earlier starts at the earliest allowed bucket, with a warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, runtime_checkable

from msgspec.structs import astuple
from sqlalchemy import Engine

from service.admin_api.analytics import (
    ATTRIBUTION_GROUP_BY,
    DEFAULT_ANALYTICS_GROUP_BY,
    AnalyticsRead,
)
from service.admin_api.analytics_wire import (
    AnalyticsActor,
    AnalyticsCostRow,
    AnalyticsGroup,
    AnalyticsUsageRow,
)
from service.domain.periods import floor_to_bucket
from service.domain.timefmt import rfc3339
from service.domain.usage import (
    BUCKET_SECONDS,
    AttributedRow,
    AttributionKey,
    BilledCost,
    BucketWidth,
    TokenCounts,
    UsageKey,
    UsagePage,
    UsageRow,
    UsageSourceName,
)
from service.errors import AdminAPIError
from service.store.collection_state import collection_state
from service.store.engine import transaction
from service.store.stored_settings import store_value, stored_value

log = logging.getLogger(__name__)

SOURCES_SETTING = "usage_sources"
"""JSON list of ``[from, source]``: from that bucket start on, usage is read from that source."""
DEFAULT_WORKSPACE_SETTING = "analytics_default_workspace_id"
REFRESHED_SETTING = "analytics_data_refreshed_at"
"""The Analytics API's latest ``data_refreshed_at`` (RFC 3339), for status."""

ANALYTICS_EARLIEST = datetime(2026, 1, 1, tzinfo=UTC)
ANALYTICS_MAX_AGE = timedelta(days=365)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


class MessagesClient(Protocol):
    """The legacy usage report, as the collector's client offers it."""

    def usage_pages(
        self, starting_at: datetime, ending_at: datetime | None = None, *, bucket_width: BucketWidth
    ) -> Iterator[UsagePage]: ...

    def workspace_names(self) -> dict[str, str]: ...


@runtime_checkable
class AnalyticsClient(Protocol):
    """The Analytics API's usage endpoint (``AdminClient`` has it; simple fakes may not)."""

    def analytics_usage(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: tuple[str, ...] = DEFAULT_ANALYTICS_GROUP_BY,
        *,
        page_size: int = 1000,
    ) -> AnalyticsRead[AnalyticsUsageRow]: ...

    def analytics_cost(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: tuple[str, ...] = DEFAULT_ANALYTICS_GROUP_BY,
        *,
        page_size: int = 1000,
    ) -> AnalyticsRead[AnalyticsCostRow]: ...


@dataclass(frozen=True, slots=True)
class FetchedUsage:
    """One chunk's rows, the newest bucket known complete or served, and (analytics only) the
    earliest ``data_refreshed_at`` of its reads (the data is complete up to then) and the
    usage attributed to actors and products."""

    rows: list[UsageRow]
    newest_bucket: datetime | None
    refreshed_at: datetime | None
    attributed: list[AttributedRow] = field(default_factory=list)


Segments = list[tuple[datetime, UsageSourceName]]


def ceil_to_bucket(moment: datetime, width: BucketWidth) -> datetime:
    start = floor_to_bucket(moment, width)
    return start if start == moment else start + timedelta(seconds=BUCKET_SECONDS[width])


def analytics_earliest(now: datetime, width: BucketWidth) -> datetime:
    """The first bucket start the Analytics API serves at ``now``."""
    return ceil_to_bucket(max(ANALYTICS_EARLIEST, now - ANALYTICS_MAX_AGE), width)


def split_by_source(
    segments: Segments, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, UsageSourceName]]:
    """``[start, end)`` cut where the source changes, in order."""
    parts: list[tuple[datetime, datetime, UsageSourceName]] = []
    for index, (since, source) in enumerate(segments):
        until = segments[index + 1][0] if index + 1 < len(segments) else None
        lo = max(start, since)
        hi = end if until is None else min(end, until)
        if lo < hi:
            parts.append((lo, hi, source))
    return parts


def _load_segments(raw: str | None) -> Segments | None:
    if raw is None:
        return None
    segments: Segments = []
    for since, source in json.loads(raw):
        if source not in ("messages", "analytics"):
            raise ValueError(f"stored {SOURCES_SETTING} names an unknown source {source!r}")
        segments.append((datetime.fromisoformat(since.replace("Z", "+00:00")), source))
    return segments


def _dump_segments(segments: Segments) -> str:
    return json.dumps([[rfc3339(since), source] for since, source in segments])


def switch_segments(
    stored: Segments | None,
    wanted: UsageSourceName,
    collected_to: datetime | None,
    width: BucketWidth,
) -> Segments:
    """The segments after this run: ``wanted`` from the first bucket not yet collected.

    ``collected_to`` is where collection has read up to (None: nothing yet). A ledger from before
    this setting existed was collected from the usage report.
    """
    if stored is None:
        stored = [(_EPOCH, "messages")] if collected_to is not None else []
    if stored and stored[-1][1] == wanted:
        return stored
    boundary = _EPOCH if collected_to is None else ceil_to_bucket(collected_to, width)
    kept = [(since, source) for since, source in stored if since < boundary]
    if kept and kept[-1][1] == wanted:
        return kept
    return [*kept, (boundary, wanted)]


class UsageFetcher:
    """One collection's reads of usage, for the configured source (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        client: MessagesClient,
        source: UsageSourceName,
        width: BucketWidth,
        now: datetime,
    ) -> None:
        self.engine, self.client, self.width, self.now = engine, client, width, now
        self._workspaces: dict[str, str] | None = None
        self._warned_clamp = False
        with transaction(engine) as session:
            state = collection_state(session, width)
            collected_to = state.watermark
            if state.newest_bucket_start is not None:
                # The newest bucket served may lie past a watermark capped by data freshness.
                served_to = state.newest_bucket_start + timedelta(seconds=BUCKET_SECONDS[width])
                collected_to = served_to if collected_to is None else max(collected_to, served_to)
            stored = _load_segments(stored_value(session, SOURCES_SETTING))
            self.segments = switch_segments(stored, source, collected_to, width)
            if stored != self.segments:
                store_value(session, SOURCES_SETTING, _dump_segments(self.segments), now)
                if stored:
                    log.info(
                        "usage source switched to %s from bucket %s; earlier buckets stay with "
                        "the source that collected them",
                        source,
                        rfc3339(self.segments[-1][0]),
                    )
            self.default_workspace = stored_value(session, DEFAULT_WORKSPACE_SETTING)
        if source == "analytics" and not isinstance(client, AnalyticsClient):
            raise TypeError("CREDITWATCH_USAGE_SOURCE=analytics needs a client that reads it")

    def fetch(self, start: datetime, end: datetime) -> FetchedUsage:
        """Every usage row of ``[start, end)``, each part from the source that owns it."""
        rows: list[UsageRow] = []
        attributed: list[AttributedRow] = []
        newest: datetime | None = None
        refreshed: datetime | None = None
        for lo, hi, source in split_by_source(self.segments, start, end):
            if source == "messages":
                part, part_newest = self._messages(lo, hi)
            else:
                part, part_newest, part_refreshed, part_attributed = self._analytics(lo, hi)
                attributed.extend(part_attributed)
                if part_refreshed is not None:
                    refreshed = (
                        part_refreshed if refreshed is None else min(refreshed, part_refreshed)
                    )
            rows.extend(part)
            if part_newest is not None:
                newest = part_newest if newest is None else max(newest, part_newest)
        return FetchedUsage(rows, newest, refreshed, attributed)

    def _messages(self, start: datetime, end: datetime) -> tuple[list[UsageRow], datetime | None]:
        """The usage report's rows, and its newest bucket (empty ones count)."""
        rows: list[UsageRow] = []
        newest: datetime | None = None
        for page in self.client.usage_pages(start, end, bucket_width=self.width):
            rows.extend(page.rows)
            if page.bucket_starts:
                last = max(page.bucket_starts)
                newest = last if newest is None else max(newest, last)
        return rows, newest

    def _analytics(
        self, start: datetime, end: datetime
    ) -> tuple[list[UsageRow], datetime | None, datetime | None, list[AttributedRow]]:
        earliest = analytics_earliest(self.now, self.width)
        if start < earliest:
            if not self._warned_clamp:
                self._warned_clamp = True
                log.warning(
                    "the Analytics API serves no usage before %s (not before 2026-01-01, at "
                    "most 365 days back): usage from %s to then is not collected",
                    rfc3339(earliest),
                    rfc3339(start),
                )
            start = earliest
        if start >= end:
            return [], None, None, []
        client = self.client
        assert isinstance(client, AnalyticsClient)  # checked in __init__
        read = client.analytics_usage(start, end, self.width, DEFAULT_ANALYTICS_GROUP_BY)
        bills = client.analytics_cost(start, end, self.width, DEFAULT_ANALYTICS_GROUP_BY)
        default = self._default_workspace(
            [row.group for row in read.rows] + [row.group for row in bills.rows]
        )
        counts, billed = _joined(
            ((self._key(r.starting_at, r.group, default), r.counts) for r in read.rows),
            ((self._key(r.starting_at, r.group, default), r) for r in bills.rows),
        )
        rows = [UsageRow(key, found, billed.get(key)) for key, found in counts.items()]
        rows += [
            UsageRow(key, TokenCounts(), bill) for key, bill in billed.items() if key not in counts
        ]
        attributed = self._attributed(client, start, end)
        newest = max((row.key.bucket_start for row in rows), default=None)
        refreshed = _earliest(read.data_refreshed_at, bills.data_refreshed_at)
        if refreshed is not None and refreshed > start:
            # Rows appear only where there was usage: a bucket the data is complete into has
            # been served, even when it was quiet (a quiet night is not staleness).
            complete = floor_to_bucket(min(refreshed, end) - _TICK, self.width)
            newest = complete if newest is None else max(newest, complete)
        return rows, newest, refreshed, attributed

    def _key(self, starting_at: datetime, group: AnalyticsGroup, default: str | None) -> UsageKey:
        workspace = group.workspace_id
        if workspace is not None and workspace == default:
            workspace = None
        return UsageKey(
            bucket_start=starting_at,
            bucket_width=self.width,
            model=group.model,
            api_key_id=group.api_key_id,
            workspace_id=workspace,
            service_tier=group.service_tier,
            context_window=group.context_window,
            inference_geo=None,  # not among the 5 dimensions; see the module docstring
        )

    def _attributed(
        self, client: AnalyticsClient, start: datetime, end: datetime
    ) -> list[AttributedRow]:
        """The window's usage by actor and product, each with its bill when there is one."""
        read = client.analytics_usage(start, end, self.width, ATTRIBUTION_GROUP_BY)
        bills = client.analytics_cost(start, end, self.width, ATTRIBUTION_GROUP_BY)
        names: dict[AttributionKey, str | None] = {}

        def key_of(starting_at: datetime, group: AnalyticsGroup) -> AttributionKey:
            actor = group.actor
            known = actor is not None and actor.id is not None
            key = AttributionKey(
                bucket_start=starting_at,
                bucket_width=self.width,
                # An actor without an id (a kind newer than this reader) is stored as none.
                actor=actor.id if actor else None,
                actor_type=actor.type if actor and known else None,
                product=group.product,
                model=group.model,
                service_tier=group.service_tier,
                context_window=group.context_window,
            )
            if actor is not None and key not in names:
                names[key] = actor_name(actor)
            return key

        counts, billed = _joined(
            ((key_of(r.starting_at, r.group), r.counts) for r in read.rows),
            ((key_of(r.starting_at, r.group), r) for r in bills.rows),
        )
        keys = [*counts, *(key for key in billed if key not in counts)]
        return [
            AttributedRow(key, counts.get(key, TokenCounts()), billed.get(key), names.get(key))
            for key in keys
        ]

    def _default_workspace(self, groups: list[AnalyticsGroup]) -> str | None:
        """The default workspace's analytics id: the stored one, or the one id the workspace
        list does not show (stored, logged once). None while no row names an unlisted id."""
        if self.default_workspace is not None:
            return self.default_workspace
        ids = {group.workspace_id for group in groups if group.workspace_id is not None}
        if not ids:
            return None
        if self._workspaces is None:
            self._workspaces = self.client.workspace_names()
        unlisted = sorted(ids - self._workspaces.keys())
        if not unlisted:
            return None
        if len(unlisted) > 1:
            raise AdminAPIError(
                f"analytics usage names {len(unlisted)} workspaces the workspace list does not "
                f"show ({', '.join(unlisted)}); only the default workspace should be missing "
                "from it, so which one is the default cannot be told",
                transient=True,
            )
        self.default_workspace = unlisted[0]
        with transaction(self.engine) as session:
            store_value(session, DEFAULT_WORKSPACE_SETTING, self.default_workspace, self.now)
        log.info(
            "the Analytics API's default workspace is %s; booked as the default workspace "
            "(the usage report's null)",
            self.default_workspace,
        )
        return self.default_workspace


K = TypeVar("K")


def _joined(
    usage: Iterable[tuple[K, TokenCounts]], cost: Iterable[tuple[K, AnalyticsCostRow]]
) -> tuple[dict[K, TokenCounts], dict[K, BilledCost]]:
    """One read's counts and bills (nano-USD) by stored key. Rows of distinct wire groups that
    one stored key holds (the default workspace's id and a null, actors without an id) are
    summed: each is a share of the key's usage, not a re-read of it."""
    counts: dict[K, TokenCounts] = {}
    for key, found in usage:
        seen = counts.get(key)
        counts[key] = found if seen is None else _plus(seen, found)
    billed: dict[K, BilledCost] = {}
    for key, row in cost:
        bill = billed.get(key, BilledCost(0, 0))
        billed[key] = BilledCost(
            bill.amount_nanos + row.amount_nanos, bill.list_nanos + row.list_amount_nanos
        )
    return counts, billed


def _plus(a: TokenCounts, b: TokenCounts) -> TokenCounts:
    return TokenCounts(*(x + y for x, y in zip(astuple(a), astuple(b), strict=True)))


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def actor_name(actor: AnalyticsActor) -> str | None:
    """What people read for an actor: ``Name <e-mail>``, either alone, or None (its id)."""
    if actor.name and actor.email_address:
        return f"{actor.name} <{actor.email_address}>"
    return actor.name or actor.email_address
