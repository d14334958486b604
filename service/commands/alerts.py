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
from service.store.tables import AlertRecord, OutboxAlert

DEFAULT_SINCE = timedelta(days=7)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: 7 days ago)"
    )
    parser.add_argument("--json", action="store_true", help="a JSON list, newest first")


def alerts(ctx: CommandContext) -> int:
    since = ctx.args.since or ctx.now() - DEFAULT_SINCE
    with ledger_for_reading(ctx.settings) as engine, read_transaction(engine) as session:
        found = [
            _as_json(outbox, record) for outbox, record in recent_notifications(session, since)
        ]
    if ctx.args.json:
        say(json.dumps(found, indent=2))
        return 0
    if not found:
        say(f"no alerts since {rfc3339(since)}")
        return 0
    say_table(
        ("created", "kind", "severity", "state", "alert"),
        [
            (row["created_at"], row["kind"], row["severity"], row["state"], _shown(row))
            for row in found
        ],
        text_columns=range(5),
    )
    return 0


def _shown(row: dict[str, Any]) -> str:
    return f"{row['title']}  [{row['dedup_id']}]"


def _as_json(outbox: OutboxAlert, record: AlertRecord) -> dict[str, Any]:
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
        "deliveries": _deliveries(outbox),
    }


def _condition(record: AlertRecord) -> str | None:
    """A condition's lifecycle: open, resolved (a notice went out), closed (its rule changed)."""
    if not record.persistent:
        return None
    if record.resolved_at is None:
        return "open"
    return "closed" if record.closed_reason else "resolved"


def _deliveries(outbox: OutboxAlert) -> list[dict[str, Any]]:
    """Per-channel delivery attempts; empty until a channel takes the alert."""
    if outbox.channel is None:
        return []
    return [
        {"channel": outbox.channel, "attempts": outbox.attempts, "last_error": outbox.last_error}
    ]


COMMAND = Command("alerts", "recent alerts with their identity and state", configure, alerts)
