"""The credit walk as it was before it kept lots in order (issue 12): a sort of every lot per
debit and a sum of every lot per balance. Kept only as the reference the O(events) walk is
checked against (``test_credit_walk_property.py``); it imports the data types of the real one."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from service.domain.credit_walk import (
    DEFAULT_LOT_LIFETIME,
    Charge,
    Expiry,
    Lot,
    Reload,
    ReloadPolicy,
    WalkResult,
)
from service.domain.periods import month_of, next_month_start

# Event priorities at the same instant: credits arrive, then expiries, then a due reload (so
# one reload covers both a bucket's usage and an expiry at its end), then the month roll-over,
# then usage: a reload due at a bucket's end lands before the next bucket's usage.
_LOT, _EXPIRY, _RELOAD, _MONTH, _CHARGE = range(5)


class _Walk:
    def __init__(self, policy: ReloadPolicy | None, lifetime: timedelta) -> None:
        self.policy = policy
        self.lifetime = lifetime
        self.result = WalkResult()
        self.lots: dict[str, Lot] = {}
        self.remaining: dict[str, int] = {}
        self.deficit = 0
        self.pending_reload = False
        self.blocked_month: tuple[int, int] | None = None
        self.events: list[tuple[datetime, int, int, object]] = []
        self.seq = 0

    def push(self, at: datetime, priority: int, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, priority, self.seq, payload))

    @property
    def balance(self) -> int:
        return sum(self.remaining.values()) - self.deficit

    def add_lot(self, lot: Lot) -> None:
        self.lots[lot.key] = lot
        paid = min(lot.amount_nanos, self.deficit)
        self.deficit -= paid
        self.remaining[lot.key] = lot.amount_nanos - paid
        self.push(lot.expires_at, _EXPIRY, lot.key)

    def debit(self, amount: int) -> None:
        for key in sorted(self.remaining, key=lambda k: (self.lots[k].at, k)):
            if amount == 0:
                break
            take = min(amount, self.remaining[key])
            self.remaining[key] -= take
            amount -= take
        self.deficit += amount

    def credit(self, amount: int) -> None:
        """Give back ``amount``: the overdraft first, then the lots last consumed."""
        paid = min(amount, max(self.deficit, 0))
        self.deficit -= paid
        amount -= paid
        held = sorted(self.remaining, key=lambda k: (self.lots[k].at, k), reverse=True)
        for key in held:
            if amount == 0:
                break
            give = min(amount, max(self.lots[key].amount_nanos - self.remaining[key], 0))
            self.remaining[key] += give
            amount -= give
        if amount and held:
            self.remaining[held[0]] += amount
        elif amount:
            self.deficit -= amount  # no lot held at all: a surplus that nothing expires

    def expire(self, at: datetime, key: str) -> None:
        left = self.remaining.pop(key, 0)
        if left > 0:
            self.result.expiries.append(Expiry(at=at, lot_key=key, amount_nanos=left))

    def maybe_schedule_reload(self, due: datetime) -> None:
        policy = self.policy
        if policy is None or self.pending_reload or self.balance >= policy.threshold_nanos:
            return
        self.pending_reload = True
        self.push(due, _RELOAD, None)

    def reload(self, at: datetime) -> None:
        self.pending_reload = False
        policy = self.policy
        assert policy is not None  # reloads are only scheduled with a policy
        wanted = policy.target_nanos - self.balance
        if self.balance >= policy.threshold_nanos or wanted <= 0:
            return
        month = month_of(at)
        granted = wanted
        if policy.monthly_limit_nanos is not None:
            used = self.result.reloaded_by_month.get(month, 0)
            granted = max(0, min(wanted, policy.monthly_limit_nanos - used))
        event = Reload(at=at, wanted_nanos=wanted, granted_nanos=granted)
        # A partial reload is always news; a full block is news once per month, not per bucket.
        if granted < wanted and (granted > 0 or self.blocked_month != month):
            self.result.blocked.append(event)
        if granted == 0:
            self.blocked_month = month
        if granted > 0:
            self.result.reloads.append(event)
            self.result.reloaded_by_month[month] = (
                self.result.reloaded_by_month.get(month, 0) + granted
            )
            key = "reload:" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if key in self.lots:  # a second reload at the same instant (after an expiry)
                key += f"#{sum(k.startswith(key) for k in self.lots) + 1}"
            self.add_lot(Lot(key, "reload", at, granted, at + self.lifetime))
            if granted == wanted:
                self.blocked_month = None

    def schedule(
        self, lots: Iterable[Lot], charges: Sequence[Charge], start: datetime, until: datetime
    ) -> None:
        for lot in lots:
            self.push(lot.at, _LOT, lot)
        for charge in charges:
            self.push(charge.start, _CHARGE, charge)
        if self.policy is None:
            return
        # A walk that starts below the threshold (a low starting balance) reloads at once.
        self.push(start, _MONTH, None)
        month = next_month_start(start)
        while month < until and self.policy.monthly_limit_nanos is not None:
            self.push(month, _MONTH, None)
            month = next_month_start(month)

    def handle(self, at: datetime, priority: int, payload: object) -> None:
        if priority == _LOT:
            assert isinstance(payload, Lot)
            self.add_lot(payload)
        elif priority == _RELOAD:
            self.reload(at)
        elif priority == _EXPIRY:
            assert isinstance(payload, str)
            self.expire(at, payload)
            self.maybe_schedule_reload(at)
        elif priority == _MONTH:
            self.maybe_schedule_reload(at)
        else:
            assert isinstance(payload, Charge)
            if payload.amount_nanos < 0:
                self.credit(-payload.amount_nanos)
                return
            self.debit(payload.amount_nanos)
            self.maybe_schedule_reload(payload.end)

    def track(self, at: datetime, until: datetime) -> None:
        balance = self.balance
        r = self.result
        if r.lowest_at is None or balance < r.lowest_nanos:
            r.lowest_nanos, r.lowest_at = balance, at
        if balance <= 0 and r.first_zero_at is None:
            r.first_zero_at = at
        next_at = self.events[0][0] if self.events else until
        if balance <= 0:
            r.zero_seconds += max(0.0, (min(next_at, until) - at).total_seconds())


def walk(
    lots: Iterable[Lot],
    charges: Sequence[Charge],
    *,
    start: datetime,
    until: datetime,
    policy: ReloadPolicy | None = None,
    lot_lifetime: timedelta = DEFAULT_LOT_LIFETIME,
    reloaded_before: dict[tuple[int, int], int] | None = None,
    initial_deficit_nanos: int = 0,
    finish_pending_reload: bool = True,
) -> WalkResult:
    """Replay lots and charges from ``start`` to ``until`` (events at ``until`` excluded).

    A reload triggered before ``until`` is made even if its bucket ends after ``until`` (the
    live ledger: the bucket in progress), unless ``finish_pending_reload`` is False (a replay of
    a closed window, where such a reload belongs to the next window).
    ``reloaded_before`` counts reloads already made per month (for a walk that starts
    mid-month, e.g. the runway forecast). A negative charge is a credit back.
    """
    state = _Walk(policy, lot_lifetime)
    state.deficit = initial_deficit_nanos
    state.result.reloaded_by_month = dict(reloaded_before or {})
    state.schedule(lots, charges, start, until)
    # Lots bought before the walk starts (a replay from a later moment) are simply there at start.
    while state.events and state.events[0][0] < start:
        at, priority, _, payload = heapq.heappop(state.events)
        state.handle(at, priority, payload)
    if not state.events or state.events[0][0] > start:
        state.track(start, until)
    while state.events and state.events[0][0] < until:
        at, priority, _, payload = heapq.heappop(state.events)
        state.handle(at, priority, payload)
        state.track(at, until)
    if state.pending_reload and finish_pending_reload:
        # A reload that usage before ``until`` triggered lands at that bucket's end, even when
        # the end is later: the Console would not leave the balance below the threshold.
        due = next(at for at, priority, _, _ in sorted(state.events) if priority == _RELOAD)
        state.reload(due)
    result = state.result
    result.lots = list(state.lots.values())
    result.remaining = {key: state.remaining.get(key, 0) for key in state.lots}
    result.balance_nanos = state.balance
    return result
