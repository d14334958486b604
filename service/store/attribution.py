"""Usage attributed to actors and products (the Analytics API's ``actor`` and ``product``).

Kept beside the ledger, not in it: the balance is charged from ``usage``; these rows are
another cut of the same spend, read by budgets scoped by ``actor`` or ``product`` and by
``report --by actor|product``. Rows merge like usage rows (counts by field-wise maximum, the
bill when one comes, the estimate until then); ``""`` stores a null.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from service.domain.usage import AttributedRow, AttributionKey, BucketWidth
from service.store.names import save_names
from service.store.tables import ATTRIBUTED
from service.store.usage_booking import (
    COUNT_FIELDS,
    REPRICE_BATCH,
    Pricer,
    bill_after,
    billed_of,
    counts_of,
    price_with_bill,
    stored_rows,
)

ACTOR_NAMES = "actor"
"""The ``entity_name`` kind of actors' display names."""
KEY_FIELDS = ("actor", "product", "model", "service_tier", "context_window")
NAMED_ID_MAX = 200
"""The longest id ``entity_name`` holds: a longer actor id (a federated subject) goes unnamed."""

DbKey = tuple[datetime, str, str, str, str, str, str]
MERGE_COLUMNS = (*COUNT_FIELDS, "cost_nanos", "billed_nanos", "list_nanos")
"""What a booking reads of a stored row to merge a re-read into it, after its id and key."""


def _db_key(key: AttributionKey) -> DbKey:
    return (
        key.bucket_start,
        key.bucket_width,
        key.actor or "",
        key.product or "",
        key.model or "",
        key.service_tier or "",
        key.context_window or "",
    )


def _merge(rows: Iterable[AttributedRow]) -> dict[AttributionKey, AttributedRow]:
    merged: dict[AttributionKey, AttributedRow] = {}
    for row in rows:
        seen = merged.get(row.key)
        merged[row.key] = (
            row
            if seen is None
            else AttributedRow(
                row.key,
                seen.counts.merge_max(row.counts),
                row.billed or seen.billed,
                row.actor_name or seen.actor_name,
            )
        )
    return merged


