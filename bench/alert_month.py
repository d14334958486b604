"""`make bench`: a month of the simulator's workload, with a spike, replayed through the rules.

The real cycle (collect → book → reload → evaluate → enqueue) runs once an hour at :30 for
October 2026 against the simulator, with the configuration below. It prints every alert with
its time, and the count per day: the figure to judge by is whether a person would call it calm
(no flood, nothing missed). Written to ``bench/results/alert_month.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import results_path, write_figures
from service.admin_api.retry import RetryPolicy
from service.runtime.cycle import Runtime
from service.settings import load_settings
from service.simulator import ManualClock, SimulatorServer, Spike, Workload, WorkloadSpec

KEY = "sk-ant-admin01-bench-month"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
SPIKE = Spike(datetime(2026, 10, 15, 13, tzinfo=UTC), datetime(2026, 10, 15, 17, tzinfo=UTC), 6)
RESULTS = results_path("alert_month")
SETTINGS = {
    "CREDITWATCH_STARTING_BALANCE": "2500",
    "CREDITWATCH_STARTING_BALANCE_AT": START.isoformat(),
    "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "300",
    "CREDITWATCH_AUTO_RELOAD_TO": "1500",
    "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": "4000",
    "CREDITWATCH_MONTHLY_BUDGET": "6500",
    "CREDITWATCH_BUDGET_DAILY": "limit=300 period=day thresholds=80,100 forecast=100",
    "CREDITWATCH_BUDGET_WEEKLY": "limit=1600 period=week tz=America/Los_Angeles thresholds=90",
    "CREDITWATCH_LOW_BALANCE": "250",
    "CREDITWATCH_RUNWAY_ALERT": "12h",
    "CREDITWATCH_SPIKE": "factor=3 min=10",
}


def main() -> None:
    spec = WorkloadSpec(
        seed=21, start=START - timedelta(days=14), n_keys=8, n_workspaces=2, spike=SPIKE
    )
    clock = ManualClock(START + timedelta(minutes=30))
    alerts: list[tuple[datetime, str, str, str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="creditwatch-bench-month-") as folder,
        SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as simulator,
    ):
        settings = load_settings(
            {
                "ANTHROPIC_ADMIN_KEY": KEY,
                "ANTHROPIC_BASE_URL": simulator.base_url,
                "CREDITWATCH_DATABASE_URL": f"sqlite:///{Path(folder) / 'month.db'}",
                "CREDITWATCH_BACKFILL_FROM": (START - timedelta(days=14)).isoformat(),
                **SETTINGS,
            },
            None,
            now=clock(),
        )
        began = time.perf_counter()
        cycles = 0
        with Runtime(settings, retry=RetryPolicy(max_retries=1, base_delay=0.01)) as runtime:
            while clock() < END:
                result = runtime.cycle(clock)
                cycles += 1
                alerts += [(clock(), a.kind, a.severity, a.content.title) for a in result.alerts]
                clock.advance(timedelta(hours=1))
        seconds = time.perf_counter() - began
    per_day = Counter(at.date().isoformat() for at, *_ in alerts)
    for at, kind, severity, title in alerts:
        print(f"{at:%m-%d %H:%M}  {kind:8} {severity:8} {title}")
    figures = {
        "cycles": cycles,
        "seconds": round(seconds, 1),
        "ms_per_cycle": round(seconds / cycles * 1000, 1),
        "alerts": len(alerts),
        "days_with_alerts": len(per_day),
        "most_in_a_day": max(per_day.values(), default=0),
        "per_day": dict(sorted(per_day.items())),
        "list": [
            {"at": at.isoformat(), "kind": kind, "severity": severity, "title": title}
            for at, kind, severity, title in alerts
        ],
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "list"}, indent=2))
    write_figures(RESULTS, figures)


if __name__ == "__main__":
    main()
