"""Credit lots and the balance walk: purchases that expire, usage oldest-lot-first, auto-reload.

Anthropic exposes no balance, so the walk *is* the balance model. It is pure: given the lots
(starting balance, purchases), the usage charged per bucket and the reload policy, it replays
time in order and returns every derived event. The ledger books those events
(:mod:`service.store.credit_sync`), ``simulate`` replays stored usage under other policies, and the
runway forecast walks projected usage forward from now.

Rules, after the Console's billing:
- each lot expires ``lot_lifetime`` after purchase (a year by default); what is left of it then
  is removed by an expiry;
- usage consumes the oldest lot first; past the last lot the balance goes negative (the API
  would refuse calls: that time counts as time at zero);
- a negative charge is a credit back (reconciliation found the bill below the estimate): it
  undoes consumption in reverse, paying what was overdrawn first, then refilling the lots
  still held from the newest back, each up to what it was bought with (what is left after
  that stays with the newest lot); it triggers no reload;
- after each debit (usage or expiry), if the balance is strictly below the threshold and no
  reload is pending, one reload is scheduled at the end of that bucket and, when it happens,
  brings the balance to exactly the target;
- a monthly limit (calendar month, UTC) may shrink the reload or block it; a blocked or partial
  reload is an event of its own (a full block is recorded once per month, not per bucket).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from service.domain.periods import month_of, month_start, next_month_start

LotKind = Literal["opening", "purchase", "reload"]
DEFAULT_LOT_LIFETIME = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Lot:
    """Credits bought at ``at``; ``key`` identifies the lot across walks."""

    key: str
    kind: LotKind
    at: datetime
    amount_nanos: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Charge:
    """Usage cost of one bucket, charged at its start; a reload it triggers lands at its end.

    A negative amount is a credit back (a bill adjustment below the estimate).
    """

    start: datetime
    end: datetime
    amount_nanos: int


@dataclass(frozen=True, slots=True)
class ReloadPolicy:
    threshold_nanos: int
    target_nanos: int
    monthly_limit_nanos: int | None = None


@dataclass(frozen=True, slots=True)
class Reload:
    at: datetime
    wanted_nanos: int
    granted_nanos: int

    @property
    def blocked_nanos(self) -> int:
        return self.wanted_nanos - self.granted_nanos


@dataclass(frozen=True, slots=True)
class Expiry:
    at: datetime
    lot_key: str
    amount_nanos: int


@dataclass(frozen=True, slots=True)
class WalkCheckpoint:
    """The walk's state with every event before ``at`` applied: enough to resume it there.

    A walk resumed from a checkpoint and fed the lots and charges from ``at`` on gives what
    the walk from the start gives, except that its ``reloads``, ``blocked`` and ``expiries``
    are the ones from ``at`` on (the earlier ones were derived when the checkpoint was taken).
    ``lots`` is every lot added so far, in the order added; ``remaining`` holds the lots still
    held (not expired), in consumption order. ``cursor`` and ``scattered`` are the walk's
    consumption cursor as it was.
    """

    at: datetime
    lots: tuple[Lot, ...]
    remaining: tuple[tuple[str, int], ...]
    cursor: int
    scattered: bool
    deficit_nanos: int
    pending_reload_at: datetime | None
    blocked_month: tuple[int, int] | None
    reloaded_by_month: tuple[tuple[tuple[int, int], int], ...]
    lowest_nanos: int
    lowest_at: datetime | None
    first_zero_at: datetime | None
    zero_seconds: float


@dataclass
class WalkResult:
    """What happened between the walk's start and ``until``."""

    reloads: list[Reload] = field(default_factory=list)
    blocked: list[Reload] = field(default_factory=list)
    expiries: list[Expiry] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)
    remaining: dict[str, int] = field(default_factory=dict)
    balance_nanos: int = 0
    lowest_nanos: int = 0
    lowest_at: datetime | None = None
    zero_seconds: float = 0.0
    first_zero_at: datetime | None = None
    reloaded_by_month: dict[tuple[int, int], int] = field(default_factory=dict)
    checkpoints: list[WalkCheckpoint] = field(default_factory=list)

    @property
    def reloaded_nanos(self) -> int:
        return sum(r.granted_nanos for r in self.reloads)


# Event priorities at the same instant: credits arrive, then expiries, then a due reload (so
# one reload covers both a bucket's usage and an expiry at its end), then the month roll-over,
# then usage: a reload due at a bucket's end lands before the next bucket's usage.
_LOT, _EXPIRY, _RELOAD, _MONTH, _CHARGE = range(5)


