"""`make bench`: backtest the forecast on two months of the simulator's workload.

The simulator serves September and October 2026 (seed 21, 12 keys); its clock stands at
1 November 02:00 UTC so October is final. creditwatch ingests it into a temporary SQLite ledger
through the normal cycle and reads it back as an hourly series, as ``status`` does. Three
scenarios: the steady workload, a lasting doubling of spend from 12 October, and a five-day
tripling from 12 October.

For October, the forecast is made at 00:00 UTC on day N, as ``status`` would make it then (it
sees only the hours before day N, less the newest one it treats as still growing), and compared
with what happened:

- end of month: spend so far plus the expected rest (:func:`service.forecast.build_profile`,
  :func:`service.forecast.projected_period_spend`) against October's actual total;
- runway: an opening balance (60% or 95% of October's actual spend) bought on 1 October, no
  auto-reload; the actual zero crossing is the balance walk (:func:`service.credits.walk`) over
  the actual hourly charges; the prediction walks the lots left at day N on expected spend
  (:func:`service.forecast.runway`). Only days before the actual crossing are predicted. The
  ledger's state at day N uses final figures for the hour before midnight, which the service
  would see still growing: one hour of hindsight, the same for both methods.

The baseline is a flat profile: the mean hourly spend of all the history the forecast sees,
fed through the same projection and walk, so the difference is the profile alone (daily rhythm,
weekends, recency weighting). The table lists a few days; the summary row averages the absolute
errors over every day from the first one whose history could know the scenario's change.
Figures are printed and written to ``bench/results/forecast.json``. The simulator runs
in-process: nothing here is timed against it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import results_path, write_figures
from service.domain.credit_walk import DEFAULT_LOT_LIFETIME, Charge, Lot, walk
from service.domain.forecast import (
    NotEnoughHistory,
    SpendProfile,
    build_profile,
    history_as_of,
    projected_period_spend,
    runway,
)
from service.domain.money import format_usd
from service.runtime.cycle import Runtime
from service.settings import load_settings
from service.simulator import ManualClock, SimulatorServer, Spike, Workload, WorkloadSpec
from service.store.engine import transaction
from service.store.usage_queries import hourly_spend

KEY = "sk-ant-admin01-bench-forecast-000"
HOUR = timedelta(hours=1)
DATA_START = datetime(2026, 9, 1, tzinfo=UTC)
MONTH = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)
NOW = MONTH_END + 2 * HOUR
STEADY = WorkloadSpec(seed=21, start=DATA_START, n_keys=12)
CHANGE = datetime(2026, 10, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    name: str
    note: str
    spec: WorkloadSpec
    mean_from_day: int
    """No method foresees a change before its history holds one: average from the first day
    that does."""


# The steady workload repeats its week, noise aside; the other two change under the forecast.
SCENARIOS = (
    Scenario("steady", "the workload as it is", STEADY, 2),
    Scenario(
        "step",
        "spend doubles from 12 October on and stays",
        replace(STEADY, spike=Spike(CHANGE, NOW, 2)),
        13,
    ),
    Scenario(
        "spike",
        "spend triples from 12 to 16 October, then returns",
        replace(STEADY, spike=Spike(CHANGE, CHANGE + timedelta(days=5), 3)),
        13,
    ),
)
TABLE_DAYS = (3, 7, 10, 14, 21, 28)
ALL_DAYS = tuple(range(2, 32))
BALANCE_PERCENT = (60, 95)
RESULTS = results_path("forecast")


def ingest(spec: WorkloadSpec) -> dict[datetime, int]:
    """Hour start → spend (nano-USD) from ``DATA_START``, through the collector and the ledger."""
    clock = ManualClock(NOW)
    with (
        SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as server,
        tempfile.TemporaryDirectory() as folder,
    ):
        settings = load_settings(
            {
                "ANTHROPIC_ADMIN_KEY": KEY,
                "ANTHROPIC_BASE_URL": server.base_url,
                "CREDITWATCH_DATABASE_URL": f"sqlite:///{Path(folder) / 'creditwatch.db'}",
                "CREDITWATCH_BACKFILL_FROM": "2026-09-01T00:00:00Z",
                "CREDITWATCH_HTTP_TIMEOUT": "300s",
                "CREDITWATCH_DELIVERY_LEASE": "10m",
            },
            None,
        )
        with Runtime(settings) as runtime:
            runtime.cycle(clock)
            with transaction(runtime.engine) as session:
                return hourly_spend(session, settings.collection.bucket_width, DATA_START)


def hours_between(start: datetime, end: datetime) -> Iterable[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


def charges(hourly: Mapping[datetime, int], start: datetime, end: datetime) -> list[Charge]:
    return [Charge(h, h + HOUR, hourly[h]) for h in hours_between(start, end) if hourly.get(h)]


def spent(hourly: Mapping[datetime, int], start: datetime, end: datetime) -> int:
    return sum(hourly.get(h, 0) for h in hours_between(start, end))


def flat_profile(hourly: Mapping[datetime, int], as_of: datetime) -> SpendProfile:
    """The baseline: every hour expects the mean of all hours from ``DATA_START`` to ``as_of``."""
    hours = list(hours_between(DATA_START, as_of))
    mean = spent(hourly, DATA_START, as_of) // len(hours)
    return SpendProfile((mean,) * 24, (mean,) * 24, as_of=as_of, history=as_of - DATA_START)


@dataclass(frozen=True)
class Forecasters:
    """What each method expects from day N on, built from the history before it."""

    now: datetime
    method: SpendProfile
    flat: SpendProfile


def forecasters(hourly: Mapping[datetime, int], day: int) -> Forecasters:
    now = MONTH.replace(day=day)
    seen = {hour: nanos for hour, nanos in hourly.items() if hour < now}
    method = build_profile(seen, now, history_start=DATA_START)
    if isinstance(method, NotEnoughHistory):
        raise SystemExit(f"day {day}: {method.reason}")
    return Forecasters(now, method, flat_profile(seen, history_as_of(now)))


def error_percent(predicted: int, actual: int) -> float:
    return round((predicted - actual) * 100 / actual, 2)


def end_of_month(hourly: Mapping[datetime, int], f: Forecasters, actual: int) -> dict[str, Any]:
    row: dict[str, Any] = {"day": f.now.day}
    for name, profile in (("method", f.method), ("flat", f.flat)):
        so_far = spent(hourly, MONTH, profile.as_of)
        predicted = projected_period_spend(profile, spent_before_as_of=so_far, period_end=MONTH_END)
        row[f"{name}_usd"] = format_usd(predicted)
        row[f"{name}_error_pct"] = error_percent(predicted, actual)
    return row


def opening_lot(balance: int) -> Lot:
    return Lot("opening", "opening", MONTH, balance, MONTH + DEFAULT_LOT_LIFETIME)


def actual_zero(hourly: Mapping[datetime, int], balance: int) -> datetime | None:
    result = walk(
        [opening_lot(balance)], charges(hourly, MONTH, MONTH_END), start=MONTH, until=MONTH_END
    )
    return result.first_zero_at


def predicted_zeros(
    hourly: Mapping[datetime, int], f: Forecasters, balance: int, actual: datetime
) -> dict[str, Any]:
    """Each method's zero time from the ledger's state at day N, and its error in hours."""
    state = walk([opening_lot(balance)], charges(hourly, MONTH, f.now), start=MONTH, until=f.now)
    row: dict[str, Any] = {"day": f.now.day, "balance_at_day_usd": format_usd(state.balance_nanos)}
    for name, profile in (("method", f.method), ("flat", f.flat)):
        zero_at = runway(
            profile,
            now=f.now,
            lots=state.lots,
            remaining=state.remaining,
            balance_nanos=state.balance_nanos,
            policy=None,
            reloaded_by_month=state.reloaded_by_month,
            lot_lifetime=DEFAULT_LOT_LIFETIME,
        ).zero_at
        row[f"{name}_zero_at"] = iso(zero_at)
        row[f"{name}_error_hours"] = (
            None if zero_at is None else round((zero_at - actual) / HOUR, 1)
        )
    return row


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def mean_abs(rows: list[dict[str, Any]], field: str) -> float | None:
    values = [abs(row[field]) for row in rows if row[field] is not None]
    return round(sum(values) / len(values), 2) if values else None


def backtest(hourly: Mapping[datetime, int], mean_from_day: int) -> dict[str, Any]:
    """End-of-month and runway errors for every day; the table's days and the means kept."""
    actual = spent(hourly, MONTH, MONTH_END)
    by_day = {day: forecasters(hourly, day) for day in ALL_DAYS}
    months = [end_of_month(hourly, by_day[day], actual) for day in ALL_DAYS]
    averaged = [row for row in months if row["day"] >= mean_from_day]
    figures: dict[str, Any] = {
        "october_actual_usd": format_usd(actual),
        "mean_from_day": mean_from_day,
        "end_of_month": [row for row in months if row["day"] in TABLE_DAYS],
        "end_of_month_mean_abs_error_pct": {
            name: mean_abs(averaged, f"{name}_error_pct") for name in ("method", "flat")
        },
        "runway": {},
    }
    for percent in BALANCE_PERCENT:
        balance = actual * percent // 100
        zero = actual_zero(hourly, balance)
        if zero is None:
            raise SystemExit(f"a {percent}% balance does not run out in October")
        rows = [
            predicted_zeros(hourly, by_day[day], balance, zero)
            for day in ALL_DAYS
            if by_day[day].now < zero
        ]
        kept = [row for row in rows if row["day"] >= mean_from_day]
        figures["runway"][f"{percent}%"] = {
            "opening_balance_usd": format_usd(balance),
            "actual_zero_at": iso(zero),
            "predictions": [row for row in rows if row["day"] in TABLE_DAYS],
            "mean_abs_error_hours": {
                name: mean_abs(kept, f"{name}_error_hours") for name in ("method", "flat")
            },
        }
    return figures