def book_attribution(
    session: Session, rows: Sequence[AttributedRow], price: Pricer, *, now: datetime
) -> int:
    """Upsert ``rows``; returns how many were new or changed. Flushes; never commits."""
    merged = _merge(rows)
    if not merged:
        return 0
    _save_actor_names(session, merged.values(), now)
    existing = _load_existing(session, merged)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, fetched in merged.items():
        record = existing.get(_db_key(key))
        counts = fetched.counts if record is None else counts_of(record).merge_max(fetched.counts)
        billed = bill_after(fetched.billed, record, counts)
        if record is not None and counts == counts_of(record) and billed == billed_of(record):
            continue
        priced = price_with_bill(price, key.usage_key(), counts, billed)
        values: dict[str, Any] = {name: getattr(counts, name) for name in COUNT_FIELDS}
        values.update(
            cost_nanos=priced.cost_nanos,
            estimated=priced.estimated,
            billed_nanos=billed.amount_nanos if billed else None,
            list_nanos=billed.list_nanos if billed else None,
            updated_at=now,
        )
        if record is None:
            db_key = _db_key(key)
            values.update(bucket_start=db_key[0], bucket_width=db_key[1])
            values.update(zip(KEY_FIELDS, db_key[2:], strict=True))
            values["actor_type"] = key.actor_type or ""
            inserts.append(values)
        else:
            values["_id"] = record.id
            updates.append(values)
    if inserts:
        session.execute(insert(ATTRIBUTED), inserts)
    if updates:
        columns = [name for name in updates[0] if name != "_id"]
        statement = (
            update(ATTRIBUTED)
            .where(ATTRIBUTED.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        session.connection().execute(statement, updates)
    return len(inserts) + len(updates)


def _save_actor_names(session: Session, rows: Iterable[AttributedRow], now: datetime) -> None:
    names = {
        row.key.actor: row.actor_name
        for row in rows
        if row.key.actor and row.actor_name and len(row.key.actor) <= NAMED_ID_MAX
    }
    if names:
        save_names(session, ACTOR_NAMES, names, now)


def _load_existing(session: Session, keys: Iterable[AttributionKey]) -> dict[DbKey, Any]:
    spans = [(key.bucket_width, key.bucket_start) for key in keys]
    return cast(
        "dict[DbKey, Any]", stored_rows(session, ATTRIBUTED, spans, KEY_FIELDS, MERGE_COLUMNS)
    )


@dataclass(frozen=True, slots=True)
class AttributedSpend:
    """Spend of one (actor, product, model) in a window; ``before`` up to a cut inside it."""

    actor: str
    actor_type: str
    product: str
    model: str
    cost_nanos: int
    before_nanos: int


def spend_by_attribution(
    session: Session,
    width: BucketWidth,
    start: datetime,
    end: datetime,
    *,
    cut: datetime | None = None,
) -> list[AttributedSpend]:
    """Cost by actor, product and model for buckets starting in ``[start, end)``."""
    a = ATTRIBUTED
    before = (
        a.c.cost_nanos if cut is None else case((a.c.bucket_start < cut, a.c.cost_nanos), else_=0)
    )
    groups = (a.c.actor, a.c.actor_type, a.c.product, a.c.model)
    rows = session.execute(
        select(*groups, func.sum(a.c.cost_nanos), func.sum(before))
        .where(a.c.bucket_width == width, a.c.bucket_start >= start, a.c.bucket_start < end)
        .group_by(*groups)
    )
    return [
        AttributedSpend(str(actor), str(kind), str(product), str(model), int(cost), int(early))
        for actor, kind, product, model, cost, early in rows
    ]


def has_attribution(session: Session, width: BucketWidth) -> bool:
    """Whether any usage was attributed (collected from the Analytics API)."""
    statement = select(ATTRIBUTED.c.id).where(ATTRIBUTED.c.bucket_width == width).limit(1)
    return session.execute(statement).first() is not None


def reprice_attribution(session: Session, price: Pricer, *, now: datetime) -> int:
    """Price every attributed row again (the price book changed); bills stay. Returns how many
    changed. Flushes; never commits."""
    a = ATTRIBUTED
    columns = [a.c.id, a.c.bucket_start, a.c.bucket_width, a.c.model, a.c.service_tier]
    columns += [a.c.context_window, *(a.c[name] for name in COUNT_FIELDS)]
    columns += [a.c.cost_nanos, a.c.estimated, a.c.billed_nanos, a.c.list_nanos]
    updates: list[dict[str, Any]] = []
    for row in session.execute(select(*columns).execution_options(yield_per=REPRICE_BATCH)):
        key = AttributionKey(
            row.bucket_start,
            row.bucket_width,
            None,
            None,
            None,
            row.model or None,
            row.service_tier or None,
            row.context_window or None,
        )
        priced = price_with_bill(price, key.usage_key(), counts_of(row), billed_of(row))
        if (priced.cost_nanos, bool(priced.estimated)) != (row.cost_nanos, bool(row.estimated)):
            updates.append(
                {
                    "_id": row.id,
                    "cost_nanos": priced.cost_nanos,
                    "estimated": priced.estimated,
                    "updated_at": now,
                }
            )
    if updates:
        statement = (
            update(ATTRIBUTED)
            .where(ATTRIBUTED.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in ("cost_nanos", "estimated", "updated_at")})
        )
        session.connection().execute(statement, updates)
    return len(updates)


def known_products(session: Session) -> frozenset[str]:
    """Every product attributed usage names ("" left out)."""
    statement = select(ATTRIBUTED.c.product).distinct()
    return frozenset(str(p) for p in session.scalars(statement) if p)
