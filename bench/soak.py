"""`make bench`: resident memory of the cycle process after 10,000 fast cycles.

The real cycle (``Runtime.cycle``: collect, price, book, walk the credits, evaluate the rules)
runs ``BENCH_SOAK_CYCLES`` times (default 10,000) against the simulator in its own process, on
SQLite in a temporary directory, in a spawned child process of its own so that the memory
measured is the cycle's alone (not this process's, nor the simulator's). Both clocks move
together, one minute per cycle (a 1-minute poll, the fastest Anthropic supports): the simulator
reads its time from a value shared with the child, which sets it before each cycle, so every
cycle finds the current hour grown a little and, once an hour, a new hour. 10,000 cycles are
about a week of usage for ``BENCH_SOAK_KEYS`` keys (default 3) × 6 models, a 1-hour look-back,
a monthly budget with its thresholds and auto-reload on; no channel (alerts wait in the outbox:
delivery is not this figure). The ledger is migrated here before the child starts, as
`creditwatch db upgrade` or any earlier start leaves it: the child finds the schema at head with
one query and never imports Alembic, which only a start that migrates holds (about 10 MiB).
RSS (``VmRSS`` of ``/proc/self/status``) is read at start (the imports done, no ``Runtime``
yet), after ``BENCH_SOAK_WARMUP`` cycles (default 500), every 500 cycles and at the end; growth
is end minus warm-up, peak the larger of ``VmHWM`` and ``ru_maxrss``. Targets: at most 80 MiB
after the cycles, at most 5 MiB of growth. Figures are printed and written to
``bench/results/soak.json``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.figures import results_path, write_figures
from service.runtime.cycle import Runtime
from service.settings import Settings, load_settings
from service.store.engine import make_engine
from service.store.migrations import upgrade

if TYPE_CHECKING:
    from service.simulator import WorkloadSpec

KEY = "sk-ant-admin01-bench-soak-0000000000"
START = datetime(2026, 11, 2, tzinfo=UTC)
BACKFILL_FROM = START - timedelta(hours=6)
STEP = timedelta(minutes=1)
CYCLES = int(os.environ.get("BENCH_SOAK_CYCLES", "10000"))
WARMUP = max(1, min(int(os.environ.get("BENCH_SOAK_WARMUP", "500")), CYCLES))
N_KEYS = int(os.environ.get("BENCH_SOAK_KEYS", "3"))
SAMPLE_EVERY = 500
TARGET_RSS_MIB = 80
TARGET_GROWTH_MIB = 5
RESULTS = results_path("soak")


class SharedClock:
    """A clock two processes read: epoch seconds in a shared double, set by either side."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def set(self, now: datetime) -> None:
        self.value.value = now.timestamp()

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.value.value, UTC)


def _serve(url_queue: Any, stop: Any, spec: WorkloadSpec, key: str, value: Any) -> None:
    # Imported here: the cycle's child re-imports this module, and must not hold the simulator.
    from service.simulator import SimulatorServer, Workload

    with SimulatorServer(Workload(spec), admin_key=key, clock=SharedClock(value)) as server:
        url_queue.put(server.base_url)
        stop.wait()


@contextmanager
def simulated_on(spec: WorkloadSpec, now: datetime, key: str) -> Iterator[tuple[str, Any]]:
    """The simulator of ``spec`` in its own process, on a clock shared with its caller.

    Yields its URL and the shared value (epoch seconds, first ``now``): whoever holds the
    value (``SharedClock(value)``, in any process it is passed to) moves the simulator's time.
    """
    context = multiprocessing.get_context("spawn")
    value = context.Value("d", now.timestamp())
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(queue, stop, spec, key, value), daemon=True)
    process.start()
    try:
        yield queue.get(timeout=120), value
    finally:
        stop.set()
        process.join(timeout=10)


def soak_settings(base_url: str, database_url: str) -> Settings:
    return load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CREDITWATCH_DATABASE_URL": database_url,
            "CREDITWATCH_BACKFILL_FROM": BACKFILL_FROM.isoformat(),
            "CREDITWATCH_POLL_INTERVAL": "1m",
            "CREDITWATCH_LOOKBACK": "1h",
            "CREDITWATCH_STARTING_BALANCE": "1000",
            "CREDITWATCH_STARTING_BALANCE_AT": BACKFILL_FROM.isoformat(),
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "500",
            "CREDITWATCH_AUTO_RELOAD_TO": "1000",
            "CREDITWATCH_MONTHLY_BUDGET": "500",
            "CREDITWATCH_HTTP_TIMEOUT": "30s",
            "CREDITWATCH_DELIVERY_LEASE": "1m",
        },
        None,
        now=START,
    )


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mib() -> float:
    """This process's resident set now (``VmRSS``), in MiB."""
    return _status_mib("VmRSS")


