"""Builds the facts the rules read, from the ledger, in the caller's transaction.

The budgets' spend comes from one grouped query per distinct period (budgets sharing a period
and time zone share it); scopes are matched in memory. A scoped budget's projection is its
spend so far plus its share of the organization's expected spend for the hours left.

Bill adjustments (reconciliation) are spend of the day they adjust, booked at the start of its
last hour: they count toward budgets of the whole organization and of a workspace; budgets
scoped to an API key or a model stay on the estimate, since the bill names no key and the
adjustment is one amount per day and workspace.

Budgets scoped by ``actor`` or ``product`` read the usage the Analytics API attributes
(``attributed_usage``: the hourly bill where there is one, the estimate until then; no bill
adjustment, which names no actor). Their drivers are actors, products and models; the
organization's budgets and the spike add the top actors to their drivers when there are any.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.alerts.facts import (
    BudgetFacts,
    ChannelFailure,
    CollectionFacts,
    ConfigRefusal,
    DriftFacts,
    DriftLine,
    ExpiringLot,
    Facts,
    ReloadBlockFact,
    SpikeFacts,
)
from service.alerts.model import Dimension, Driver, Freshness, Situation
from service.domain.credit_walk import WalkResult
from service.domain.forecast import NotEnoughHistory, SpendProfile
from service.domain.model_ids import belongs_to
from service.domain.names import NO_PRODUCT, NULL_ALIASES, actor_display, display_name
from service.domain.periods import Period, floor_to_bucket, month_start, period_at
from service.domain.usage import BUCKET_SECONDS
from service.runtime.delivery import CHANNEL_RETRYING_ALERT
from service.runtime.outlook import History, recent_history, runway_of
from service.settings import Settings
from service.settings.rules import BudgetRule
from service.store.attribution import (
    ACTOR_NAMES,
    AttributedSpend,
    known_products,
    spend_by_attribution,
)
from service.store.balance import balance_nanos
from service.store.bills import (
    BILL_ADJUSTMENT,
    RECHECK_DAYS,
    adjustment_spend,
    recent_reconciled_days,
)
from service.store.credit_sync import current_walk, ledger_terms
from service.store.names import load_names
from service.store.outbox import channel_health
from service.store.tables import CollectionState, ReloadBlock, UnknownModel
from service.store.usage_queries import ScopedSpend, latest_bucket_start, spend_by_dimensions

HOUR = timedelta(hours=1)
TOP_DRIVERS = 3


class Names:
    """Display names of keys, workspaces and actors, and scope matching by id or by name."""

    def __init__(self, session: Session) -> None:
        self.api_keys = load_names(session, "api_key")
        self.workspaces = load_names(session, "workspace")
        self.actors = load_names(session, ACTOR_NAMES)
        self._resolved: dict[tuple[int, str], frozenset[str]] = {}
        self._session = session
        self._products: frozenset[str] | None = None

    def products(self) -> frozenset[str]:
        """The products attributed usage names (read once, when a scope asks)."""
        if self._products is None:
            self._products = known_products(self._session)
        return self._products

    def of(self, dimension: Dimension, value: str) -> str:
        if dimension == "workspace":
            return display_name("workspace", value, self.workspaces)
        if dimension == "api_key":
            return display_name("api_key", value, self.api_keys)
        if dimension == "actor":
            return actor_display(value, self.actors, self.api_keys)
        if dimension == "product":
            return value or NO_PRODUCT
        return value

    def attributed_matcher(self, rule: BudgetRule) -> Callable[[AttributedSpend], bool]:
        """Whether attributed spend is in the budget's scope (actor, product, model)."""
        models = [value for key, value in rule.scope if key == "model"]
        products = [value for key, value in rule.scope if key == "product"]
        actors = [self.actor_ids(value) for key, value in rule.scope if key == "actor"]

        def matches(row: AttributedSpend) -> bool:
            return (
                all(belongs_to(row.model, model) for model in models)
                and all(row.product == product for product in products)
                and all(row.actor in ids for ids in actors)
            )

        return matches

    def actor_ids(self, wanted: str) -> frozenset[str]:
        """The actors a scope value names: the id, or every actor whose name, e-mail address or
        ``Name <e-mail>`` it is (case-insensitive), or every API key actor of that key name."""
        cached = self._resolved.get((id(self.actors), wanted))
        if cached is not None:
            return cached
        folded = wanted.casefold()
        ids = {wanted}
        for actor, name in self.actors.items():
            person, _, address = name.partition(" <")
            if folded in (name.casefold(), person.casefold(), address.rstrip(">").casefold()):
                ids.add(actor)
        ids |= {key for key, name in self.api_keys.items() if name.casefold() == folded}
        found = frozenset(ids)
        self._resolved[(id(self.actors), wanted)] = found
        return found

    def matcher(self, rule: BudgetRule) -> Callable[[ScopedSpend], bool]:
        """Whether a row is in the budget's scope (every scope key must match)."""
        models = [value for key, value in rule.scope if key == "model"]
        workspaces = [self.ids("workspace", v) for key, v in rule.scope if key == "workspace"]
        keys = [self.ids("api_key", v) for key, v in rule.scope if key == "api_key"]

        def matches(row: ScopedSpend) -> bool:
            return (
                all(belongs_to(row.model, model) for model in models)
                and all(row.workspace_id in ids for ids in workspaces)
                and all(row.api_key_id in ids for ids in keys)
            )

        return matches

    def unknown_scope(self, rule: BudgetRule) -> list[str]:
        """The scope's ``workspace=``, ``api_key=``, ``actor=`` and ``product=`` values that
        name nothing known here (a name changed upstream, a typo such as ``claude-code``): such
        a budget matches no usage. Empty while nothing of that kind was ever seen."""
        unknown = []
        for key, value in rule.scope:
            if key == "product":
                if self.products() and value not in self.products():
                    unknown.append(f"product={value}")
                continue
            if key == "actor" and self.actors and self.actor_ids(value) == {value}:
                if value not in self.actors and value not in self.api_keys:
                    unknown.append(f"actor={value}")
                continue
            if key not in ("workspace", "api_key"):
                continue
            known = self.workspaces if key == "workspace" else self.api_keys
            if known and self.ids(key, value) == {value} and value not in known:
                unknown.append(f"{key}={value}")
        return unknown

    def ids(self, dimension: Dimension, wanted: str) -> frozenset[str]:
        """The ids a scope value names: the id itself, or every id with that name."""
        if dimension == "workspace":
            return self._ids(wanted, self.workspaces, NULL_ALIASES["workspace"])
        return self._ids(wanted, self.api_keys, NULL_ALIASES["api_key"])

    def _ids(
        self, wanted: str, names: dict[str, str], null_names: tuple[str, ...]
    ) -> frozenset[str]:
        cached = self._resolved.get((id(names), wanted))
        if cached is not None:
            return cached
        folded = wanted.casefold()
        ids = {wanted} | {i for i, name in names.items() if name.casefold() == folded}
        if folded in null_names:
            ids.add("")
        self._resolved[(id(names), wanted)] = frozenset(ids)
        return frozenset(ids)


