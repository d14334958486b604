"""`make bench`: ingest a month of hourly usage (200 keys × 6 models) and compare with a floor.

For each database the full path is timed (HTTP from the simulator, parsing, pricing, booking
in one transaction per chunk), and the booking step alone, against a floor measured in the same
run on the same rows: plain ``sqlite3.executemany`` into a bare table, or PostgreSQL ``COPY``
(the issue's floor), and the same driver call into ``usage`` as the migrations make it, with its
unique natural key (the schema's floor). Booking the month again unchanged, and with every row
grown (the update path), is timed too.
The simulator runs in its own process so that its JSON encoding does not share our GIL.
Figures are printed and written to ``bench/results/ingest.json``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from msgspec.structs import replace
from sqlalchemy import text

from bench.figures import results_path, write_figures
from service.admin_api.client import ALL_GROUP_BY, ANTHROPIC_VERSION, USAGE_PATH, AdminClient
from service.domain.usage import UsageRow, UsageSourceName
from service.http import build_http_client
from service.pricing import PriceBook
from service.runtime.collector import make_pricer
from service.runtime.cycle import Runtime
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store import usage_booking
from service.store.engine import make_engine, transaction
from service.store.migrations import upgrade
from service.store.tables import SERIES, SERIES_FIELDS

KEY = "sk-ant-admin01-bench-0000000000"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
NOW = END + timedelta(hours=2)
N_KEYS = int(os.environ.get("BENCH_KEYS", "200"))
POSTGRES_URL = os.environ.get(
    "CW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS = results_path("ingest")
COLUMNS = (
    "bucket_start",
    "bucket_width",
    *usage_booking.KEY_FIELDS,
    *usage_booking.COUNT_FIELDS,
    "cost_nanos",
)


def bench_settings(
    base_url: str, database_url: str, usage_source: UsageSourceName = "messages"
) -> Settings:
    """Settings for a first collection that backfills the month from the simulator."""
    return load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CREDITWATCH_DATABASE_URL": database_url,
            "CREDITWATCH_USAGE_SOURCE": usage_source,
            "CREDITWATCH_BACKFILL_FROM": START.isoformat(),
            "CREDITWATCH_STARTING_BALANCE": "1000000",
            "CREDITWATCH_STARTING_BALANCE_AT": START.isoformat(),
            # A month's page can take long to encode; the lease must be twice the timeout.
            "CREDITWATCH_HTTP_TIMEOUT": "300s",
            "CREDITWATCH_DELIVERY_LEASE": "10m",
        },
        None,
    )


def _serve(port_queue: Any, stop: Any, spec: WorkloadSpec, now: datetime, key: str) -> None:
    with SimulatorServer(Workload(spec), admin_key=key, clock=ManualClock(now)) as server:
        port_queue.put(server.base_url)
        stop.wait()


@contextmanager
def simulated(spec: WorkloadSpec, now: datetime, key: str = KEY) -> Iterator[str]:
    """The simulator of ``spec`` standing at ``now``, in its own process; yields its URL."""
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(queue, stop, spec, now, key), daemon=True)
    process.start()
    try:
        yield queue.get(timeout=120)
    finally:
        stop.set()
        process.join(timeout=10)


def simulator() -> AbstractContextManager[str]:
    """The month this bench reads: 200 keys (``BENCH_KEYS``), 8 workspaces."""
    return simulated(WorkloadSpec(seed=11, start=START, n_keys=N_KEYS, n_workspaces=8), NOW)


def floor_rows(rows: list[UsageRow], book: PriceBook) -> list[tuple[Any, ...]]:
    price = make_pricer(book)
    return [
        (
            r.key.bucket_start,
            r.key.bucket_width,
            r.key.model or "",
            r.key.api_key_id or "",
            r.key.workspace_id or "",
            r.key.service_tier or "",
            r.key.context_window or "",
            r.key.inference_geo or "",
            r.counts.uncached_input_tokens,
            r.counts.cache_creation_5m_tokens,
            r.counts.cache_creation_1h_tokens,
            r.counts.cache_read_tokens,
            r.counts.output_tokens,
            r.counts.web_search_requests,
            usage_booking.price_with_bill(price, r.key, r.counts, None).cost_nanos,
        )
        for r in rows
    ]


def timed_executemany(path: Path, sql: str, rows: list[tuple[Any, ...]], setup: str) -> float:
    """Seconds for one ``sqlite3`` ``executemany`` of ``rows`` and its commit, after ``setup``."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(setup)
    began = time.perf_counter()
    connection.executemany(sql, rows)
    connection.commit()
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def timed_copy(sql: str, rows: Iterable[tuple[Any, ...]], setup: str, options: str = "") -> float:
    """Seconds for one PostgreSQL ``COPY`` of ``rows`` and its commit, after ``setup``."""
    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, options=options) as connection:
        if setup:
            connection.execute(setup.encode())
        began = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(sql.encode()) as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - began


