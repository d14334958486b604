"""`make bench`, last step: every figure of the run in ``bench/results.json``, and a table.

Each benchmark writes its own file under ``bench/results/``; this gathers them into one object
(``figures``: one row per figure of issue 12's table, with its floor from the same run and the
ratio where one exists, and ``runs``: every file as written) and prints the table. A figure no
benchmark measures yet is listed as such, not left out: the table is the to-do list too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench.figures import RESULTS_DIR, write_figures

RUNS = RESULTS_DIR
RESULTS = RESULTS_DIR.parent / "results.json"

Json = dict[str, Any]
Getter = Callable[[dict[str, Json]], tuple[str | None, str | None, float | None]]


def _dig(runs: dict[str, Json], path: str) -> Any:
    value: Any = runs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _seconds(path: str, floor: str | None = None) -> Getter:
    def get(runs: dict[str, Json]) -> tuple[str | None, str | None, float | None]:
        value, low = _dig(runs, path), _dig(runs, floor) if floor else None
        if value is None:
            return None, None, None
        ratio = round(value / low, 2) if low else None
        return f"{value} s", (f"{low} s" if low is not None else None), ratio

    return get


def _plain(path: str, unit: str) -> Getter:
    def get(runs: dict[str, Json]) -> tuple[str | None, str | None, float | None]:
        value = _dig(runs, path)
        return (None if value is None else f"{value} {unit}"), None, None

    return get


FIGURES: tuple[tuple[str, str, Getter], ...] = (
    (
        "booking a month, 200 keys x 6 models, SQLite",
        "<= 2.5x executemany",
        _seconds("ingest.sqlite.booking_seconds", "ingest.sqlite.floor_seconds"),
    ),
    (
        "booking a month, PostgreSQL",
        "<= 2.5x COPY",
        _seconds("ingest.postgres.booking_seconds", "ingest.postgres.floor_seconds"),
    ),
    (
        "booking a month, SQLite, vs the same rows into our schema by the driver alone",
        "",
        _seconds("ingest.sqlite.booking_seconds", "ingest.sqlite.schema_floor_seconds"),
    ),
    (
        "booking a month, PostgreSQL, vs the same rows into our schema by COPY alone",
        "",
        _seconds("ingest.postgres.booking_seconds", "ingest.postgres.schema_floor_seconds"),
    ),
    (
        "fetch + parse of the month (floor: the simulator and HTTP alone)",
        "<= 6 s",
        _seconds("ingest.fetch_and_parse_seconds", "ingest.fetch_only_seconds"),
    ),
    (
        "peak memory during that backfill",
        "<= 200 MiB",
        _plain("ingest.ingest_process_rss_mib.peak", "MiB"),
    ),
    (
        "a normal cycle (re-read of the look-back), SQLite",
        "",
        _seconds("ingest.sqlite.reread_last_3h_seconds"),
    ),
    (
        "a cycle with nothing new after a year (floor: after a day)",
        "<= 50 ms CPU",
        _seconds("steady.year.steady_cycle_cpu_seconds", "steady.day.steady_cycle_cpu_seconds"),
    ),
    (
        "status on that year (floor: after a day)",
        "<= 300 ms",
        _seconds("steady.year.status_seconds", "steady.day.status_seconds"),
    ),
    ("RSS of run after 10,000 fast cycles", "<= 80 MiB", _plain("soak.rss_after_mib", "MiB")),
    ("creditwatch --help", "<= 300 ms", _seconds("startup.help_seconds", "startup.floor_seconds")),
    ("time to alert, p99 over 50 events", "<= poll + 2 s", _seconds("latency.p99_seconds")),
    (
        "credit walk, a year with thousands of reloads",
        "O(events)",
        _seconds("walk.walk_seconds", "walk.floor_seconds"),
    ),
    (
        "analytics: first collection of a day, SQLite (floor: the usage report's)",
        "",
        _seconds(
            "ingest.analytics.sqlite.analytics.seconds", "ingest.analytics.sqlite.messages.seconds"
        ),
    ),
)


def main() -> int:
    runs: dict[str, Json] = {}
    for path in sorted(RUNS.glob("*.json")):
        runs[path.stem] = json.loads(path.read_text())
    rows: list[dict[str, Any]] = []
    for name, target, get in FIGURES:
        value, floor, ratio = get(runs)
        rows.append(
            {"figure": name, "value": value, "floor": floor, "ratio": ratio, "target": target}
        )
    width = max(len(row["figure"]) for row in rows)
    print(f"\n{'figure':<{width}}  {'value':>12}  {'floor':>10}  {'ratio':>6}  target")
    for row in rows:
        shown = "" if row["ratio"] is None else f"{row['ratio']}x"
        value = row["value"] or "not measured yet"
        print(
            f"{row['figure']:<{width}}  {value:>12}  {row['floor'] or '':>10}  {shown:>6}  "
            f"{row['target']}"
        )
    write_figures(RESULTS, {"figures": rows, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