class PeriodSpend:
    """One period's spend by (workspace, key, model), indexed so that a thousand budgets
    scoped to one key or workspace each read only their own rows."""

    def __init__(
        self, period: Period, rows: list[ScopedSpend], attributed: list[AttributedSpend]
    ) -> None:
        self.period = period
        self.rows = rows
        self.attributed = attributed
        self.by: dict[Dimension, dict[str, list[ScopedSpend]]] = {
            "workspace": defaultdict(list),
            "api_key": defaultdict(list),
            "model": defaultdict(list),
        }
        for row in rows:
            self.by["workspace"][row.workspace_id].append(row)
            self.by["api_key"][row.api_key_id].append(row)
            self.by["model"][row.model].append(row)

    def scoped(self, rule: BudgetRule, names: Names) -> list[ScopedSpend]:
        """The rows in the budget's scope: the narrowest index first, then every scope key."""
        if not rule.scope:
            return self.rows
        keys = dict(rule.scope)
        if "api_key" in keys:
            candidates = self._union("api_key", names.ids("api_key", keys["api_key"]))
        elif "workspace" in keys:
            candidates = self._union("workspace", names.ids("workspace", keys["workspace"]))
        else:
            models = [m for m in self.by["model"] if belongs_to(m, keys["model"])]
            candidates = self._union("model", models)
        matches = names.matcher(rule)
        return [row for row in candidates if matches(row)]

    def scoped_attributed(self, rule: BudgetRule, names: Names) -> list[AttributedSpend]:
        matches = names.attributed_matcher(rule)
        return [row for row in self.attributed if matches(row)]

    def _union(self, dimension: Dimension, values: Iterable[str]) -> list[ScopedSpend]:
        index = self.by[dimension]
        return [row for value in values for row in index.get(value, ())]


