"""`simulate` for budgets: the alerts the budget rules would have produced over stored usage.

Stored usage is replayed bucket by bucket, as if a cycle ran at the end of each bucket, through
the same rule (:mod:`service.alerts.rules.budget`) and the same dedup decision as the daemon,
with a memory of its own: what it reports is when each alert would have gone out. Forecast
thresholds are left out (a projection needs the history of each moment); spend thresholds of
every configured budget, or of the ``--budget`` scenarios, are replayed. Read-only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.dedup import Memory, decide
from service.alerts.facts import BudgetFacts, Facts
from service.alerts.model import Freshness, Situation
from service.alerts.rules import budget as budget_rule
from service.domain.money import format_usd
from service.domain.periods import period_at
from service.domain.timefmt import rfc3339
from service.domain.usage import BUCKET_SECONDS, BucketWidth
from service.runtime.facts import Names
from service.settings.rules import BudgetRule, RuleSettings
from service.store.attribution import AttributedSpend
from service.store.tables import ATTRIBUTED, USAGE_ROWS
from service.store.usage_queries import ScopedSpend


@dataclass(frozen=True)
class ReplayedAlert:
    at: datetime
    budget: str
    threshold: str
    period: str
    spent_nanos: int
    limit_nanos: int

    def to_json(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at),
            "budget": self.budget,
            "threshold": self.threshold,
            "period": self.period,
            "spent_usd": format_usd(self.spent_nanos),
            "limit_usd": format_usd(self.limit_nanos),
        }


def replay_budgets(
    session: Session,
    width: BucketWidth,
    budgets: Sequence[BudgetRule],
    *,
    since: datetime,
    until: datetime,
) -> list[ReplayedAlert]:
    """Every budget alert that cycles at each bucket's end in ``[since, until]`` would send."""
    rules = [replace(rule, forecast_percents=()) for rule in budgets]
    if not rules:
        return []
    step = timedelta(seconds=BUCKET_SECONDS[width])
    # Read from the start of the first period holding `since`: its spend began there.
    first = min(period_at(rule.period, rule.tz, since).start for rule in rules)
    names = Names(session)
    series = _series(session, width, (first, until), rules, names)
    memory = Memory()
    sent: set[str] = set()
    tops: dict[str, int] = {}
    found: list[ReplayedAlert] = []
    for start in sorted({bucket for per_rule in series for bucket in per_rule}):
        moment = start + step
        if moment < since or moment > until:
            continue
        facts = []
        for rule, per_bucket in zip(rules, series, strict=True):
            period = period_at(rule.period, rule.tz, start)
            spent = sum(v for b, v in per_bucket.items() if period.start <= b <= start)
            facts.append(BudgetFacts(rule, period, spent, None, None))
        situation = Situation(moment, None, None, None, Freshness(start, moment))
        findings = budget_rule.evaluate(
            RuleSettings(budgets=tuple(rules)), Facts(situation, budgets=tuple(facts))
        )
        for decision in decide(findings, memory, moment, repeat=None):
            if decision.action != "alert" or decision.finding is None:
                continue
            content = decision.finding.content
            sent.add(decision.identity.key)
            if decision.finding.group and decision.finding.rank is not None:
                group = decision.finding.group
                tops[group] = max(tops.get(group, -1), decision.finding.rank)
            found.append(
                ReplayedAlert(
                    at=moment,
                    budget=decision.identity.rule.removeprefix(budget_rule.RULE_PREFIX),
                    threshold=decision.identity.threshold,
                    period=decision.identity.period,
                    spent_nanos=content.value_nanos or 0,
                    limit_nanos=content.limit_nanos or 0,
                )
            )
        memory = Memory(events_sent=frozenset(sent), group_top=dict(tops))
    return found


def _series(
    session: Session,
    width: BucketWidth,
    window: tuple[datetime, datetime],
    rules: Sequence[BudgetRule],
    names: Names,
) -> list[dict[datetime, int]]:
    """Per budget: the cost of its scope in each bucket of the ``[start, end)`` window."""
    start, end = window
    u = USAGE_ROWS
    rows = session.execute(
        select(
            u.c.bucket_start,
            u.c.workspace_id,
            u.c.api_key_id,
            u.c.model,
            func.sum(u.c.cost_nanos),
        )
        .where(
            u.c.bucket_width == width,
            u.c.bucket_start >= start,
            u.c.bucket_start < end,
        )
        .group_by(u.c.bucket_start, u.c.workspace_id, u.c.api_key_id, u.c.model)
    )
    matchers = [names.matcher(rule) for rule in rules]
    series: list[dict[datetime, int]] = [defaultdict(int) for _ in rules]
    for bucket, workspace, key, model, cost in rows:
        spend = ScopedSpend(str(workspace), str(key), str(model), int(cost), int(cost))
        for index, matches in enumerate(matchers):
            if not rules[index].attributed and (not rules[index].scope or matches(spend)):
                series[index][bucket] += spend.cost_nanos
    attributed = [
        (index, names.attributed_matcher(r)) for index, r in enumerate(rules) if r.attributed
    ]
    if attributed:
        a = ATTRIBUTED
        groups = (a.c.bucket_start, a.c.actor, a.c.actor_type, a.c.product, a.c.model)
        found = session.execute(
            select(*groups, func.sum(a.c.cost_nanos))
            .where(a.c.bucket_width == width, a.c.bucket_start >= start, a.c.bucket_start < end)
            .group_by(*groups)
        )
        for bucket, actor, kind, product, model, cost in found:
            who = AttributedSpend(str(actor), str(kind), str(product), str(model), int(cost), 0)
            for index, belongs in attributed:
                if belongs(who):
                    series[index][bucket] += who.cost_nanos
    return series
