"""The commands as a user runs them: once, status, report, credits, db upgrade."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from service.simulator import SimulatorServer
from tests.helpers import CLI_KEY, run_cli


def test_once_then_status_json_has_the_contract_fields(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`once` books the month; `status --json` shows balance, budgets, collection and outbox."""
    code, out, err = run_cli(capsys, "once")
    assert code == 0, err
    assert "collected 2026-11-01T00:00Z" in out
    code, out, _ = run_cli(capsys, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert isinstance(status["balance_usd"], str)
    assert Decimal(status["balance_usd"]) < Decimal(5000)
    assert status["budgets"] == []
    assert status["last_collected_at"] == "2026-11-10T15:20:00Z"
    assert status["outbox"] == {"pending": 0, "sending": 0, "sent": 0, "failed": 0, "unrouted": 0}
    month = Decimal(status["spend"]["month_to_date_usd"])
    assert month > Decimal(5000) - Decimal(status["balance_usd"]), "pre-balance usage is spend too"
    assert CLI_KEY not in out + err


def test_status_and_report_work_without_the_api(
    env: Path, capsys: pytest.CaptureFixture[str], simulator: SimulatorServer
) -> None:
    """After a cycle, status and report answer from the ledger even when the API is gone."""
    assert run_cli(capsys, "once")[0] == 0
    simulator.stop()
    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    assert "Balance            $" in out
    for by in ("model", "api_key", "workspace", "day"):
        code, out, _ = run_cli(capsys, "report", "--by", by, "--json")
        assert code == 0
        report = json.loads(out)
        assert report["rows"]
        total = sum(Decimal(r["cost_usd"]) for r in report["rows"])
        assert total == Decimal(report["total"]["cost_usd"])
    code, out, _ = run_cli(capsys, "report", "--by", "day", "--since", "2026-11-09")
    assert code == 0
    assert "2026-11-09" in out
    assert "2026-11-08" not in out


def test_status_names_the_usage_report_as_the_source(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default status names the usage report, with no Analytics API freshness."""
    monkeypatch.delenv("CREDITWATCH_USAGE_SOURCE", raising=False)
    assert run_cli(capsys, "once")[0] == 0
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert (status["usage_source"], status["data_refreshed_at"]) == ("messages", None)
    assert status["usage_source_since"] is None
    text = run_cli(capsys, "status")[1]
    assert "\nUsage source       messages (usage report)\n" in text
    assert "data refreshed" not in text


def test_status_names_the_analytics_api_and_its_data_refreshed_at(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CREDITWATCH_USAGE_SOURCE=analytics, status shows the source and the API's
    data_refreshed_at (the simulator's: 5 minutes before now), in JSON and text."""
    monkeypatch.setenv("CREDITWATCH_USAGE_SOURCE", "analytics")
    code, _, err = run_cli(capsys, "once")
    assert code == 0, err
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert status["usage_source"] == "analytics"
    assert status["usage_source_configured"] == "analytics"
    assert status["usage_source_since"] is None
    assert status["data_refreshed_at"] == "2026-11-10T15:15:00Z"
    assert isinstance(status["balance_usd"], str)
    assert status["last_collected_at"] == "2026-11-10T15:20:00Z"
    text = run_cli(capsys, "status")[1]
    assert (
        "\nUsage source       analytics (Usage and Cost Analytics API, beta); "
        "data refreshed 2026-11-10T15:15:00Z\n"
    ) in text


def test_status_tells_a_switch_of_usage_source(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings that name another source than the ledger's are told as the next cycle's; after
    it, the new source shows with the bucket it took over from."""
    monkeypatch.delenv("CREDITWATCH_USAGE_SOURCE", raising=False)
    assert run_cli(capsys, "once")[0] == 0
    monkeypatch.setenv("CREDITWATCH_USAGE_SOURCE", "analytics")
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert (status["usage_source"], status["usage_source_configured"]) == (
        "messages",
        "analytics",
    )
    assert status["data_refreshed_at"] is None
    assert (
        "  CREDITWATCH_USAGE_SOURCE=analytics here: the next cycle with these settings reads "
        "analytics from the first bucket not yet collected"
    ) in run_cli(capsys, "status")[1]
    assert run_cli(capsys, "once")[0] == 0
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert status["usage_source"] == "analytics"
    # The switch takes the next hour's bucket on (this one was read from the usage report):
    # nothing is read from the Analytics API yet, so it has not said how fresh its data is.
    assert status["usage_source_since"] == "2026-11-10T16:00:00Z"
    assert status["data_refreshed_at"] is None
    text = run_cli(capsys, "status")[1]
    assert (
        "\nUsage source       analytics (Usage and Cost Analytics API, beta) since "
        "2026-11-10T16:00:00Z; data refreshed not reported yet\n"
    ) in text
    assert "here: the next cycle" not in text


def test_report_totals_match_status_month_spend(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's total for the month equals status's month-to-date spend."""
    run_cli(capsys, "once")
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    report = json.loads(run_cli(capsys, "report", "--json")[1])
    assert report["total"]["cost_usd"] == status["spend"]["month_to_date_usd"]


def test_credits_add_and_list(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A purchase raises the balance by exactly its amount and is listed."""
    run_cli(capsys, "once")
    before = Decimal(json.loads(run_cli(capsys, "status", "--json")[1])["balance_usd"])
    code, out, _ = run_cli(
        capsys, "credits", "add", "125.50", "--at", "2026-11-08T09:00:00Z", "--note", "invoice 42"
    )
    assert code == 0
    assert "$125.50" in out
    after = Decimal(json.loads(run_cli(capsys, "status", "--json")[1])["balance_usd"])
    assert after - before == Decimal("125.50")
    listed = json.loads(run_cli(capsys, "credits", "list", "--json")[1])
    assert [(e["kind"], e["amount_usd"], e["note"]) for e in listed] == [
        ("opening", "5000.00", ""),
        ("purchase", "125.50", "invoice 42"),
    ]
    purchase = listed[1]
    assert purchase["remaining_usd"] == "125.50", "older lots are used first"
    assert purchase["expires_at"] == "2027-11-08T09:00:00Z"
    opening = listed[0]
    assert Decimal(opening["remaining_usd"]) == before
    code, _, _ = run_cli(
        capsys,
        "credits",
        "add",
        "20",
        "--at",
        "2026-11-09",
        "--expires-at",
        "2026-12-31T00:00:00Z",
        "--note",
        "promo",
    )
    assert code == 0
    promo = json.loads(run_cli(capsys, "credits", "list", "--json")[1])[-1]
    assert (promo["note"], promo["expires_at"]) == ("promo", "2026-12-31T00:00:00Z")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("credits", "add", "10", "--at", "2026-11-01T00:00:00Z"), "before the starting balance"),
        (("credits", "add", "10", "--at", "2026-12-01"), "in the future"),
    ],
)
def test_credits_add_refusals_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    """A purchase that would double-count, or is dated in the future, is refused with a reason."""
    code, _, err = run_cli(capsys, *args)
    assert code in (1, 2)
    last = err.strip().splitlines()[-1]
    assert last.startswith("creditwatch: ")
    assert message in last


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("credits", "add", "ten"), "not a number"),
        (("credits", "add", "0"), "more than 0"),
        (("credits", "add", "1e12"), "more than the ledger holds"),
        (("report", "--since", "garbage"), "not a date or an RFC 3339 time"),
        (("credits", "add", "5", "--at", "noon"), "not a date or an RFC 3339 time"),
        (("credits", "add", "1e999999"), "more than the ledger holds"),
        (("credits", "add", "5", "--at", "1970-01-01"), "outside the years 2000 to 2100"),
        (("credits", "add", "5", "--expires-at", "9999-12-31"), "outside the years 2000 to 2100"),
        (("report", "--until", "2150-01-01T00:00:00Z"), "outside the years 2000 to 2100"),
    ],
)
def test_bad_arguments_are_usage_errors_that_write_nothing(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    """A bad argument exits 2 with argparse's usage line, before the database is touched."""
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err
    if db_url.startswith("sqlite:///"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_report_since_after_until_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty window is a mistake worth saying, not an empty table."""
    code, _, err = run_cli(capsys, "report", "--since", "2026-11-09", "--until", "2026-11-08")
    assert code == 2
    assert "is not before --until" in err


def test_reading_commands_do_not_rewrite_the_ledger(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """status/report/credits list with a different environment leave the balance as it was."""
    assert run_cli(capsys, "once")[0] == 0
    before = json.loads(run_cli(capsys, "status", "--json")[1])["balance_usd"]
    (env / ".env").write_text(
        "\n".join(
            line
            for line in (env / ".env").read_text().splitlines()
            if "STARTING_BALANCE" not in line
        )
    )
    for args in (("status",), ("report",), ("credits", "list")):
        assert run_cli(capsys, *args)[0] == 0
    monkeypatch.setenv("CREDITWATCH_STARTING_BALANCE", "5000")
    monkeypatch.setenv("CREDITWATCH_STARTING_BALANCE_AT", "2026-11-05T00:00:00Z")
    assert json.loads(run_cli(capsys, "status", "--json")[1])["balance_usd"] == before


def test_unreachable_database_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A database that is down gives one line, not a driver traceback, and no password."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", CLI_KEY)
    monkeypatch.setenv(
        "CREDITWATCH_DATABASE_URL", "postgresql+psycopg://cw:s3cretpass@127.0.0.1:9/cw"
    )
    code, out, err = run_cli(capsys, "status")
    assert code == 1
    assert err.startswith("creditwatch: database error:")
    assert len(err.strip().splitlines()) == 1
    assert "s3cretpass" not in out + err


def test_once_with_a_wrong_key_fails_in_one_line_without_the_key(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """401: exit 1, one line naming ANTHROPIC_ADMIN_KEY, and the key is nowhere in the output."""
    wrong = "sk-ant-admin01-wrong-0000000000000000"
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", wrong)
    code, out, err = run_cli(capsys, "once")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("creditwatch: collection failed")
    assert "ANTHROPIC_ADMIN_KEY" in last
    assert wrong not in out + err
    assert wrong[4:20] not in out + err


def test_once_when_the_api_is_unreachable_fails_cleanly(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection refused after retries exits 1 with a one-line reason, no traceback."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    code, _, err = run_cli(capsys, "once")
    assert code == 1
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("creditwatch: collection failed")


def test_debug_logs_never_contain_the_key(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Even at DEBUG, with httpx and httpcore loaded, the admin key never reaches stderr."""
    code, out, err = run_cli(capsys, "once")
    assert code == 0
    assert CLI_KEY not in out + err
    assert CLI_KEY[8:24] not in out + err


def test_db_upgrade(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`db upgrade` migrates and says so; a second run is a no-op."""
    assert run_cli(capsys, "db", "upgrade")[:2] == (0, "database is at the newest schema\n")
    assert run_cli(capsys, "db", "upgrade")[0] == 0


def test_reading_with_another_bucket_width_reads_the_stored_one(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell with CREDITWATCH_BUCKET_WIDTH=1d still reads the 1h ledger it finds."""
    assert run_cli(capsys, "once")[0] == 0
    hourly = json.loads(run_cli(capsys, "status", "--json")[1])
    monkeypatch.setenv("CREDITWATCH_BUCKET_WIDTH", "1d")
    daily = json.loads(run_cli(capsys, "status", "--json")[1])
    assert daily["balance_usd"] == hourly["balance_usd"]
    assert daily["spend"] == hourly["spend"]
    assert daily["credits"]["lots"] == hourly["credits"]["lots"]


def test_reading_a_ledger_that_does_not_exist_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """status on a SQLite path with no file answers with a hint, not an empty ledger."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", CLI_KEY)
    monkeypatch.setenv("CREDITWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'typo.db'}")
    for args in (("status",), ("report",), ("credits", "list"), ("simulate",)):
        code, _, err = run_cli(capsys, *args)
        assert code == 1
        assert "run `creditwatch once` first" in err
    assert not (tmp_path / "typo.db").exists()


def test_adjacent_reports_never_count_a_bucket_twice(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[a, b) and [b, c) add up to [a, c) even when b falls inside an hourly bucket."""
    assert run_cli(capsys, "once")[0] == 0

    def total(since: str, until: str) -> Decimal:
        code, out, err = run_cli(capsys, "report", "--since", since, "--until", until, "--json")
        assert code == 0, err
        return Decimal(json.loads(out)["total"]["cost_usd"])

    a, b, c = "2026-11-06T00:00:00Z", "2026-11-07T10:30:00Z", "2026-11-09T00:00:00Z"
    first, second, whole = total(a, b), total(b, c), total(a, c)
    assert first > 0
    assert second > 0
    assert first + second == whole


def test_a_future_starting_balance_time_stops_every_command(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A balance stated for a moment that has not come is exit 78, not a zero runway."""
    monkeypatch.setenv("CREDITWATCH_STARTING_BALANCE_AT", "2026-11-10T16:00:00Z")
    for args in (("once",), ("status",), ("check-config",)):
        code, out, err = run_cli(capsys, *args)
        assert code == 78
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith(
                "creditwatch: configuration error: CREDITWATCH_STARTING_BALANCE_AT: "
                "'2026-11-10T16:00:00Z' is in the future"
            )
        )
        assert out == ""


def test_once_produces_alerts_that_alerts_and_status_show(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget crossed in `once` is listed by `alerts` with its identity, and `status` shows the
    budget with its period, spend, limit and the thresholds crossed and alerted."""
    monkeypatch.setenv("CREDITWATCH_MONTHLY_BUDGET", "100")
    monkeypatch.setenv("CREDITWATCH_BUDGET_DAILY", "limit=1000 period=day thresholds=90")
    code, out, err = run_cli(capsys, "once")
    assert code == 0, err
    assert "1 alert," in out
    listed = json.loads(run_cli(capsys, "alerts", "--json")[1])
    assert [(a["kind"], a["dedup_id"], a["state"]) for a in listed] == [
        ("alert", "budget:monthly/org/2026-11/100%", "unrouted")
    ]
    (alert,) = listed
    assert (alert["rule"], alert["scope"], alert["period"], alert["threshold"]) == (
        "budget:monthly",
        "org",
        "2026-11",
        "100%",
    )
    assert alert["severity"] == "critical"
    assert alert["condition"] is None
    assert alert["channel"] is None, "no channel is configured: the alert waits, unrouted"
    assert alert["attempts"] == []
    text = run_cli(capsys, "alerts")[1]
    assert "Budget 'monthly' crossed 100%" in text
    assert "[budget:monthly/org/2026-11/100%]" in text
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    monthly, daily = status["budgets"]
    assert (monthly["name"], monthly["period_start"], monthly["limit_usd"]) == (
        "monthly",
        "2026-11-01T00:00:00Z",
        "100.00",
    )
    assert Decimal(monthly["spent_usd"]) > 100
    assert monthly["thresholds_crossed"] == ["50%", "80%", "100%"]
    assert monthly["thresholds_alerted"] == ["100%"]
    assert (daily["name"], daily["period_start"], daily["thresholds_crossed"]) == (
        "daily",
        "2026-11-10T00:00:00Z",
        [],
    )
    assert status["outbox"]["unrouted"] == 1
    # Nothing new: a second `once` produces nothing, and the text status names the budgets.
    assert "0 alerts," in run_cli(capsys, "once")[1]
    assert "Budget monthly" in run_cli(capsys, "status")[1]
