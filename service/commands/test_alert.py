"""`creditwatch test-alert [--channel NAME]`: a clearly marked sample through each channel.

Sent directly, not through the outbox (nothing is recorded, nothing retried): the point is to
see, per channel, that it arrives, or the exact reason it did not. Exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta

from service.alerts.model import Alert, Content, Driver, Freshness, Identity, Situation
from service.commands.context import CommandContext, complain, say
from service.commands.registry import Command
from service.domain.timefmt import rfc3339
from service.errors import ConfigError, DeliveryError
from service.render.view import AlertView
from service.runtime.cycle import Runtime
from service.runtime.failures import describe_failure

USD = 10**9


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel", metavar="NAME", help="only this channel (default: all)")


def sample(now: datetime) -> AlertView:
    """A test alert that looks like a real one, marked as a test everywhere it shows."""
    identity = Identity("test", "org", rfc3339(now), "")
    alert = Alert(
        dedup_id=identity.key,
        message_id=identity.key,
        kind="alert",
        identity=identity,
        content=Content(
            severity="info",
            title="Test alert from creditwatch: this channel works",
            summary=(
                "This is a test sent by `creditwatch test-alert`. Real alerts look like this: "
                "what crossed, the amounts, the period, the balance and runway, the drivers."
            ),
            rule_name="test",
            value_nanos=41230 * USD // 100,
            limit_nanos=500 * USD,
            threshold_nanos=400 * USD,
            period_label=f"{now:%Y-%m}",
            drivers=(
                Driver("model", "claude-sonnet-4-5", "claude-sonnet-4-5", 21000 * USD // 100),
            ),
        ),
        situation=Situation(
            now=now,
            balance_nanos=None,
            runway_until=None,
            runway_note="a test alert carries no runway",
            freshness=Freshness(now - timedelta(hours=1), now),
        ),
    )
    payload = alert.to_json()
    payload["test"] = True
    return AlertView.from_json(payload)


def test_alert(ctx: CommandContext) -> int:
    settings = ctx.settings
    wanted = ctx.args.channel
    names = settings.channels.names
    if not names:
        raise ConfigError(
            "CREDITWATCH_CHANNEL_<NAME>",
            "no channel is configured (nor CREDITWATCH_SLACK_WEBHOOK_URL, _WEBHOOK_URL, _SMTP_URL)",
            "",
            example_line="CREDITWATCH_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/…",
        )
    if wanted is not None and wanted not in names:
        complain(f"no channel named {wanted!r}; configured: {', '.join(names)}")
        return 2
    now = ctx.now()
    view = sample(now)
    failed = 0
    with Runtime(settings, transport=ctx.transport, retry=ctx.retry, clock=ctx.clock) as runtime:
        for name, channel in runtime.channels.items():
            if wanted is not None and name != wanted:
                continue
            began = time.monotonic()
            try:
                sent = channel.send(view)
            except DeliveryError as exc:
                failed += 1
                kind = "permanent" if exc.permanent else "transient"
                say(f"{name}: FAILED ({kind}): {runtime.deliverer.mask(str(exc))}")
                continue
            except Exception as exc:  # noqa: BLE001 - reported per channel, the others still run
                failed += 1
                say(f"{name}: FAILED: {runtime.deliverer.mask(describe_failure(exc).message)}")
                continue
            took = (time.monotonic() - began) * 1000
            status = f", {sent.status}" if sent.status else ""
            say(f"{name}: delivered in {took:.0f} ms{status}")
    return 1 if failed else 0


COMMAND = Command(
    "test-alert",
    configure,
    test_alert,
)