def build_facts(
    session: Session,
    settings: Settings,
    now: datetime,
    walked: WalkResult | None = None,
    *,
    config_refused: ConfigRefusal | None = None,
) -> Facts:
    """Everything the configured rules read, as of ``now``."""
    rules = settings.rules
    width = settings.collection.bucket_width
    terms = ledger_terms(session, settings.ledger.credit_terms())
    if walked is None:
        walked = current_walk(session, width, terms, now)
    needs_history = (
        rules.runway is not None
        or rules.spike is not None
        or any(b.forecast_percents for b in rules.budgets)
    )
    history = recent_history(session, settings, now) if needs_history else None
    runway = runway_of(walked, history.profile, terms, now) if history and rules.runway else None
    state = session.get(CollectionState, width)
    bucket = timedelta(seconds=BUCKET_SECONDS[width])
    newest = state.newest_bucket_start if state else None
    if newest is None:
        newest = latest_bucket_start(session, width)
    situation = Situation(
        now=now,
        balance_nanos=balance_nanos(session),
        runway_until=runway.until if runway else None,
        runway_note=runway.note if runway else "no runway rule",
        freshness=Freshness(newest, state.last_success_at if state else None),
    )
    names = Names(session)
    return Facts(
        situation=situation,
        budgets=tuple(_budgets(session, settings, now, names, history)),
        spike=_spike(session, settings, now, names, history),
        collection=(
            CollectionFacts(
                failing_since=state.failing_since,
                last_error=state.last_error,
                last_success_at=state.last_success_at,
                newest_bucket_start=state.newest_bucket_start,
                bucket=bucket,
            )
            if state is not None
            else None
        ),
        unknown_models=tuple(
            (u.model, u.priced_as)
            for u in session.scalars(select(UnknownModel).order_by(col(UnknownModel.model)))
        ),
        reload_blocks=tuple(
            ReloadBlockFact(b.at, b.wanted_nanos, b.granted_nanos)
            for b in session.scalars(
                select(ReloadBlock)
                .where(col(ReloadBlock.at) >= month_start(now), col(ReloadBlock.at) <= now)
                .order_by(col(ReloadBlock.at))
            )
        ),
        month_label=f"{month_start(now):%Y-%m}",
        expiring_lots=tuple(_expiring(walked, now, rules.expiry_warning)),
        channels=settings.channels.names,
        config_refused=config_refused,
        failing_channels=tuple(
            ChannelFailure(h.name, h.reason, h.since, h.error)
            for h in channel_health(
                session, settings.channels.names, now, CHANNEL_RETRYING_ALERT
            ).values()
            if h.failing
        ),
        drift=_drift(session),
    )


def _drift(session: Session) -> tuple[DriftFacts, ...]:
    """The days of the re-check window (a catch-up run adjusts several at once; a revised bill
    changes one of the last few), oldest first."""
    return tuple(
        DriftFacts(
            day=day.day,
            billed_nanos=day.billed_nanos,
            estimated_nanos=day.estimated_nanos,
            priority_nanos=day.priority_nanos,
            lines=tuple(DriftLine(*line) for line in day.lines),
        )
        for day in recent_reconciled_days(session, RECHECK_DAYS)
    )


def budget_facts(
    session: Session, settings: Settings, now: datetime, history: History | None = None
) -> list[BudgetFacts]:
    """The budgets alone (for `status`)."""
    return _budgets(session, settings, now, Names(session), history)


def _budgets(
    session: Session,
    settings: Settings,
    now: datetime,
    names: Names,
    history: History | None,
) -> list[BudgetFacts]:
    width = settings.collection.bucket_width
    profile = history.profile if history else None
    by_period: dict[tuple[str, str], PeriodSpend] = {}
    out = []
    for rule in settings.rules.budgets:
        key = (rule.period, rule.tz)
        if key not in by_period:
            period = period_at(rule.period, rule.tz, now)
            cut = profile.as_of if isinstance(profile, SpendProfile) else None
            rows = spend_by_dimensions(session, width, period.start, period.end, cut=cut)
            rows += adjustment_spend(session, period.start, period.end, cut=cut)
            attributed = spend_by_attribution(session, width, period.start, period.end, cut=cut)
            by_period[key] = PeriodSpend(period, rows, attributed)
        spend = by_period[key]
        period = spend.period
        found: Sequence[Spend]
        everything: Sequence[Spend]
        if rule.attributed:
            scoped_people = spend.scoped_attributed(rule, names)
            found, everything = scoped_people, spend.attributed
            named = attributed_drivers(scoped_people, names, ("actor", "product", "model"))
        else:
            scoped = spend.scoped(rule, names)
            found, everything = scoped, spend.rows
            named = drivers(scoped, names)
            if not rule.scope:
                named += attributed_drivers(spend.attributed, names, ("actor",))
        spent = sum(row.cost_nanos for row in found)
        projected, note = _projection(rule, period, everything, found, profile)
        out.append(
            BudgetFacts(
                rule=rule,
                period=period,
                spent_nanos=spent,
                projected_nanos=projected,
                projection_note=note,
                drivers=tuple(named),
            )
        )
    return out


