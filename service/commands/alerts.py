"""`creditwatch alerts [--since …] [--json]`: recent alerts, their identity and delivery state."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from service.commands.args import moment_arg
from service.commands.context import CommandContext, say, say_table
from service.commands.database import ledger_for_reading
from service.commands.registry import Command
from service.domain.timefmt import rfc3339, rfc3339_or_none
from service.store.alerts import recent_notifications
from service.store.engine import read_transaction
from service.store.outbox import attempts_of
from service.store.tables import AlertRecord, DeliveryAttempt, OutboxAlert

DEFAULT_SINCE = timedelta(days=7)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: 7 days ago)"
    )
    parser.add_argument("--json", action="store_true", help="a JSON list, newest first")


def alerts(ctx: CommandContext) -> int:
    since = ctx.args.since or ctx.now() - DEFAULT_SINCE
    with ledger_for_reading(ctx.settings) as engine, read_transaction(engine) as session:
        pairs = recent_notifications(session, since)
        attempts = attempts_of(session, [o.id for o, _ in pairs if o.id is not None])
        found = [_as_json(o, r, attempts.get(o.id or 0, [])) for o, r in pairs]
    if ctx.args.json:
        say(json.dumps(found, indent=2))
        return 0
    if not found:
        say(f"no alerts since {rfc3339(since)}")
        return 0
    say_table(
        ("created", "kind", "severity", "channel", "state", "alert"),
        [
            (
                row["created_at"],
                row["kind"],
                row["severity"],
                row["channel"] or "-",
                _state(row),
                _shown(row),
            )
            for row in found
        ],
        text_columns=range(6),
    )
    return 0


def _state(row: dict[str, Any]) -> str:
    attempts = len(row["attempts"])
    return f"{row['state']} ({attempts} attempts)" if attempts > 1 else str(row["state"])


def _shown(row: dict[str, Any]) -> str:
    return f"{row['title']}  [{row['dedup_id']}]"


def _as_json(
    outbox: OutboxAlert, record: AlertRecord, attempts: list[DeliveryAttempt]
) -> dict[str, Any]:
    return {
        "created_at": rfc3339(outbox.created_at),
        "kind": outbox.kind,
        "severity": outbox.severity,
        "state": outbox.state,
        "dedup_id": outbox.dedup_id,
        "message_id": outbox.message_id,
        "rule": record.rule,
        "scope": record.scope,
        "period": record.period or None,
        "threshold": record.threshold or None,
        "episode": record.episode,
        "title": outbox.title,
        "condition": _condition(record),
        "resolved_at": rfc3339_or_none(record.resolved_at),
        "channel": outbox.channel,
        "attempts": [
            {
                "at": rfc3339(a.started_at),
                "outcome": a.outcome,
                "status": a.status,
                "duration_ms": a.duration_ms,
                "error": a.error,
            }
            for a in attempts
        ],
        "next_attempt_at": rfc3339_or_none(outbox.next_attempt_at),
    }


def _condition(record: AlertRecord) -> str | None:
    """A condition's lifecycle: open, resolved (a notice went out), closed (its rule changed)."""
    if not record.persistent:
        return None
    if record.resolved_at is None:
        return "open"
    return "closed" if record.closed_reason else "resolved"


COMMAND = Command("alerts", configure, alerts)
