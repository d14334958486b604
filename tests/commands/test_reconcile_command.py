"""`creditwatch reconcile` as a user runs it: the table per day, re-runs, --since, status."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import CLI_KEY, run_cli


def test_reconcile_prints_billed_estimated_and_booked_per_day(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `once`, every finished day from the starting balance on is adjusted and listed."""
    assert run_cli(capsys, "once")[0] == 0
    code, out, err = run_cli(capsys, "reconcile")
    assert code == 0, err
    header, *rows = [line for line in out.splitlines() if line.startswith(("day", "2026-"))]
    assert header.split()[:3] == ["day", "billed", "estimated"]
    assert [row.split()[0] for row in rows] == [f"2026-11-{d:02d}" for d in range(5, 10)]
    assert all(row.endswith("adjusted") for row in rows)
    assert "reconciled 2026-11-05..2026-11-09: 5 days adjusted to the bill" in out
    assert CLI_KEY not in out + err


def test_a_second_reconcile_books_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Re-checking the last days books no change; the balance is the same."""
    run_cli(capsys, "once")
    run_cli(capsys, "reconcile")
    before = json.loads(run_cli(capsys, "status", "--json")[1])
    code, out, _ = run_cli(capsys, "reconcile")
    assert code == 0
    assert "0 changed, $0.00 booked" in out
    after = json.loads(run_cli(capsys, "status", "--json")[1])
    assert after["balance_usd"] == before["balance_usd"]


def test_since_re_checks_earlier_days_without_adjusting_those_before_the_balance(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since 2026-11-03: the two days before the starting balance are shown, not adjusted."""
    run_cli(capsys, "once")
    code, out, _ = run_cli(capsys, "reconcile", "--since", "2026-11-03")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("2026-")}
    assert sorted(lines) == [f"2026-11-{d:02d}" for d in range(3, 10)]
    assert lines["2026-11-03"].endswith("not adjusted: before the starting balance")
    assert lines["2026-11-05"].endswith("adjusted")


def test_status_json_shows_the_last_reconciled_day(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status --json gains a reconciliation object and keeps its contract keys."""
    run_cli(capsys, "once")
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert status["reconciliation"]["last_reconciled_day"] is None
    run_cli(capsys, "reconcile")
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    reconciliation = status["reconciliation"]
    assert reconciliation["last_reconciled_day"] == "2026-11-09"
    assert isinstance(reconciliation["adjustments_usd"], str)
    for key in ("balance_usd", "budgets", "last_collected_at", "outbox"):
        assert key in status


def test_status_for_people_shows_the_last_reconciled_day(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The terminal status gains a Billed line once a day is reconciled, with the same figures
    as --json."""
    run_cli(capsys, "once")
    assert "Billed " not in run_cli(capsys, "status")[1]
    run_cli(capsys, "reconcile")
    text = run_cli(capsys, "status")[1]
    found = json.loads(run_cli(capsys, "status", "--json")[1])["reconciliation"]
    (line,) = [x for x in text.splitlines() if x.startswith("Billed ")]
    assert line.startswith("Billed             2026-11-09: $")
    billed = Decimal(found["last_day_billed_usd"]).quantize(Decimal("0.01"))
    assert f"${billed:,}" in line, (line, found)


def test_a_bad_since_is_a_usage_error(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since takes a date."""
    code, _, err = run_cli(capsys, "reconcile", "--since", "last tuesday")
    assert code == 2
    assert "is not a date such as 2026-11-03" in err
