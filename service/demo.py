"""`creditwatch demo`: the whole service on this machine, with no Anthropic account.

Starts the built-in Admin API simulator on 127.0.0.1, keeps the ledger in SQLite in a temporary
folder, backfills the month, then runs cycles and shows the balance and spend changing as the
simulator's current buckets grow.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from service.collector import month_start
from service.config import load_settings
from service.cycle import Runtime
from service.db import transaction
from service.logs import configure_logging
from service.money import usd_text, usd_to_nanos
from service.reports import build_status, totals, usage_breakdown
from service.simulator import SimulatorServer, Workload, WorkloadSpec

DEMO_KEY = "sk-ant-admin01-demo-not-a-real-key"
log = logging.getLogger("creditwatch.demo")


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _usd(text: str | None) -> str:
    return "n/a" if text is None else usd_text(usd_to_nanos(Decimal(text)))


def run_demo(*, cycles: int, interval: float) -> int:
    """Run ``cycles`` cycles (0: until Ctrl-C) ``interval`` seconds apart; returns exit status."""
    configure_logging("WARNING", "text", [DEMO_KEY])
    now = datetime.now(UTC)
    opening = month_start(now)
    workload = Workload(WorkloadSpec(seed=7, start=opening - timedelta(days=3)))
    with (
        tempfile.TemporaryDirectory(prefix="creditwatch-demo-") as folder,
        SimulatorServer(workload, admin_key=DEMO_KEY) as server,
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
            },
            None,
            demo=True,
        )
        _say(f"creditwatch demo: Admin API simulator at {server.base_url}, ledger at {database}")
        _say(
            f"starting balance $1,000.00 at {opening:%Y-%m-%d %H:%M} UTC, auto-reload below $200"
            " to $1,000 (at most $2,500 a month); the first cycle backfills the month"
        )
        with Runtime(settings) as runtime:
            done = 0
            try:
                while cycles == 0 or done < cycles:
                    if done:
                        time.sleep(interval)
                    result = runtime.cycle(lambda: datetime.now(UTC))
                    done += 1
                    _say(f"[cycle {done}] {result.summary()}")
                    with transaction(runtime.engine) as session:
                        status = build_status(session, settings, datetime.now(UTC))
                    credits = status["credits"]
                    _say(
                        f"           month {_usd(status['spend']['month_to_date_usd'])}, "
                        f"today {_usd(status['spend']['today_usd'])}, "
                        f"reloads this month {credits['reloads_this_month']} "
                        f"({_usd(credits['reloaded_this_month_usd'])}), "
                        f"burn {_usd(status['forecast']['burn_rate_usd_per_hour'])}/h"
                    )
            except KeyboardInterrupt:
                _say("stopped")
            with transaction(runtime.engine) as session:
                rows = usage_breakdown(session, settings, "model", opening, datetime.now(UTC))
            _say("This month by model:")
            for row in [*rows, totals(rows)]:
                _say(f"  {row.key:34} {usd_text(row.cost_nanos):>12}")
    return 0
