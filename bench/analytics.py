"""`make bench`: the Analytics API path beside the legacy usage report, on the same month.

Two figures, each beside its legacy counterpart measured in the same run on the same simulator:
- fetch and parse through ``/analytics/usage`` (booking dimensions) and through
  ``/analytics/cost``, separately (and the actor/product pair the collector also reads), against
  the legacy report's ``AdminClient.usage``;
- a first collection (backfill) through ``Runtime.cycle`` with
  ``CREDITWATCH_USAGE_SOURCE=analytics`` (4 reads per chunk, ``book_usage`` and
  ``book_attribution`` in one transaction) against the same with ``messages``, on SQLite and,
  when a server answers, PostgreSQL; then a re-read of the last 3 hours, as every later cycle does.

Both run on the month's first ``BENCH_ANALYTICS_DAYS`` days (default 1, at most the month):
the simulator aggregates every analytics query afresh, and the collection reads four of them
per chunk, so the whole month (about 900,000 rows per read at 200
keys) would take most of an hour. Figures are printed and added under ``"analytics"`` to
``bench/results/ingest.json`` (run ``bench.ingest`` first: it rewrites that file).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.figures import write_figures
from bench.ingest import (
    END,
    KEY,
    NOW,
    RESULTS,
    START,
    bench_settings,
    database,
    postgres_available,
    simulator,
)
from service.admin_api.analytics import ATTRIBUTION_GROUP_BY, DEFAULT_ANALYTICS_GROUP_BY
from service.admin_api.client import AdminClient
from service.domain.usage import UsageSourceName
from service.http import build_http_client
from service.runtime.cycle import Runtime
from service.simulator import ManualClock
from service.store.engine import read_transaction
from service.store.tables import ATTRIBUTED

DAYS = int(os.environ.get("BENCH_ANALYTICS_DAYS", "1"))
SLICE_END = min(END, START + timedelta(days=DAYS))
# The collector reads up to the clock's now: the slice's clock stands 2 hours past its end,
# as the month's does (bench.ingest.NOW).
SLICE_NOW = NOW if SLICE_END == END else SLICE_END + (NOW - END)


def _timed(read: Callable[[], int]) -> dict[str, Any]:
    began = time.perf_counter()
    rows = read()
    seconds = time.perf_counter() - began
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}


def fetch_figures(base_url: str) -> dict[str, dict[str, Any]]:
    """Fetch and parse of the slice, per read: rows, seconds and rows per second."""
    with build_http_client(base_url, timeout=300) as http:
        client = AdminClient(http, KEY)
        return {
            "legacy_usage_report": _timed(
                lambda: len(client.usage(START, SLICE_END, bucket_width="1h"))
            ),
            "usage": _timed(
                lambda: len(
                    client.analytics_usage(START, SLICE_END, "1h", DEFAULT_ANALYTICS_GROUP_BY).rows
                )
            ),
            "cost": _timed(
                lambda: len(
                    client.analytics_cost(START, SLICE_END, "1h", DEFAULT_ANALYTICS_GROUP_BY).rows
                )
            ),
            "usage_by_actor_product": _timed(
                lambda: len(
                    client.analytics_usage(START, SLICE_END, "1h", ATTRIBUTION_GROUP_BY).rows
                )
            ),
            "cost_by_actor_product": _timed(
                lambda: len(
                    client.analytics_cost(START, SLICE_END, "1h", ATTRIBUTION_GROUP_BY).rows
                )
            ),
        }


def collection(backend: str, base_url: str, source: UsageSourceName) -> dict[str, Any]:
    """A first collection of the slice into a fresh database, then one re-read cycle."""
    clock = ManualClock(SLICE_NOW)
    with (
        tempfile.TemporaryDirectory() as folder,
        database(backend, Path(folder)) as url,
        Runtime(bench_settings(base_url, url, source)) as runtime,
    ):
        began = time.perf_counter()
        first = runtime.cycle(clock).collection
        seconds = time.perf_counter() - began
        began = time.perf_counter()
        again = runtime.cycle(clock).collection
        reread = time.perf_counter() - began
        assert again.booking.new_rows == again.booking.changed_rows == 0, again.booking
        with read_transaction(runtime.engine) as session:
            attributed = session.execute(select(func.count()).select_from(ATTRIBUTED)).scalar_one()
    rows = first.rows_fetched
    return {
        "rows": rows,
        "attributed_rows": attributed,
        "chunks": first.chunks,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "rows_with_attributed_per_second": round((rows + attributed) / seconds),
        "reread_last_3h_seconds": round(reread, 3),
    }


def compare(backend: str, base_url: str) -> dict[str, Any]:
    legacy = collection(backend, base_url, "messages")
    analytics = collection(backend, base_url, "analytics")
    return {
        "messages": legacy,
        "analytics": analytics,
        "seconds_ratio_analytics_over_legacy": round(analytics["seconds"] / legacy["seconds"], 2),
        "rows_per_second_ratio_analytics_over_legacy": round(
            analytics["rows_per_second"] / legacy["rows_per_second"], 2
        ),
    }


def describe_fetch(name: str, f: dict[str, Any]) -> str:
    return (
        f"{name:24} {f['rows']:>9,} rows in {f['seconds']:>7}s = {f['rows_per_second']:>8,} rows/s"
    )


def describe_collection(backend: str, f: dict[str, Any]) -> str:
    legacy, analytics = f["messages"], f["analytics"]
    line = (
        f"{backend:9} first collection: analytics {analytics['rows_per_second']:>7,} rows/s "
        f"({analytics['rows']:,} rows + {analytics['attributed_rows']:,} attributed, "
        f"{analytics['seconds']}s) vs messages {legacy['rows_per_second']:>7,} rows/s "
        f"({legacy['rows']:,} rows, {legacy['seconds']}s) = "
        f"{f['rows_per_second_ratio_analytics_over_legacy']}x the rate"
    )
    reread = (
        f"; re-read of the last 3h {analytics['reread_last_3h_seconds']}s "
        f"vs {legacy['reread_last_3h_seconds']}s"
    )
    return line + reread


def main() -> int:
    figures: dict[str, Any] = {
        "collection_slice": {"from": START.isoformat(), "to": SLICE_END.isoformat(), "days": DAYS},
        "clock": SLICE_NOW.isoformat(),
    }
    with simulator() as base_url:
        figures["fetch_and_parse"] = fetch_figures(base_url)
        print(
            f"analytics fetch and parse, {START:%Y-%m-%d} to {SLICE_END:%Y-%m-%d} "
            "(1h buckets, pages of 1000 rows):"
        )
        for name, read in figures["fetch_and_parse"].items():
            print(f"  {describe_fetch(name, read)}")
        backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
        for backend in backends:
            figures[backend] = compare(backend, base_url)
            print(describe_collection(backend, figures[backend]))
        if "postgres" not in backends:
            print("postgres  skipped: no server at CW_TEST_POSTGRES_URL")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["analytics"] = figures
    write_figures(RESULTS, results, said="analytics figures added to")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