def peak_mib() -> float:
    """This process's peak resident set, in MiB: the larger of ``VmHWM`` and ``ru_maxrss``
    (KiB on Linux; the kernel updates it lazily, so it can trail ``VmRSS`` a little)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(_status_mib("VmHWM"), maxrss)


def _soak(base_url: str, value: Any, folder: str, *, cycles: int, warmup: int, result: Any) -> None:
    """The child: ``cycles`` cycles one minute apart on the ledger in ``folder``; puts its
    figures on ``result``."""
    clock = SharedClock(value)
    figures: dict[str, Any] = {"rss_at_start_mib": round(rss_mib(), 1)}
    samples: list[tuple[int, float]] = []
    rows = alerts = 0
    slowest = 0.0
    settings = soak_settings(base_url, f"sqlite:///{folder}/soak.db")
    with Runtime(settings) as runtime:
        began = warm_began = time.perf_counter()
        for number in range(1, cycles + 1):
            now = START + STEP * number
            clock.set(now)
            cycle_began = time.perf_counter()
            outcome = runtime.cycle(clock)
            slowest = max(slowest, time.perf_counter() - cycle_began)
            rows += outcome.collection.rows_fetched
            alerts += len(outcome.alerts)
            if number == warmup:
                figures["rss_after_warmup_mib"] = round(rss_mib(), 1)
                warm_began = time.perf_counter()
            if number % SAMPLE_EVERY == 0 or number == cycles:
                samples.append((number, round(rss_mib(), 1)))
        seconds = time.perf_counter() - began
        figures["rss_after_mib"] = round(rss_mib(), 1)
        figures["peak_mib"] = round(peak_mib(), 1)
        figures["after_warmup_seconds"] = round(time.perf_counter() - warm_began, 1)
    figures["database_mib"] = round(os.path.getsize(f"{folder}/soak.db") / 2**20, 1)
    figures.update(
        seconds=round(seconds, 1),
        slowest_cycle_seconds=round(slowest, 3),
        rows_fetched=rows,
        alerts=alerts,
        rss_samples_mib=samples,
    )
    result.put(figures)


def soak(base_url: str, value: Any, cycles: int, warmup: int) -> dict[str, Any]:
    """Migrate a new ledger, run ``_soak`` on it in a spawned process of its own and return
    what it measured."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with tempfile.TemporaryDirectory(prefix="creditwatch-bench-soak-") as folder:
        engine = make_engine(f"sqlite:///{folder}/soak.db")
        upgrade(engine)
        engine.dispose()
        process = context.Process(
            target=_soak,
            args=(base_url, value, folder),
            kwargs={"cycles": cycles, "warmup": warmup, "result": queue},
        )
        process.start()
        try:
            figures: dict[str, Any] = queue.get(timeout=3600)
        finally:
            process.join(timeout=60)
    return figures


def _heartbeat(stop: threading.Event, began: float, say: Callable[[str], None]) -> None:
    while not stop.wait(60):
        say(f"  ... soak running, {time.perf_counter() - began:.0f}s")


def main() -> int:
    from service.simulator import WorkloadSpec

    spec = WorkloadSpec(seed=17, start=BACKFILL_FROM, n_keys=N_KEYS, n_workspaces=1)
    figures: dict[str, Any] = {
        "cycles": CYCLES,
        "warmup_cycles": WARMUP,
        "keys": N_KEYS,
        "clock": f"simulator and cycle one minute apart per cycle, from {START:%Y-%m-%dT%H:%MZ}",
        "lookback": "1h",
        "bucket_width": "1h",
        "database": "sqlite",
    }
    stop = threading.Event()
    began = time.perf_counter()
    beat = threading.Thread(target=_heartbeat, args=(stop, began, print), daemon=True)
    beat.start()
    try:
        with simulated_on(spec, START, KEY) as (base_url, value):
            measured = soak(base_url, value, CYCLES, WARMUP)
    finally:
        stop.set()
    figures.update(measured)
    figures["growth_mib"] = round(figures["rss_after_mib"] - figures["rss_after_warmup_mib"], 1)
    figures["cycles_per_second"] = round(CYCLES / figures["seconds"], 1)
    figures["target_rss_mib"] = TARGET_RSS_MIB
    figures["target_growth_mib"] = TARGET_GROWTH_MIB
    figures["within_target"] = (
        figures["rss_after_mib"] <= TARGET_RSS_MIB and figures["growth_mib"] <= TARGET_GROWTH_MIB
    )
    print(
        f"soak: {CYCLES:,} cycles in {figures['seconds']}s ({figures['cycles_per_second']}/s): "
        f"RSS {figures['rss_after_warmup_mib']} MiB after {WARMUP:,}, "
        f"{figures['rss_after_mib']} MiB after {CYCLES:,} (growth {figures['growth_mib']:+} MiB), "
        f"peak {figures['peak_mib']} MiB; target <= {TARGET_RSS_MIB} MiB, "
        f"growth <= {TARGET_GROWTH_MIB} MiB: {'met' if figures['within_target'] else 'MISSED'}"
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