class Spend(Protocol):
    """A share of a period's spend: in all, and before the forecast's cut."""

    @property
    def cost_nanos(self) -> int: ...

    @property
    def before_nanos(self) -> int: ...


def _projection(
    rule: BudgetRule,
    period: Period,
    rows: Sequence[Spend],
    scoped: Sequence[Spend],
    profile: SpendProfile | NotEnoughHistory | None,
) -> tuple[int | None, str | None]:
    if not rule.forecast_percents:
        return None, None
    if profile is None:
        return None, "no history read"
    if isinstance(profile, NotEnoughHistory):
        return None, profile.reason
    before = sum(row.before_nanos for row in scoped)
    org_before = sum(row.before_nanos for row in rows)
    expected = profile.spend_between(max(profile.as_of, period.start), period.end)
    if org_before == 0:
        # Nothing spent before the profile's cut this period: share by what there is.
        total, org_total = sum(r.cost_nanos for r in scoped), sum(r.cost_nanos for r in rows)
        share_of = (total, org_total) if org_total else (1, 1)
    else:
        share_of = (before, org_before)
    return before + expected * share_of[0] // share_of[1], None


def drivers(rows: Iterable[ScopedSpend], names: Names) -> list[Driver]:
    """The top spenders by model, API key and workspace among ``rows``."""
    totals: dict[tuple[Dimension, str], int] = defaultdict(int)
    for row in rows:
        totals[("workspace", row.workspace_id)] += row.cost_nanos
        if row.model == BILL_ADJUSTMENT:
            continue  # neither a key nor a model: an adjustment is per day and workspace
        totals[("model", row.model)] += row.cost_nanos
        totals[("api_key", row.api_key_id)] += row.cost_nanos
    return _top(totals, names, ("model", "api_key", "workspace"))


def attributed_drivers(
    rows: Iterable[AttributedSpend], names: Names, dimensions: tuple[Dimension, ...]
) -> list[Driver]:
    """The top spenders among attributed rows: people (actors), products, models."""
    totals: dict[tuple[Dimension, str], int] = defaultdict(int)
    for row in rows:
        totals[("actor", row.actor)] += row.cost_nanos
        totals[("product", row.product)] += row.cost_nanos
        totals[("model", row.model)] += row.cost_nanos
    return _top(totals, names, dimensions)


def _top(
    totals: dict[tuple[Dimension, str], int], names: Names, dimensions: tuple[Dimension, ...]
) -> list[Driver]:
    found = []
    for dimension in dimensions:
        ranked = sorted(
            ((value, amount) for (dim, value), amount in totals.items() if dim == dimension),
            key=lambda item: (-item[1], item[0]),
        )
        found += [
            Driver(dimension, value, names.of(dimension, value), amount)
            for value, amount in ranked[:TOP_DRIVERS]
            if amount > 0
        ]
    return found


def _spike(
    session: Session,
    settings: Settings,
    now: datetime,
    names: Names,
    history: History | None,
) -> SpikeFacts | None:
    rule = settings.rules.spike
    width = settings.collection.bucket_width
    # Daily buckets cannot tell one hour from another.
    if rule is None or history is None or width == "1d":
        return None
    hour = floor_to_bucket(now, "1h") - HOUR
    first = history.collected_from
    days = [
        history.hourly.get(hour - k * timedelta(days=1), 0)
        for k in range(1, rule.days + 1)
        if first is None or hour - k * timedelta(days=1) >= first
    ]
    if len(days) < 2:
        return None
    spent = history.hourly.get(hour, 0)
    baseline = int(statistics.median(days))
    rows = spend_by_dimensions(session, width, hour, hour + HOUR)
    people = spend_by_attribution(session, width, hour, hour + HOUR)
    named = drivers(rows, names) + attributed_drivers(people, names, ("actor",))
    return SpikeFacts(hour, spent, baseline, len(days), tuple(named))


def _expiring(walked: WalkResult | None, now: datetime, warning: timedelta) -> list[ExpiringLot]:
    if walked is None:
        return []
    return [
        ExpiringLot(lot.key, lot.kind, lot.at, walked.remaining[lot.key], lot.expires_at)
        for lot in sorted(walked.lots, key=lambda lot: (lot.expires_at, lot.key))
        if walked.remaining.get(lot.key, 0) > 0 and now < lot.expires_at <= now + warning
    ]
