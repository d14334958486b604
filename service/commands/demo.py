"""`creditwatch demo`: the whole service on this machine, with no Anthropic account.

Starts the built-in Admin API simulator on 127.0.0.1, keeps the ledger in SQLite in a temporary
folder, backfills the month, then runs cycles and shows the balance and spend changing as the
simulator's current buckets grow. Alerts (a monthly and a daily budget, a low balance) go to a
local webhook sink (signed) and a local SMTP sink, which print what they receive.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.commands.args import positive_int_arg, seconds_arg
from service.commands.context import CommandContext, say
from service.commands.registry import Command
from service.domain.money import usd_text, usd_to_nanos
from service.domain.periods import month_start
from service.runtime.cycle import Runtime
from service.runtime.logs import configure_logging
from service.runtime.status import build_status
from service.settings import load_settings
from service.simulator import SimulatorServer, Workload, WorkloadSpec
from service.simulator.sinks import SmtpSink, WebhookSink
from service.store.engine import read_transaction
from service.store.usage_queries import totals, usage_breakdown

DEMO_KEY = "sk-ant-admin01-demo-not-a-real-key"
DEMO_SECRET = "whsec_ZGVtby13ZWJob29rLXNpZ25pbmcta2V5LTAwMQ=="  # noqa: S105 - the demo sink's own


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cycles", type=positive_int_arg, default=6, help="cycles to run (0: until Ctrl-C)"
    )
    parser.add_argument("--interval", type=seconds_arg, default=10.0, help="seconds between cycles")


def _usd(text: str | None) -> str:
    return "n/a" if text is None else usd_text(usd_to_nanos(Decimal(text)))


def demo(ctx: CommandContext) -> int:
    """Run ``--cycles`` cycles ``--interval`` seconds apart against the simulator."""
    cycles, interval = ctx.args.cycles, ctx.args.interval
    configure_logging("WARNING", "text", [DEMO_KEY])
    now = ctx.now()
    opening = month_start(now)
    workload = Workload(WorkloadSpec(seed=7, start=opening - timedelta(days=3)))
    with (
        tempfile.TemporaryDirectory(prefix="creditwatch-demo-") as folder,
        SimulatorServer(workload, admin_key=DEMO_KEY) as server,
        WebhookSink(DEMO_SECRET) as webhook,
        SmtpSink() as mailbox,
    ):
        database = Path(folder) / "creditwatch.db"
        settings = load_settings(
            {
                "ANTHROPIC_ADMIN_KEY": DEMO_KEY,
                "ANTHROPIC_BASE_URL": server.base_url,
                "CREDITWATCH_DATABASE_URL": f"sqlite:///{database}",
                "CREDITWATCH_POLL_INTERVAL": f"{max(1, round(interval))}s",
                "CREDITWATCH_STARTING_BALANCE": "1000.00",
                "CREDITWATCH_STARTING_BALANCE_AT": opening.isoformat(),
                "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "200",
                "CREDITWATCH_AUTO_RELOAD_TO": "1000",
                "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": "2500",
                "CREDITWATCH_MONTHLY_BUDGET": "100",
                "CREDITWATCH_ALERT_THRESHOLDS": "25,50,100",
                "CREDITWATCH_BUDGET_TODAY": "limit=5 period=day thresholds=50,100",
                "CREDITWATCH_LOW_BALANCE": "975",
                "CREDITWATCH_WEBHOOK_URL": webhook.url,
                "CREDITWATCH_WEBHOOK_SECRET": DEMO_SECRET,
                "CREDITWATCH_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}?tls=off",
                "CREDITWATCH_EMAIL_FROM": "creditwatch-demo@localhost.localdomain",
                "CREDITWATCH_EMAIL_TO": "you@localhost.localdomain",
            },
            None,
            demo=True,
            now=now,
        )
        say(f"creditwatch demo: Admin API simulator at {server.base_url}, ledger at {database}")
        say(
            f"starting balance $1,000.00 at {opening:%Y-%m-%d %H:%M} UTC, auto-reload below $200"
            " to $1,000 (at most $2,500 a month); the first cycle backfills the month"
        )
        say(
            "alerts: a $100 monthly budget (25%, 50%, 100%), a $5 daily one, a balance below"
            f" $975; to a signed webhook sink at {webhook.url} and an SMTP sink at"
            f" 127.0.0.1:{mailbox.port}"
        )
        with Runtime(settings, transport=ctx.transport, retry=ctx.retry) as runtime:
            done = 0
            try:
                while cycles == 0 or done < cycles:
                    if done:
                        time.sleep(interval)
                    result = runtime.cycle(ctx.clock)
                    done += 1
                    say(f"[cycle {done}] {result.summary()}")
                    delivered = runtime.deliver()
                    for line in [*webhook.drain(), *mailbox.drain()]:
                        say(f"           {line}")
                    if result.alerts or delivered.sent or delivered.retried or delivered.failed:
                        say(f"           {delivered.summary()}")
                    with read_transaction(runtime.engine) as session:
                        status = build_status(session, settings, ctx.now())
                    say(f"           {_cycle_line(status)}")
            except KeyboardInterrupt:
                say("stopped")
            with read_transaction(runtime.engine) as session:
                rows = usage_breakdown(session, "1h", "model", opening, ctx.now())
            say("This month by model:")
            for row in [*rows, totals(rows)]:
                say(f"  {row.key:34} {usd_text(row.cost_nanos):>12}")
    return 0


def _cycle_line(status: dict[str, Any]) -> str:
    spend, credits, forecast = status["spend"], status["credits"], status["forecast"]
    rate = forecast["burn_rate_usd_per_hour"]
    burn = f"burn {_usd(rate)}/h" if rate is not None else "burn rate: not enough history yet"
    return (
        f"month {_usd(spend['month_to_date_usd'])}, today {_usd(spend['today_usd'])}, "
        f"reloads this month {credits['reloads_this_month']} "
        f"({_usd(credits['reloaded_this_month_usd'])}), {burn}"
    )


COMMAND = Command(
    "demo", "run end to end against the built-in simulator (no account needed)", configure, demo
)
