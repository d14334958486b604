"""Evaluate every rule and enqueue what the dedup stage decides, in the caller's transaction.

Called inside the transaction that books a cycle's last chunk (or records its failure), so the
alerts and the state they describe commit together or not at all (DESIGN §2, steps 5–6).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from service.alerts.dedup import Decision, Memory, OpenCondition, decide
from service.alerts.facts import ConfigRefusal, Facts
from service.alerts.model import (
    Alert,
    Content,
    Finding,
    Identity,
    NoticeKind,
    drivers_from_json,
    dumps,
)
from service.alerts.rules import ENUMERATING, evaluate_rules
from service.domain.credit_walk import WalkResult
from service.runtime.facts import build_facts
from service.settings import Settings
from service.store import alerts as memory_store
from service.store.tables import AlertRecord, OutboxAlert

log = logging.getLogger(__name__)
KINDS: dict[str, NoticeKind] = {"alert": "alert", "remind": "reminder", "resolve": "resolved"}


@dataclass
class Evaluation:
    """What one evaluation decided: the notifications enqueued, and every decision with its
    reason (for logs and tests)."""

    alerts: list[Alert] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def evaluate(
    session: Session,
    settings: Settings,
    now: datetime,
    walked: WalkResult | None = None,
    *,
    config_refused: ConfigRefusal | None = None,
) -> Evaluation:
    """Run the rules on the ledger as it stands in ``session`` and enqueue the alerts."""
    facts = build_facts(session, settings, now, walked, config_refused=config_refused)
    findings = evaluate_rules(settings.rules, facts)
    memory = load_memory(session, findings)
    decisions = decide(
        findings,
        memory,
        now,
        repeat=settings.rules.repeat_interval,
        enumerating=ENUMERATING,
    )
    result = Evaluation(decisions=decisions)
    previous = {
        rule: drivers_from_json(json.loads(payload))
        for rule, payload in memory_store.latest_payloads(
            session, (d.identity.rule for d in decisions if d.notifies)
        ).items()
    }
    for decision in decisions:
        applied = _apply(session, decision, facts, now)
        if applied is None:
            continue
        record_id, alert = applied
        alert = alert.with_driver_changes(previous.get(alert.identity.rule, ()))
        previous[alert.identity.rule] = alert.content.drivers
        _enqueue(session, record_id, alert, routes(alert, settings.channels.names))
        result.alerts.append(alert)
        log.info("alert %s (%s): %s", alert.kind, decision.reason, alert.content.title)
    return result


def load_memory(session: Session, findings: list[Finding]) -> Memory:
    events = {f.identity.key for f in findings if not f.persistent}
    groups = {f.group for f in findings if f.group is not None}
    conditions = {f.identity.key for f in findings if f.persistent}
    open_rows = memory_store.open_conditions(session)
    return Memory(
        events_sent=frozenset(memory_store.sent_events(session, events)),
        group_top=memory_store.group_tops(session, groups),
        open_conditions={
            row.identity_key: OpenCondition(
                identity=Identity(row.rule, row.scope, row.period, row.threshold),
                episode=row.episode,
                last_notified_at=row.last_notified_at,
                notices=row.notices,
                title=row.title,
                rule_name=row.rule_name,
            )
            for row in open_rows
        },
        last_episode=memory_store.last_episodes(session, conditions),
    )


def _apply(
    session: Session, decision: Decision, facts: Facts, now: datetime
) -> tuple[int, Alert] | None:
    """Remember the decision; return the notification it makes (and its record), if any."""
    if decision.action in ("hold", "skip"):
        return None
    finding = decision.finding
    if decision.action == "alert":
        assert finding is not None  # an alert always comes from a finding
        row = memory_store.record(
            session,
            AlertRecord(
                dedup_id=decision.dedup_id,
                identity_key=decision.identity.key,
                rule=decision.identity.rule,
                scope=decision.identity.scope,
                period=decision.identity.period,
                threshold=decision.identity.threshold,
                group_key=finding.group,
                threshold_rank=finding.rank,
                persistent=finding.persistent,
                episode=decision.episode,
                notices=1,
                rule_name=finding.content.rule_name,
                title=finding.content.title,
                opened_at=now,
                last_notified_at=now,
            ),
        )
        return _alert(row, "alert", finding.content, facts, previous=None)
    found = memory_store.record_by_dedup_id(session, decision.dedup_id)
    if found is None:  # pragma: no cover - open conditions come from these very rows
        log.warning("no record for %s; decision %s ignored", decision.dedup_id, decision.action)
        return None
    row = found
    if decision.action == "close":
        row.resolved_at, row.closed_reason = now, decision.reason
        return None
    row.notices += 1
    row.last_notified_at = now
    if decision.action == "resolve":
        row.resolved_at = now
    content = finding.content if finding is not None else _resolved_content(row)
    first = memory_store.previous_message_id(session, row.dedup_id)
    return _alert(row, KINDS[decision.action], content, facts, previous=first)


def _resolved_content(row: AlertRecord) -> Content:
    return Content(
        severity="info",
        title=f"Resolved: {row.title}",
        summary=f"The condition no longer holds ({row.rule_name}).",
        rule_name=row.rule_name,
    )


def _alert(
    row: AlertRecord, kind: NoticeKind, content: Content, facts: Facts, *, previous: str | None
) -> tuple[int, Alert]:
    assert row.id is not None  # flushed: the store gave it an id
    return row.id, Alert(
        dedup_id=row.dedup_id,
        message_id=message_id(row.dedup_id, row.notices),
        kind=kind,
        identity=Identity(row.rule, row.scope, row.period, row.threshold),
        content=content,
        situation=facts.situation,
        episode=row.episode,
        previous_message_id=previous,
    )


def message_id(dedup_id: str, notice: int) -> str:
    """A notification's own id: the dedup id for the first, ``<dedup id>:<n>`` after it.

    Receivers that drop repeats by message id (Standard Webhooks' ``webhook-id``) keep every
    reminder and the resolved notice, and a retry of one notification keeps its id.
    """
    return dedup_id if notice == 1 else f"{dedup_id}:{notice}"


def routes(alert: Alert, configured: tuple[str, ...]) -> list[str]:
    """The channels an alert goes to: its rule's ``channels=``, else every configured one,
    less the ones it must avoid (a failing channel's own alert)."""
    wanted = alert.content.channels or configured
    return [n for n in wanted if n in configured and n not in alert.content.exclude_channels]


def _enqueue(session: Session, record_id: int, alert: Alert, channels: list[str]) -> None:
    """One outbox row per channel; with none configured, one ``unrouted`` row to list."""
    payload = dumps(alert)
    targets: list[str | None] = list(channels) or [None]
    for channel in targets:
        memory_store.enqueue(
            session,
            OutboxAlert(
                record_id=record_id,
                dedup_id=alert.dedup_id,
                message_id=alert.message_id,
                kind=alert.kind,
                rule=alert.identity.rule,
                severity=alert.severity,
                title=alert.content.title,
                payload=payload,
                created_at=alert.situation.now,
                state="pending" if channel else "unrouted",
                channel=channel,
            ),
        )
