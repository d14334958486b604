"""The reconcile job: Anthropic's bill for finished UTC days, booked into the ledger.

Daily in `creditwatch run` (and at its start) and as `creditwatch reconcile [--since DATE]`:

1. bring the ledger in line with the settings, as a cycle does (starting balance, prices);
2. fetch ``cost_report`` grouped by workspace and description, every page validated, for the
   days to check: from the first adjusted-day-to-be that has no adjustment yet (or ``--since``)
   and always the last :data:`RECHECK_DAYS` finished days, since bills get revised; today never;
3. in one transaction under the ledger's lock: replace the fetched days' bills, compare each
   day with its usage (:mod:`service.reconcile.compare`) and book per day and workspace only the
   change in its adjustment; days already adjusted whose usage changed since the last run (it
   grew late, or was re-priced) are compared again with their stored bill; then the walk's
   reloads and expiries follow the adjusted ledger, and the rules run (a drift alert) in the
   same transaction.

A day is adjusted when it begins at or after the starting balance, its usage has been collected
(the collection's watermark is past its end) and its bill is out. A bad cost page raises before
anything is written.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.alerts.model import Alert
from service.domain.billing import DAY, PRIORITY_TIER, first_adjustable_day
from service.domain.money import format_usd, usd_text
from service.domain.periods import day_start
from service.domain.usage import CostRow
from service.errors import MalformedResponse
from service.pricing import PriceBook
from service.reconcile.compare import compare_day
from service.reconcile.estimate import estimate_lines
from service.runtime.collector import AfterBooking, apply_settings
from service.runtime.failures import log_failure
from service.settings import Settings
from service.store.bills import (
    RECHECK_DAYS,
    Comparison,
    adjustments_of,
    billed_lines,
    book_adjustment,
    day_usage,
    day_window,
    days_touched_since,
    reconciled_days,
    replace_bill,
)
from service.store.credit_sync import sync_credits
from service.store.engine import read_transaction, transaction
from service.store.ledger_entries import opening_entry
from service.store.stored_settings import store_value, stored_value
from service.store.tables import CollectionState

log = logging.getLogger(__name__)

RAN_AT_SETTING = "reconciled_at"

DayStatus = Literal["adjusted", "awaiting_bill", "not_collected", "before_start", "no_start"]
STATUS_TEXT: dict[DayStatus, str] = {
    "adjusted": "adjusted",
    "awaiting_bill": "not adjusted: the bill is not out yet",
    "not_collected": "not adjusted: its usage is not collected yet",
    "before_start": "not adjusted: before the starting balance",
    "no_start": "not adjusted: no starting balance is set",
}


class CostSource(Protocol):
    """What reconciliation needs from the Admin API client."""

    def cost_report(
        self, starting_at: datetime, ending_at: datetime | None = None
    ) -> list[CostRow]: ...


@dataclass(frozen=True)
class DayOutcome:
    """One day checked: the bill, the estimate (priority tier apart) and what was booked."""

    day: datetime
    status: DayStatus
    billed_nanos: int = 0
    estimated_nanos: int = 0
    priority_nanos: int = 0
    booked_nanos: int = 0  # the change this run booked (bill above the estimate: positive)
    adjusted_nanos: int = 0  # the day's whole adjustment after this run


@dataclass
class ReconcileResult:
    window_start: datetime
    window_end: datetime
    days: list[DayOutcome] = field(default_factory=list)
    alerts: tuple[Alert, ...] = ()

    @property
    def waiting(self) -> bool:
        """A finished day could not be settled yet (its bill is not out, or its usage not
        read to the end): the daemon tries again within the hour, not tomorrow."""
        return any(d.status in ("awaiting_bill", "not_collected") for d in self.days)

    @property
    def booked_nanos(self) -> int:
        return sum(day.booked_nanos for day in self.days)

    def summary(self) -> str:
        adjusted = [d for d in self.days if d.status == "adjusted"]
        changed = [d for d in adjusted if d.booked_nanos]
        window = (
            f"{self.window_start:%Y-%m-%d}..{self.window_end - DAY:%Y-%m-%d}"
            if self.window_start < self.window_end
            else "no finished day to fetch"
        )
        return (
            f"reconciled {window}: {len(adjusted)} days adjusted to the bill, "
            f"{len(changed)} changed, {usd_text(self.booked_nanos)} booked"
        )

    def fields(self) -> dict[str, object]:
        return {
            "event": "reconcile",
            "days": len(self.days),
            "adjusted": sum(d.status == "adjusted" for d in self.days),
            "booked_usd": format_usd(self.booked_nanos),
            "alerts": len(self.alerts),
        }


def reconcile(
    engine: Engine,
    client: CostSource,
    book: PriceBook,
    settings: Settings,
    clock: Callable[[], datetime],
    *,
    since: datetime | None = None,
    after_booking: AfterBooking | None = None,
) -> ReconcileResult:
    """Fetch the bill of the days to check and book their adjustments (see the module).

    ``since`` (a UTC midnight) re-checks every finished day from it. Raises AdminAPIError
    (MalformedResponse for a bad page or a bill not in USD) before anything is written, and
    SQLAlchemyError when the database fails; ``after_booking`` runs in the booking's
    transaction, in a savepoint.
    """
    now = clock()
    today = day_start(now)
    width = settings.collection.bucket_width
    apply_settings(engine, settings, book, now)
    with read_transaction(engine) as session:
        start = since if since is not None else _default_start(session, width, today)
    start = min(start, today)
    rows = client.cost_report(start, today) if start < today else []
    bills = _by_day(rows, start, today)
    result = ReconcileResult(window_start=start, window_end=today)
    with transaction(engine) as session:
        for day, day_rows in bills.items():
            replace_bill(session, day, day_rows, now)
        opening = opening_entry(session)
        first = first_adjustable_day(opening.at) if opening is not None else None
        days = set(day_window(start, today))
        ran_at = stored_value(session, RAN_AT_SETTING)
        if first is not None and ran_at is not None:
            touched = days_touched_since(session, width, datetime.fromisoformat(ran_at), first)
            days |= {day for day in touched & reconciled_days(session) if day < today}
        state = session.get(CollectionState, width)
        settled = reconciled_days(session)
        for day in sorted(days):
            outcome = _reconcile_day(
                session,
                book,
                width,
                day,
                first=first,
                state=state,
                now=now,
                settle=settings.collection.lookback,
                settled_before=day in settled,
            )
            result.days.append(outcome)
        walked = sync_credits(session, width, settings.ledger.credit_terms(), now)
        store_value(session, RAN_AT_SETTING, now.isoformat(), now)
        if after_booking is not None:
            try:
                with session.begin_nested():
                    after_booking(session, walked, now)
            except Exception as exc:  # noqa: BLE001 - logged in one line; the booking commits
                log_failure(log, "evaluating the alert rules failed", exc)
    return result


def _default_start(session: Session, width: str, today: datetime) -> datetime:
    """The first adjustable day with no adjustment yet, or the re-check window's first day."""
    recheck = today - RECHECK_DAYS * DAY
    opening = opening_entry(session)
    if opening is None:
        return recheck
    first = first_adjustable_day(opening.at)
    state = session.get(CollectionState, width)
    if state is not None and state.collected_from is not None:
        first = max(first, first_adjustable_day(state.collected_from))
    done = reconciled_days(session)
    missing = next((day for day in day_window(first, today) if day not in done), None)
    start = recheck if missing is None else min(missing, recheck)
    return max(start, first)