def sqlite_floor(rows: list[tuple[Any, ...]], folder: Path) -> float:
    marks = ", ".join("?" * len(COLUMNS))
    plain = [(r[0].isoformat(), *r[1:]) for r in rows]
    return timed_executemany(
        folder / "floor.db",
        f"INSERT INTO bare VALUES ({marks})",
        plain,
        f"CREATE TABLE bare ({', '.join(COLUMNS)})",
    )


SCHEMA_EXTRA = ("charged_nanos", "estimated", "first_seen_at", "updated_at")
"""The NOT NULL columns of ``usage`` that the bare floor table does not have."""
USAGE_COLUMNS = (
    "bucket_start",
    "bucket_width",
    "series_id",
    *usage_booking.COUNT_FIELDS,
    "cost_nanos",
)
"""The floor's columns as ``usage`` holds them: the grouping strings are its series'."""


def schema_floor(backend: str, rows: list[tuple[Any, ...]], folder: Path) -> float:
    """The same rows written by the driver alone into ``usage`` as the migrations create it
    (its unique natural key on width, start and series): the speed of our schema on this disk,
    under which no booking can go. The rows' series are stored and their ids assigned before
    the clock starts. SQLite: one ``executemany``; PostgreSQL: ``COPY``."""
    series: dict[tuple[Any, ...], int] = {}
    keyed = [(r[0], r[1], series.setdefault(r[2:8], len(series) + 1), *r[8:]) for r in rows]
    groupings = [(index, *grouping) for grouping, index in series.items()]
    with database(backend, folder / "schema-floor") as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                SERIES.insert(),
                [dict(zip(("id", *SERIES_FIELDS), g, strict=True)) for g in groupings],
            )
        engine.dispose()
        columns = ", ".join((*USAGE_COLUMNS, *SCHEMA_EXTRA))
        if backend == "sqlite":
            stamp = NOW.replace(tzinfo=None).isoformat(" ", "microseconds")
            plain = [
                (
                    r[0].replace(tzinfo=None).isoformat(" ", "microseconds"),
                    *r[1:],
                    r[-1],
                    1,
                    stamp,
                    stamp,
                )
                for r in keyed
            ]
            marks = ", ".join("?" * (len(USAGE_COLUMNS) + len(SCHEMA_EXTRA)))
            sql = f"INSERT INTO usage ({columns}) VALUES ({marks})"
            return timed_executemany(Path(url.removeprefix("sqlite:///")), sql, plain, "")
        schema = url.rsplit("%3D", 1)[1]
        typed = ((*row, row[-1], True, NOW, NOW) for row in keyed)
        sql = f"COPY usage ({columns}) FROM STDIN"
        return timed_copy(sql, typed, "", options=f"-csearch_path={schema}")