def cell(value: float | None, unit: str, sign: str = "+") -> str:
    return "—" if value is None else f"{value:{sign}.1f}{unit}"


def table(figures: dict[str, Any]) -> list[str]:
    runways = figures["runway"]
    heads = [f"runway@{p} method / flat" for p in runways]
    lines = [
        f"{'day':>4}  {'end of month method / flat':>27}  " + "  ".join(f"{h:>27}" for h in heads)
    ]

    def runway_cells(day: int) -> list[str]:
        out = []
        for case in runways.values():
            row = next((r for r in case["predictions"] if r["day"] == day), None)
            if row is None:
                out.append(f"{'(after the crossing)':>27}")
            else:
                method = cell(row["method_error_hours"], "h")
                flat = cell(row["flat_error_hours"], "h")
                out.append(f"{method:>13} / {flat:>11}")
        return out

    for row in figures["end_of_month"]:
        month = f"{cell(row['method_error_pct'], '%'):>13} / {cell(row['flat_error_pct'], '%'):>11}"
        lines.append(f"{row['day']:>4}  {month}  " + "  ".join(runway_cells(row["day"])))
    eom = figures["end_of_month_mean_abs_error_pct"]
    summary = f"{cell(eom['method'], '%', ''):>13} / {cell(eom['flat'], '%', ''):>11}"
    cells = []
    for case in runways.values():
        errors = case["mean_abs_error_hours"]
        cells.append(f"{cell(errors['method'], 'h', ''):>13} / {cell(errors['flat'], 'h', ''):>11}")
    label = f"d{figures['mean_from_day']}+"
    lines.append(f"{label:>4}  {summary}  " + "  ".join(cells))
    return lines