def _by_day(
    rows: Sequence[CostRow], start: datetime, end: datetime
) -> dict[datetime, list[CostRow]]:
    """The rows by UTC day, days outside ``[start, end)`` left out; MalformedResponse for a
    bucket that is not a UTC day or an amount not in USD."""
    days: dict[datetime, list[CostRow]] = defaultdict(list)
    for row in rows:
        if row.currency != "USD":
            raise MalformedResponse(
                f"cost report: an amount in {row.currency!r}, not USD; nothing was booked"
            )
        day = row.day_start
        if day != day_start(day):
            raise MalformedResponse(
                f"cost report: a bucket starting at {day.isoformat()} is not a UTC day; "
                "nothing was booked"
            )
        if start <= day < end:
            days[day].append(row)
    return dict(days)


def _covered(state: CollectionState | None, day: datetime, settle: timedelta) -> bool:
    """Whether collection has read the whole day, and read it again after its last buckets
    stopped growing: the watermark is past the day's end by the look-back window (a reconcile
    at 00:05 would compare the bill with hours still growing)."""
    return (
        state is not None
        and state.collected_from is not None
        and state.watermark is not None
        and state.collected_from <= day
        and state.watermark >= day + DAY + settle
    )


def _reconcile_day(
    session: Session,
    book: PriceBook,
    width: str,
    day: datetime,
    *,
    first: datetime | None,
    state: CollectionState | None,
    now: datetime,
    settle: timedelta,
    settled_before: bool = False,
) -> DayOutcome:
    """``settled_before``: the day was compared with its bill before. It was whole then, and a
    re-read since (a longer look-back, an earlier backfill, an hourly bill read late) cannot
    make it less so: it is compared again at once, or its charges and its old adjustment would
    count the same difference twice until the collection window moved past it."""
    billed = billed_lines(session, day)
    usage = day_usage(session, width, day)
    status: DayStatus | None = None
    if first is None:
        status = "no_start"
    elif day < first:
        status = "before_start"
    elif not settled_before and not _covered(state, day, settle):
        status = "not_collected"
    if status is not None:
        return DayOutcome(
            day,
            status,
            billed_nanos=sum(line.amount_nanos for line in billed or ()),
            estimated_nanos=sum(u.cost_nanos for u in usage if u.service_tier != PRIORITY_TIER),
            priority_nanos=sum(u.cost_nanos for u in usage if u.service_tier == PRIORITY_TIER),
        )
    compared = compare_day(day, billed, usage, estimate_lines(usage, book, day))
    if compared.awaiting_bill:
        return DayOutcome(
            day,
            "awaiting_bill",
            estimated_nanos=sum(u.charged_nanos for u in usage if u.service_tier != PRIORITY_TIER),
            priority_nanos=sum(u.charged_nanos for u in usage if u.service_tier == PRIORITY_TIER),
        )
    before = adjustments_of(session, day)
    booked = 0
    for workspace in compared.workspaces:
        breakdown = tuple(
            (line.model, line.kind, line.billed_nanos, line.estimated_nanos)
            for line in workspace.lines
        )
        comparison = Comparison(
            workspace.workspace_id,
            workspace.billed_nanos,
            workspace.estimated_nanos,
            workspace.priority_nanos,
            breakdown,
        )
        booked += book_adjustment(session, day, comparison, now)
    seen = {w.workspace_id for w in compared.workspaces}
    for workspace_id in sorted(set(before) - seen):
        # Neither billed nor used any more (a revised bill): its adjustment goes back to 0.
        booked += book_adjustment(session, day, Comparison(workspace_id, 0, 0, 0), now)
    return DayOutcome(
        day,
        "adjusted",
        billed_nanos=compared.billed_nanos,
        estimated_nanos=compared.estimated_nanos,
        priority_nanos=compared.priority_nanos,
        booked_nanos=booked,
        adjusted_nanos=compared.billed_nanos - compared.estimated_nanos,
    )


def reconcile_due(engine: Engine, width: str) -> bool:
    """Whether a day already compared with its bill has had its usage rows changed since the
    last run (a re-read, an hourly bill): its adjustment is stale until reconcile runs."""
    with read_transaction(engine) as session:
        ran_at = stored_value(session, RAN_AT_SETTING)
        opening = opening_entry(session)
        if ran_at is None or opening is None:
            return False
        first = first_adjustable_day(opening.at)
        touched = days_touched_since(session, width, datetime.fromisoformat(ran_at), first)
        return bool(touched & reconciled_days(session))