def postgres_floor(rows: list[tuple[Any, ...]]) -> float:
    return timed_copy(
        f"COPY bare ({', '.join(COLUMNS)}) FROM STDIN",
        rows,
        "CREATE TEMP TABLE bare (bucket_start timestamptz, bucket_width text, model text, "
        "api_key_id text, workspace_id text, service_tier text, context_window text, "
        "inference_geo text, uncached_input_tokens bigint, cache_creation_5m_tokens bigint, "
        "cache_creation_1h_tokens bigint, cache_read_tokens bigint, output_tokens bigint, "
        "web_search_requests bigint, cost_nanos bigint)",
    )


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'creditwatch.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        with psycopg.connect(
            POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return True
    except psycopg.OperationalError:
        return False


def bench_backend(
    backend: str, base_url: str, rows: list[UsageRow], floor: list[tuple[Any, ...]]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        clock = ManualClock(NOW)
        with database(backend, folder) as url:
            settings = bench_settings(base_url, url)
            with Runtime(settings) as runtime:
                began = time.perf_counter()
                result = runtime.cycle(clock)
                full = time.perf_counter() - began
                began = time.perf_counter()
                again = runtime.cycle(clock)
                reread = time.perf_counter() - began
                assert (
                    again.collection.booking.new_rows == again.collection.booking.changed_rows == 0
                )
            with (
                database(backend, folder / "b")
                if backend == "postgres"
                else _fresh_sqlite(folder) as url2
            ):
                engine = make_engine(url2)
                upgrade(engine)
                price = make_pricer(PriceBook.load())
                began = time.perf_counter()
                with transaction(engine) as session:
                    usage_booking.book_usage(session, rows, price, now=NOW)
                booking = time.perf_counter() - began
                began = time.perf_counter()
                with transaction(engine) as session:
                    same = usage_booking.book_usage(session, rows, price, now=NOW)
                unchanged = time.perf_counter() - began
                assert same.unchanged_rows == len(rows)
                grown_rows = grown(rows)
                began = time.perf_counter()
                with transaction(engine) as session:
                    changed = usage_booking.book_usage(session, grown_rows, price, now=NOW)
                growing = time.perf_counter() - began
                assert changed.changed_rows == len(rows)
                del grown_rows
                engine.dispose()
        floor_seconds = (
            sqlite_floor(floor, folder) if backend == "sqlite" else postgres_floor(floor)
        )
        schema_seconds = schema_floor(backend, floor, folder)
    n = result.collection.rows_fetched
    return {
        "rows": n,
        "full_path_seconds": round(full, 3),
        "full_path_rows_per_second": round(n / full),
        "reread_last_3h_seconds": round(reread, 3),
        "booking_seconds": round(booking, 3),
        "booking_rows_per_second": round(len(rows) / booking),
        "floor": "sqlite3.executemany" if backend == "sqlite" else "COPY",
        "floor_seconds": round(floor_seconds, 3),
        "floor_rows_per_second": round(len(floor) / floor_seconds),
        "booking_vs_floor_slowdown": round(booking / floor_seconds, 2),
        "schema_floor_seconds": round(schema_seconds, 3),
        "schema_floor_vs_floor": round(schema_seconds / floor_seconds, 2),
        "booking_vs_schema_floor_slowdown": round(booking / schema_seconds, 2),
        "rebooking_unchanged_seconds": round(unchanged, 3),
        "rebooking_grown_seconds": round(growing, 3),
        "full_path_vs_floor_slowdown": round(full / floor_seconds, 2),
    }


def grown(rows: list[UsageRow]) -> list[UsageRow]:
    """Every row read again one output token larger: a re-read that changes all of them."""
    return [
        UsageRow(r.key, replace(r.counts, output_tokens=r.counts.output_tokens + 1)) for r in rows
    ]


def _ingest_in_child(base_url: str, result: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = bench_settings(base_url, f"sqlite:///{folder}/rss.db")
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with Runtime(settings) as runtime:
            runtime.cycle(ManualClock(NOW))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.put((round(baseline / 1024), round(peak / 1024)))


def ingest_peak_rss(base_url: str) -> tuple[int, int]:
    """Peak RSS (MiB) of a process that only runs the month's ingest, and its start-up RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_ingest_in_child, args=(base_url, queue))
    process.start()
    baseline, peak = queue.get(timeout=600)
    process.join(timeout=30)
    return baseline, peak


@contextmanager
def _fresh_sqlite(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / 'booking-only.db'}"


class _Cursor(msgspec.Struct):
    has_more: bool
    next_page: str | None = None


def fetch_only(http: httpx.Client) -> float:
    """The month's pages fetched and only their cursor read: the simulator and HTTP alone, the
    floor under fetch + parse."""
    params: list[tuple[str, str]] = [
        ("starting_at", START.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", END.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("bucket_width", "1h"),
        ("limit", "168"),
        *(("group_by[]", name) for name in ALL_GROUP_BY),
    ]
    headers = {"x-api-key": KEY, "anthropic-version": ANTHROPIC_VERSION}
    began = time.perf_counter()
    cursor: str | None = None
    while True:
        query = params if cursor is None else [*params, ("page", cursor)]
        response = http.get(USAGE_PATH, params=tuple(query), headers=headers)
        response.raise_for_status()
        page = msgspec.json.decode(response.content, type=_Cursor)
        if not page.has_more:
            return time.perf_counter() - began
        cursor = page.next_page


def describe(backend: str, f: dict[str, Any]) -> str:
    full = f"full path {f['full_path_rows_per_second']:>8,} rows/s ({f['full_path_seconds']}s)"
    booking = f"booking {f['booking_rows_per_second']:>8,} rows/s"
    floor = f"{f['floor']} {f['floor_rows_per_second']:>9,} rows/s"
    ratio = (
        f"{f['booking_vs_floor_slowdown']}x slower (the same rows into our schema by the driver"
        f" alone: {f['schema_floor_seconds']}s, booking {f['booking_vs_schema_floor_slowdown']}x"
        f" that); booked again unchanged"
        f" {f['rebooking_unchanged_seconds']}s, all grown {f['rebooking_grown_seconds']}s"
    )
    reread = f"re-read of the last 3h {f['reread_last_3h_seconds']}s"
    return f"{backend:9} {full}; {booking} vs {floor} = {ratio}; {reread}"


def main() -> int:
    figures: dict[str, Any] = {"keys": N_KEYS, "month": f"{START:%Y-%m}", "bucket_width": "1h"}
    with simulator() as base_url:
        baseline, peak = ingest_peak_rss(base_url)
        figures["ingest_process_rss_mib"] = {"at_start": baseline, "peak": peak}
        print(f"ingest of the month in its own process: peak RSS {peak} MiB ({baseline} at start)")
        with build_http_client(base_url, timeout=300) as http:
            figures["fetch_only_seconds"] = round(fetch_only(http), 3)
            began = time.perf_counter()
            rows = AdminClient(http, KEY).usage(START, END, bucket_width="1h")
            figures["fetch_and_parse_seconds"] = round(time.perf_counter() - began, 3)
        figures["parse_seconds"] = round(
            figures["fetch_and_parse_seconds"] - figures["fetch_only_seconds"], 3
        )
        book = PriceBook.load()
        began = time.perf_counter()
        floor = floor_rows(rows, book)
        figures["pricing_seconds"] = round(time.perf_counter() - began, 3)
        figures["rows"] = len(rows)
        print(
            f"{len(rows):,} rows fetched and parsed in {figures['fetch_and_parse_seconds']}s "
            f"(the simulator and HTTP alone: {figures['fetch_only_seconds']}s), "
            f"priced in {figures['pricing_seconds']}s"
        )
        backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
        for backend in backends:
            figures[backend] = bench_backend(backend, base_url, rows, floor)
            print(describe(backend, figures[backend]))
        if "postgres" not in backends:
            print("postgres  skipped: no server at CW_TEST_POSTGRES_URL")
    figures["bench_process_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