class _Walk:
    """The walk's state. Held lots are kept in consumption order (oldest first) with a cursor at
    the first that is not empty, and the balance as a running total, so each event costs
    O(1) amortized instead of a sort and a sum over every lot (a year with thousands of
    reloads). Consumption oldest-first keeps the lots before the cursor empty; a credit refills
    from the newest back, so the lots after the cursor stay full."""

    def __init__(self, policy: ReloadPolicy | None, lifetime: timedelta) -> None:
        self.policy = policy
        self.lifetime = lifetime
        self.result = WalkResult()
        self.lots: dict[str, Lot] = {}
        self.remaining: dict[str, int] = {}
        self.order: list[tuple[datetime, str]] = []  # held lots, oldest first
        self.cursor = 0  # index in ``order`` of the first lot with credits left
        self.scattered = False  # a lot was ordered before the cursor: credits scan every lot
        self.held_nanos = 0  # sum of ``remaining``
        self.deficit = 0
        self.pending_reload = False
        self.blocked_month: tuple[int, int] | None = None
        self.events: list[tuple[datetime, int, int, object]] = []
        self.seq = 0

    @classmethod
    def resumed(
        cls, checkpoint: WalkCheckpoint, policy: ReloadPolicy | None, lifetime: timedelta
    ) -> _Walk:
        """The state a checkpoint froze, its pending events queued again in their old order."""
        state = cls(policy, lifetime)
        state.lots = {lot.key: lot for lot in checkpoint.lots}
        state.remaining = dict(checkpoint.remaining)
        state.order = [(state.lots[key].at, key) for key, _ in checkpoint.remaining]
        state.cursor, state.scattered = checkpoint.cursor, checkpoint.scattered
        state.held_nanos = sum(state.remaining.values())
        state.deficit = checkpoint.deficit_nanos
        state.blocked_month = checkpoint.blocked_month
        r = state.result
        r.reloaded_by_month = dict(checkpoint.reloaded_by_month)
        r.lowest_nanos, r.lowest_at = checkpoint.lowest_nanos, checkpoint.lowest_at
        r.first_zero_at, r.zero_seconds = checkpoint.first_zero_at, checkpoint.zero_seconds
        for lot in checkpoint.lots:  # expiries were queued as the lots were added
            if lot.key in state.remaining:
                state.push(lot.expires_at, _EXPIRY, lot.key)
        if checkpoint.pending_reload_at is not None:
            state.pending_reload = True
            state.push(checkpoint.pending_reload_at, _RELOAD, None)
        return state

    def checkpoint(self, at: datetime, until: datetime) -> WalkCheckpoint:
        """The state now, as of ``at`` (every event before it handled, none at or after it)."""
        r = self.result
        zero = r.zero_seconds
        if self.balance <= 0 and r.lowest_at is not None:
            # The last event counted its time at zero up to the next one: keep the part before
            # ``at``, the resumed walk counts the rest.
            next_at = self.events[0][0] if self.events else until
            zero -= max(0.0, (min(next_at, until) - at).total_seconds())
        pending = None
        if self.pending_reload:
            pending = min(when for when, priority, _, _ in self.events if priority == _RELOAD)
        return WalkCheckpoint(
            at=at,
            lots=tuple(self.lots.values()),
            remaining=tuple((key, self.remaining[key]) for _, key in self.order),
            cursor=self.cursor,
            scattered=self.scattered,
            deficit_nanos=self.deficit,
            pending_reload_at=pending,
            blocked_month=self.blocked_month,
            reloaded_by_month=tuple(sorted(r.reloaded_by_month.items())),
            lowest_nanos=r.lowest_nanos,
            lowest_at=r.lowest_at,
            first_zero_at=r.first_zero_at,
            zero_seconds=zero,
        )

    def push(self, at: datetime, priority: int, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, priority, self.seq, payload))

    @property
    def balance(self) -> int:
        return self.held_nanos - self.deficit

    def add_lot(self, lot: Lot) -> None:
        self.lots[lot.key] = lot
        paid = min(lot.amount_nanos, self.deficit)
        self.deficit -= paid
        left = lot.amount_nanos - paid
        self.remaining[lot.key] = left
        self.held_nanos += left
        place = bisect.bisect(self.order, (lot.at, lot.key))
        self.order.insert(place, (lot.at, lot.key))
        if place < self.cursor:
            # Ordered before lots already consumed from: the consumption order starts again
            # from it, and the lots after it are no longer all full.
            self.cursor = place
            self.scattered = True
        elif left < lot.amount_nanos:
            # It paid an overdraft: a lot with room after the cursor, where every lot should be
            # full, so a credit can no longer start at the cursor.
            self.scattered = True
        self.push(lot.expires_at, _EXPIRY, lot.key)

    def debit(self, amount: int) -> None:
        order, remaining = self.order, self.remaining
        while amount and self.cursor < len(order):
            key = order[self.cursor][1]
            take = min(amount, remaining[key])
            remaining[key] -= take
            self.held_nanos -= take
            amount -= take
            if remaining[key] == 0:
                self.cursor += 1
        self.deficit += amount

    def credit(self, amount: int) -> None:
        """Give back ``amount``: the overdraft first, then the lots last consumed."""
        paid = min(amount, max(self.deficit, 0))
        self.deficit -= paid
        amount -= paid
        if not self.order:
            if amount:
                self.deficit -= amount  # no lot held at all: a surplus that nothing expires
            return
        # Lots after the cursor are full (consumed oldest first, refilled newest first):
        # refilling starts at the cursor's lot and goes back to older ones.
        index = len(self.order) - 1 if self.scattered else min(self.cursor, len(self.order) - 1)
        while amount and index >= 0:
            key = self.order[index][1]
            give = min(amount, max(self.lots[key].amount_nanos - self.remaining[key], 0))
            if give:
                self.remaining[key] += give
                self.held_nanos += give
                amount -= give
                self.cursor = min(self.cursor, index)
            index -= 1
        if amount:
            newest = self.order[-1][1]
            self.remaining[newest] += amount
            self.held_nanos += amount
            self.cursor = min(self.cursor, len(self.order) - 1)

    def expire(self, at: datetime, key: str) -> None:
        if key not in self.remaining:
            return
        left = self.remaining.pop(key)
        self.held_nanos -= left
        place = bisect.bisect_left(self.order, (self.lots[key].at, key))
        del self.order[place]
        if place < self.cursor:
            self.cursor -= 1
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
        self,
        lots: Iterable[Lot],
        charges: Sequence[Charge],
        start: datetime,
        until: datetime,
        *,
        resumed: bool = False,
    ) -> None:
        for lot in lots:
            if not resumed or lot.at >= start:
                self.push(lot.at, _LOT, lot)
        for charge in charges:
            if not resumed or charge.start >= start:
                self.push(charge.start, _CHARGE, charge)
        if self.policy is None:
            return
        month = next_month_start(start)
        if resumed:
            if month_start(start) == start:
                month = start  # the month begins at the checkpoint: its event is still due
        else:
            # A walk that starts below the threshold (a low starting balance) reloads at once.
            self.push(start, _MONTH, None)
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
    resume: WalkCheckpoint | None = None,
    capture: Iterable[datetime] = (),
) -> WalkResult:
    """Replay lots and charges from ``start`` to ``until`` (events at ``until`` excluded).

    A reload triggered before ``until`` is made even if its bucket ends after ``until`` (the
    live ledger: the bucket in progress), unless ``finish_pending_reload`` is False (a replay of
    a closed window, where such a reload belongs to the next window).
    ``reloaded_before`` counts reloads already made per month (for a walk that starts
    mid-month, e.g. the runway forecast). A negative charge is a credit back.

    ``resume`` starts from a checkpoint instead (``start``, ``reloaded_before`` and
    ``initial_deficit_nanos`` are then its own): lots and charges before its instant are
    already in it and are skipped. ``capture`` names instants after the start and up to
    ``until`` to take checkpoints at (``result.checkpoints``, in time order).
    """
    if resume is not None:
        state = _Walk.resumed(resume, policy, lot_lifetime)
        start = resume.at
    else:
        state = _Walk(policy, lot_lifetime)
        state.deficit = initial_deficit_nanos
        state.result.reloaded_by_month = dict(reloaded_before or {})
    state.schedule(lots, charges, start, until, resumed=resume is not None)
    planned = sorted({at for at in capture if start < at <= until}, reverse=True)
    # Lots bought before the walk starts (a replay from a later moment) are simply there at start.
    while state.events and state.events[0][0] < start:
        at, priority, _, payload = heapq.heappop(state.events)
        state.handle(at, priority, payload)
    if not state.events or state.events[0][0] > start:
        state.track(start, until)
    while state.events and state.events[0][0] < until:
        while planned and planned[-1] <= state.events[0][0]:
            state.result.checkpoints.append(state.checkpoint(planned.pop(), until))
        at, priority, _, payload = heapq.heappop(state.events)
        state.handle(at, priority, payload)
        state.track(at, until)
    while planned:
        state.result.checkpoints.append(state.checkpoint(planned.pop(), until))
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
