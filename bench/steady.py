"""`make bench`: what a cycle with nothing new costs as history grows, and `status` on it.

The simulator (its own process) serves a year of hourly usage for ``BENCH_STEADY_KEYS`` keys
(default 20: a year for 200 keys is ten million rows, more than this bench should book on a
2-core machine) and stands still, so a cycle after the backfill finds nothing new: it re-reads
the look-back and books nothing. Measured after a day of history and after the year, on SQLite:
the CPU time of this process for one such cycle (best of 5: the simulator's work is in its
own process), its wall time, the HTTP requests it made, and `status` (``build_status``) wall
time. The day's figures are the floor: a cycle whose cost does not grow with history costs
the same after the year. Figures are printed and written to ``bench/results/steady.json``.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import results_path, write_figures
from bench.ingest import simulated
from service.runtime.cycle import Runtime
from service.runtime.status import build_status
from service.settings import Settings, load_settings
from service.simulator import WorkloadSpec
from service.store.engine import read_transaction

KEY = "sk-ant-admin01-bench-steady-000000"
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)
YEAR_START = datetime(2025, 11, 1, tzinfo=UTC)
DAY_START = NOW - timedelta(days=1, hours=2)
N_KEYS = int(os.environ.get("BENCH_STEADY_KEYS", "20"))
RESULTS = results_path("steady")


def simulator() -> AbstractContextManager[str]:
    spec = WorkloadSpec(seed=13, start=YEAR_START, n_keys=N_KEYS, n_workspaces=4)
    return simulated(spec, NOW, KEY)


def settings_for(base_url: str, database_url: str, start: datetime) -> Settings:
    return load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CREDITWATCH_DATABASE_URL": database_url,
            "CREDITWATCH_BACKFILL_FROM": start.isoformat(),
            "CREDITWATCH_STARTING_BALANCE": "100000",
            "CREDITWATCH_STARTING_BALANCE_AT": start.isoformat(),
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "20000",
            "CREDITWATCH_AUTO_RELOAD_TO": "100000",
            "CREDITWATCH_MONTHLY_BUDGET": "50000",
            "CREDITWATCH_HTTP_TIMEOUT": "300s",
            "CREDITWATCH_DELIVERY_LEASE": "10m",
        },
        None,
    )


def measure(base_url: str, start: datetime, folder: Path) -> dict[str, Any]:
    settings = settings_for(base_url, f"sqlite:///{folder / 'steady.db'}", start)
    with Runtime(settings) as runtime:
        began = time.perf_counter()
        backfill = runtime.cycle(lambda: NOW)
        backfill_seconds = time.perf_counter() - began
        sent: list[str] = []
        hooks = runtime.http.event_hooks
        runtime.http.event_hooks = {
            **hooks,
            "request": [*hooks.get("request", []), lambda request: sent.append(request.url.path)],
        }
        cpu, wall, requests, chunks = [], [], [], []
        for _ in range(5):
            sent.clear()
            wall_began, cpu_began = time.perf_counter(), time.process_time()
            result = runtime.cycle(lambda: NOW)
            cpu.append(time.process_time() - cpu_began)
            wall.append(time.perf_counter() - wall_began)
            booking = result.collection.booking
            assert booking.new_rows == booking.changed_rows == 0, "nothing new in a steady cycle"
            requests.append(len(sent))
            chunks.append(result.collection.chunks)
        status_seconds = []
        for _ in range(3):
            began = time.perf_counter()
            with read_transaction(runtime.engine) as session:
                build_status(session, settings, NOW)
            status_seconds.append(time.perf_counter() - began)
    return {
        "history_from": start.isoformat(),
        "rows": backfill.collection.rows_fetched,
        "backfill_seconds": round(backfill_seconds, 2),
        "steady_cycle_cpu_seconds": round(min(cpu), 4),
        "steady_cycle_wall_seconds": round(min(wall), 4),
        "steady_cycle_chunks": chunks[-1],
        "steady_cycle_http_requests": requests[-1],
        "status_seconds": round(min(status_seconds), 4),
    }


def main() -> int:
    figures: dict[str, Any] = {"keys": N_KEYS}
    with simulator() as base_url, tempfile.TemporaryDirectory() as tmp:
        for label, start in (("day", DAY_START), ("year", YEAR_START)):
            folder = Path(tmp) / label
            folder.mkdir()
            figures[label] = measure(base_url, start, folder)
            f = figures[label]
            print(
                f"steady cycle after a {label} ({f['rows']:,} rows): "
                f"{f['steady_cycle_cpu_seconds'] * 1000:.0f} ms CPU, "
                f"{f['steady_cycle_wall_seconds'] * 1000:.0f} ms wall, "
                f"{f['steady_cycle_http_requests']} HTTP request(s) for "
                f"{f['steady_cycle_chunks']} chunk(s) of the look-back; "
                f"status {f['status_seconds'] * 1000:.0f} ms"
            )
    day, year = figures["day"], figures["year"]
    figures["cycle_cpu_year_over_day"] = round(
        year["steady_cycle_cpu_seconds"] / day["steady_cycle_cpu_seconds"], 1
    )
    figures["status_year_over_day"] = round(year["status_seconds"] / day["status_seconds"], 1)
    print(
        f"a year of history makes a steady cycle {figures['cycle_cpu_year_over_day']}x and "
        f"status {figures['status_year_over_day']}x what they cost after a day"
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
