"""`make bench`: evaluate 1,000 budgets over a month of hourly usage for 200 keys.

The ledger holds October 2026 at 1h for 200 API keys × 6 models in 8 workspaces (864,000
rows). 1,000 budgets: 400 scoped to one key (day and month), 300 to one key in Los Angeles
weeks, 200 to a workspace and model family, 100 org-wide or by model with forecasts. One
evaluation is everything a cycle adds after booking: the facts (one grouped query per distinct
period), every rule, the dedup decision and the outbox. The floor is the same grouped queries
run through plain ``sqlite3``. Figures are printed and written to ``bench/results/alerts.json``.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import results_path, write_figures
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.alerting import evaluate
from service.settings import load_settings
from service.store.engine import make_engine, transaction
from service.store.migrations import upgrade
from service.store.usage_booking import book_usage
from tests.helpers import flat_price

START = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 31 * 24
NOW = START + timedelta(hours=HOURS - 1, minutes=30)
KEYS = [f"apikey_{i:03d}" for i in range(200)]
MODELS = (
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-6",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-opus-4-1-20250805",
)
WORKSPACES = [f"wrkspc_{i}" for i in range(8)]
RESULTS = results_path("alerts")
RUNS = 7


def fill(url: str) -> int:
    engine = make_engine(url)
    upgrade(engine)
    rows = 0
    for day in range(31):
        batch = [
            UsageRow(
                UsageKey(
                    START + timedelta(hours=day * 24 + hour),
                    "1h",
                    model,
                    key,
                    WORKSPACES[k % len(WORKSPACES)],
                    "standard",
                    "0-200k",
                    "global",
                ),
                TokenCounts(uncached_input_tokens=(k % 17 + m + 1) * 1_000 + hour * 10),
            )
            for hour in range(24)
            for k, key in enumerate(KEYS)
            for m, model in enumerate(MODELS)
        ]
        with transaction(engine) as session:
            book_usage(session, batch, flat_price, now=START)
        rows += len(batch)
    engine.dispose()
    return rows


def budgets() -> dict[str, str]:
    env: dict[str, str] = {}
    for i, key in enumerate(KEYS):
        env[f"CREDITWATCH_BUDGET_KEY_DAY_{i}"] = f"limit=0.5 period=day api_key={key}"
        env[f"CREDITWATCH_BUDGET_KEY_MONTH_{i}"] = f"limit=10 period=month api_key={key}"
    for i in range(300):
        key = KEYS[i % len(KEYS)]
        env[f"CREDITWATCH_BUDGET_KEY_WEEK_{i}"] = (
            f"limit={3 + i % 5} period=week tz=America/Los_Angeles api_key={key}"
        )
    for i in range(200):
        workspace, model = WORKSPACES[i % 8], MODELS[i % 6].rsplit("-", 1)[0]
        env[f"CREDITWATCH_BUDGET_WS_{i}"] = (
            f"limit={20 + i} period=month workspace={workspace} model={model}"
        )
    for i in range(100):
        scope = "" if i % 2 else f"model={MODELS[i % 6]}"
        env[f"CREDITWATCH_BUDGET_ORG_{i}"] = (
            f"limit={100 + i * 10} period=month forecast=100,120 {scope}".strip()
        )
    return env


def floor_seconds(path: Path) -> float:
    """The grouped queries alone, through sqlite3 (the period windows the budgets use)."""
    windows = [
        ("2026-10-31 00:00:00", "2026-11-01 00:00:00"),
        ("2026-10-01 00:00:00", "2026-11-01 00:00:00"),
        ("2026-10-26 07:00:00", "2026-11-02 08:00:00"),
        ("2026-10-31 22:00:00", "2026-10-31 23:00:00"),
    ]
    connection = sqlite3.connect(path)
    began = time.perf_counter()
    for start, end in windows:
        connection.execute(
            "SELECT s.workspace_id, s.api_key_id, s.model, SUM(u.cost_nanos), SUM(u.cost_nanos) "
            "FROM usage AS u JOIN usage_series AS s ON s.id = u.series_id "
            "WHERE u.bucket_width = '1h' AND u.bucket_start >= ? AND u.bucket_start < ? "
            "GROUP BY s.workspace_id, s.api_key_id, s.model",
            (start, end),
        ).fetchall()
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="creditwatch-bench-alerts-") as folder:
        path = Path(folder) / "alerts.db"
        url = f"sqlite:///{path}"
        began = time.perf_counter()
        rows = fill(url)
        print(f"ledger: {rows:,} rows in {time.perf_counter() - began:.1f}s")
        settings = load_settings(
            {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-bench", "CREDITWATCH_DATABASE_URL": url,
             **budgets()},
            None,
            now=NOW,
        )  # fmt: skip
        assert len(settings.rules.budgets) == 1000
        engine = make_engine(url)
        seconds, produced = [], []
        for run in range(RUNS):
            now = NOW + timedelta(minutes=5 * run)
            began = time.perf_counter()
            with transaction(engine) as session:
                result = evaluate(session, settings, now)
            seconds.append(time.perf_counter() - began)
            produced.append(len(result.alerts))
        engine.dispose()
        floors = [floor_seconds(path) for _ in range(RUNS)]
    steady = statistics.median(seconds[1:])
    floor = statistics.median(floors)
    figures = {
        "rows": rows,
        "budgets": 1000,
        "first_evaluation_ms": round(seconds[0] * 1000, 1),
        "first_evaluation_alerts": produced[0],
        "steady_evaluation_ms": round(steady * 1000, 1),
        "steady_alerts": produced[1:],
        "floor_grouped_queries_ms": round(floor * 1000, 1),
        "ratio_to_floor": round(steady / floor, 2),
        "target_ms": 100,
    }
    print(json.dumps(figures, indent=2))
    write_figures(RESULTS, figures)


if __name__ == "__main__":
    main()