def main() -> int:
    began = time.perf_counter()
    figures: dict[str, Any] = {
        "workload": {"seed": STEADY.seed, "keys": STEADY.n_keys, "from": iso(DATA_START)},
        "month": f"{MONTH:%Y-%m}",
        "predicted_at": "00:00 UTC on each day N",
        "baseline": "flat: mean hourly spend of all history before day N",
        "scenarios": {},
    }
    print(
        f"forecast backtest on {figures['month']}, predicted at 00:00 UTC on day N; errors are "
        "predicted − actual (negative: too low, too early); flat = mean of all history so far"
    )
    for scenario in SCENARIOS:
        result = {"note": scenario.note, **backtest(ingest(scenario.spec), scenario.mean_from_day)}
        figures["scenarios"][scenario.name] = result
        print(f"\n{scenario.name}: {scenario.note}; October spend ${result['october_actual_usd']}")
        for percent, case in result["runway"].items():
            print(
                f"  runway@{percent}: ${case['opening_balance_usd']} on 1 October, "
                f"no auto-reload, actually reaches zero at {case['actual_zero_at']}"
            )
        for line in table(result):
            print(f"  {line}")
    figures["seconds"] = round(time.perf_counter() - began, 2)
    print(
        f"\ndN+ = mean absolute error over every day from N to {ALL_DAYS[-1]} (before a crossing); "
        "for step and spike, from the first day whose history holds the change"
    )
    print(f"{figures['seconds']}s in all")
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
