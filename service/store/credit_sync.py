"""Books what the balance walk derives: auto-reloads, expiries and blocked reloads.

Derived entries are a function of the stored facts (starting balance, purchases, charged usage)
and the credit terms, so each sync recomputes the walk and books only the difference: re-running
a cycle over the same data books nothing, and a bucket that grows late moves or resizes the
reload it triggered instead of adding a second one. The walk resumes from a checkpoint
(:mod:`service.store.walk_checkpoints`), so a sync reads the charges since it, not since the
starting balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.billing import ADJUSTMENT_SPAN
from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import Charge, Lot, LotKind, WalkResult, walk
from service.domain.usage import BUCKET_SECONDS
from service.store.balance import purchases
from service.store.bills import adjustment_charges
from service.store.ledger_entries import opening_entry
from service.store.stored_settings import store_value, stored_value
from service.store.tables import LEDGER, USAGE, ReloadBlock
from service.store.walk_checkpoints import (
    checkpoint_plan,
    forget_checkpoints,
    settle_changes,
    store_checkpoints,
    usable_checkpoint,
    walk_basis,
)

TERMS_SETTING = "credit_terms"


def booked_terms(session: Session) -> CreditTerms | None:
    """The terms the derived entries were last booked under (by `once` or the daemon)."""
    stored = stored_value(session, TERMS_SETTING)
    return CreditTerms.from_json(stored) if stored else None


def ledger_terms(session: Session, configured: CreditTerms) -> CreditTerms:
    """What reading commands use: the booked terms, so a shell with other settings still sees
    the balance the ledger holds; the configured terms before anything was booked."""
    return booked_terms(session) or configured


def stated_lots(session: Session, lifetime: timedelta) -> list[Lot]:
    """The starting balance and each purchase after it as lots, oldest first."""
    lots = []
    opening = opening_entry(session)
    for entry in purchases(session):
        if opening is not None and entry.kind == "purchase" and entry.at < opening.at:
            continue  # already part of the starting balance
        kind: LotKind = "opening" if entry.kind == "opening" else "purchase"
        lots.append(
            Lot(
                key="opening" if kind == "opening" else f"purchase:{entry.id}",
                kind=kind,
                at=entry.at,
                amount_nanos=entry.amount_nanos,
                expires_at=entry.expires_at or entry.at + lifetime,
            )
        )
    return lots


def bucket_charges(
    session: Session,
    width: str,
    *,
    charged_only: bool = True,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Charge]:
    """Usage cost per bucket in time order: charged cost, or all cost (for what-if replays).

    The bill adjustments are charges too, each over the last hour of its day (negative when the
    bill was below the estimate: a credit back), after a usage bucket that starts with it.
    """
    amount = USAGE.c.charged_nanos if charged_only else USAGE.c.cost_nanos
    statement = select(USAGE.c.bucket_start, func.sum(amount)).where(USAGE.c.bucket_width == width)
    if since is not None:
        statement = statement.where(USAGE.c.bucket_start >= since)
    if until is not None:
        statement = statement.where(USAGE.c.bucket_start < until)
    step = timedelta(seconds=BUCKET_SECONDS[width])
    rows = session.execute(statement.group_by(USAGE.c.bucket_start).order_by(USAGE.c.bucket_start))
    usage = [Charge(start, start + step, int(total)) for start, total in rows if int(total) > 0]
    adjustments = [
        Charge(at, at + ADJUSTMENT_SPAN, amount)
        for at, amount in adjustment_charges(session, since, until)
    ]
    if not adjustments:
        return usage
    return sorted(usage + adjustments, key=lambda charge: charge.start)


def current_walk(
    session: Session, width: str, terms: CreditTerms, now: datetime
) -> WalkResult | None:
    """The walk to ``now`` from the starting balance; None without one.

    It resumes from the newest checkpoint still true (:mod:`service.store.walk_checkpoints`),
    so its ``reloads``, ``blocked`` and ``expiries`` are those from ``since`` on; everything
    else (balance, lots, what is left of each, reloads per month) is the whole walk's. Reads
    only: the booking walk (:func:`sync_credits`) keeps the checkpoints.
    """
    walked = _resumed_walk(session, width, terms, now, capture=False)
    return walked[0] if walked is not None else None


def _resumed_walk(
    session: Session, width: str, terms: CreditTerms, now: datetime, *, capture: bool
) -> tuple[WalkResult, datetime | None, str] | None:
    """The walk, the instant it resumed from (None: the start) and its basis."""
    opening = opening_entry(session)
    if opening is None:
        return None
    basis = walk_basis(opening, terms, width)
    if capture:
        settle_changes(session, width, basis)
    resume = usable_checkpoint(session, width, basis, now)
    since = resume.at if resume is not None else None
    result = walk(
        stated_lots(session, terms.lifetime),
        bucket_charges(session, width, since=since),
        start=opening.at,
        until=now,
        policy=terms.policy,
        lot_lifetime=terms.lifetime,
        resume=resume,
        capture=checkpoint_plan(now) if capture else (),
    )
    return result, since, basis


def sync_credits(
    session: Session,
    width: str,
    configured: CreditTerms,
    now: datetime,
    *,
    authoritative: bool = True,
) -> WalkResult | None:
    """Make the booked reloads, expiries and blocked reloads match the walk. Flushes only.

    ``authoritative`` (`once`, the daemon) books under the ``configured`` terms and records
    them; a side command such as `credits add` keeps the terms the ledger was booked under.
    The walk resumes from a checkpoint: what it derived before that is booked already, so
    only entries from then on are compared. The checkpoints it takes are stored.
    """
    terms = configured if authoritative else ledger_terms(session, configured)
    if authoritative:
        store_value(session, TERMS_SETTING, terms.to_json(), now)
    walked = _resumed_walk(session, width, terms, now, capture=True)
    result, since = (walked[0], walked[1]) if walked is not None else (None, None)
    reloads = [] if result is None else result.reloads
    expiries = [] if result is None else result.expiries
    blocked = [] if result is None else result.blocked
    _sync_entries(
        session,
        "reload",
        [(r.at, r.granted_nanos, _reload_note(r.granted_nanos, r.wanted_nanos)) for r in reloads],
        now,
        since,
    )
    _sync_entries(
        session,
        "expiry",
        [(e.at, -e.amount_nanos, f"expired: what was left of {e.lot_key}") for e in expiries],
        now,
        since,
    )
    _sync_blocks(session, [(b.at, b.wanted_nanos, b.granted_nanos) for b in blocked], now, since)
    if walked is not None:
        store_checkpoints(session, width, walked[2], walked[0].checkpoints, now)
    else:
        forget_checkpoints(session)  # every derived entry is gone with the starting balance
    return result


def booked_reloads(session: Session, since: datetime) -> list[tuple[datetime, int]]:
    """The simulated reloads booked from ``since`` on: (when, nano-USD granted)."""
    rows = session.execute(
        select(LEDGER.c.at, LEDGER.c.amount_nanos)
        .where(LEDGER.c.kind == "reload", LEDGER.c.at >= since)
        .order_by(LEDGER.c.at)
    )
    return [(at, int(amount)) for at, amount in rows]


def _reload_note(granted: int, wanted: int) -> str:
    if granted == wanted:
        return "auto-reload (simulated)"
    return "auto-reload (simulated), cut by the monthly limit"


def _sync_entries(
    session: Session,
    kind: str,
    derived: Sequence[tuple[datetime, int, str]],
    now: datetime,
    since: datetime | None,
) -> None:
    statement = select(LEDGER.c.id, LEDGER.c.at, LEDGER.c.amount_nanos, LEDGER.c.note).where(
        LEDGER.c.kind == kind
    )
    if since is not None:
        statement = statement.where(LEDGER.c.at >= since)
    booked = session.execute(statement).all()
    wanted: dict[tuple[datetime, int, str], int] = {}
    for item in derived:
        wanted[item] = wanted.get(item, 0) + 1
    stale: list[int] = []
    for entry_id, at, amount, note in booked:
        key = (at, amount, note)
        if wanted.get(key, 0) > 0:
            wanted[key] -= 1
        else:
            stale.append(entry_id)
    if stale:
        session.execute(delete(LEDGER).where(LEDGER.c.id.in_(stale)))
    rows: list[dict[str, Any]] = [
        {"kind": kind, "at": at, "amount_nanos": amount, "note": note, "created_at": now}
        for (at, amount, note), count in wanted.items()
        for _ in range(count)
    ]
    if rows:
        session.execute(insert(LEDGER), rows)


def _sync_blocks(
    session: Session,
    derived: Sequence[tuple[datetime, int, int]],
    now: datetime,
    since: datetime | None,
) -> None:
    statement = select(
        col(ReloadBlock.id),
        col(ReloadBlock.at),
        col(ReloadBlock.wanted_nanos),
        col(ReloadBlock.granted_nanos),
    )
    if since is not None:
        statement = statement.where(col(ReloadBlock.at) >= since)
    rows = session.execute(statement)
    booked = {(at, wanted, granted): block_id for block_id, at, wanted, granted in rows}
    keep = set(derived)
    stale = [block_id for key, block_id in booked.items() if key not in keep]
    if stale:
        session.execute(delete(ReloadBlock).where(col(ReloadBlock.id).in_(stale)))
    for at, wanted, granted in keep - booked.keys():
        session.add(ReloadBlock(at=at, wanted_nanos=wanted, granted_nanos=granted, created_at=now))
    session.flush()
