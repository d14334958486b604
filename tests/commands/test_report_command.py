"""`creditwatch report` as a user runs it: JSON, CSV, the terminal charts, the HTML page.

The ledger is a simulated organization after `once`; its bill is the simulator's own cost
report, stored the way reconcile stores it (read here with the Admin API client, so these
tests need no reconcile code).
"""

from __future__ import annotations

import csv
import http.server
import io
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.admin_api.client import AdminClient
from service.domain.money import usd_to_nanos
from service.http import build_http_client
from service.render.report_svg import BALANCE, SPEND
from service.simulator import SimulatorServer
from service.store.engine import make_engine, transaction
from service.store.tables import BilledCost
from tests.helpers import CLI_KEY, outside_tool, run_cli
from tests.pages import parse_strictly
from tests.pictures import hex_color, read_png

BILLED_DAYS = [datetime(2026, 11, d, tzinfo=UTC) for d in (5, 6, 7, 8, 9)]
# Chromium's own housekeeping (its clock, component updates, sign-in) is not the page's.
BROWSER_HOUSEKEEPING = ("google.com", "googleapis.com", "gvt1.com")


@pytest.fixture
def ledger(
    env: Path, capsys: pytest.CaptureFixture[str], simulator: SimulatorServer, db_url: str
) -> Path:
    """After `once`, with the simulator's bill of 2026-11-05..09 stored as reconcile stores it."""
    assert run_cli(capsys, "once")[0] == 0
    with build_http_client(simulator.base_url, timeout=10) as http:
        rows = AdminClient(http, CLI_KEY).cost_report(
            BILLED_DAYS[0], BILLED_DAYS[-1] + timedelta(days=1)
        )
    engine = make_engine(db_url)
    with transaction(engine) as session:
        for row in rows:
            session.add(
                BilledCost(
                    day=row.day_start,
                    workspace_id=row.workspace_id or "",
                    description=row.description or "",
                    cost_type=row.cost_type or "",
                    model=row.model or "",
                    token_type=row.token_type or "",
                    service_tier=row.service_tier or "",
                    context_window=row.context_window or "",
                    amount_nanos=usd_to_nanos(row.amount_usd),
                    fetched_at=BILLED_DAYS[-1],
                )
            )
    engine.dispose()
    return env


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "report", *args, "--json")
    assert code == 0, err
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def test_csv_reads_back_as_the_json_says(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every CSV row equals its JSON row; amounts are exact decimals; difference is exact."""
    data = report_json(capsys, "--by", "workspace")
    code, out, _ = run_cli(capsys, "report", "--by", "workspace", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["key"] for r in rows] == [r["key"] for r in data["rows"]] + ["total"]
    for got, want in zip(rows, [*data["rows"], data["total"]], strict=True):
        assert got["name"] == want["name"]
        for column in ("cost_usd", "billed_usd", "billed_days_estimate_usd", "difference_usd"):
            assert got[column] == (want[column] or "")
        assert int(got["cache_write_tokens"]) == want["cache_write_tokens"]
        billed, basis = Decimal(got["billed_usd"]), Decimal(got["billed_days_estimate_usd"])
        assert billed - basis == Decimal(got["difference_usd"])
    assert sum(Decimal(r["cost_usd"]) for r in rows[:-1]) == Decimal(rows[-1]["cost_usd"])
    assert sum(Decimal(r["billed_usd"]) for r in rows[:-1]) == Decimal(rows[-1]["billed_usd"])
    assert "Default workspace" in [r["name"] for r in rows]
    assert data["billing"]["billed_days"] == [d.date().isoformat() for d in BILLED_DAYS]


def test_keys_are_not_billed_the_total_is(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bill has no keys: every key's billed is null, the total's is not; Console is named."""
    data = report_json(capsys, "--by", "api_key")
    rows = data["rows"]
    assert all(r["billed_usd"] is None for r in rows)
    assert data["total"]["billed_usd"] is not None
    assert "Console (no API key)" in [r["name"] for r in rows]
    by_model = report_json(capsys, "--by", "model")
    assert by_model["total"] == data["total"]


def test_by_hour_is_bucket_exact(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three hours asked, three hours shown; hours and days add up to the same total."""
    window = ("--since", "2026-11-09T10:00:00Z", "--until", "2026-11-09T13:00:00Z")
    hours = report_json(capsys, "--by", "hour", *window)
    assert [r["key"] for r in hours["rows"]] == [
        "2026-11-09T10:00Z",
        "2026-11-09T11:00Z",
        "2026-11-09T12:00Z",
    ]
    day = report_json(capsys, "--by", "day", *window)
    assert day["total"]["cost_usd"] == hours["total"]["cost_usd"]
    assert day["total"]["billed_usd"] is None, "three hours are not a billed day"


def test_the_terminal_report_off_a_terminal_is_plain(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Piped, the table and both charts come as plain ASCII lines (no escape codes)."""
    code, out, _ = run_cli(capsys, "report", "--by", "day")
    assert code == 0
    assert "\x1b" not in out
    chart = out[out.index("Daily spend") :]
    assert chart.isascii()
    assert "Balance at the end of each UTC day" in out
    assert "Runway:" in out
    assert "billed: 5 billed day(s), 2026-11-05 to 2026-11-09" in out
    assert "—" in out, "today is not billed"
    code, bare, _ = run_cli(capsys, "report", "--no-charts")
    assert "Daily spend" not in bare


def test_by_hour_needs_hourly_buckets(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger of daily buckets cannot say hours: a usage error, not an empty report."""
    monkeypatch.setenv("CREDITWATCH_BUCKET_WIDTH", "1d")
    assert run_cli(capsys, "once")[0] == 0
    code, _, err = run_cli(capsys, "report", "--by", "hour")
    assert code == 2
    assert "--by hour needs hourly or minute buckets" in err


def test_html_that_cannot_be_written_is_one_line(
    ledger: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A missing folder: exit 1 and the reason, no traceback."""
    code, _, err = run_cli(capsys, "report", "--html", str(tmp_path / "missing" / "r.html"))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("creditwatch: cannot write")


@pytest.fixture
def html_report(ledger: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    page = tmp_path / "report.html"
    code, out, err = run_cli(capsys, "report", "--by", "workspace", "--html", str(page))
    assert code == 0, err
    assert out.strip() == f"Wrote the report (workspace) to {page}"
    return page


def test_the_page_parses_and_references_nothing(html_report: Path) -> None:
    """html.parser with a strict eye: no errors, no script, no src/href/url(), no http(s)."""
    html = html_report.read_text("utf-8")
    page = parse_strictly(html)
    assert page.errors == []
    assert page.fetches == []
    assert "http://" not in html
    assert "https://" not in html
    assert page.tags.count("svg") == 2
    assert "Default workspace" in "".join(page.text)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A proxy that answers nothing and writes down every request a browser sends it."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def do_CONNECT(self) -> None:
        self.seen.append(f"https://{self.path}")
        self.send_response(403)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def screenshot(page: Path, png: Path, proxy_port: int) -> None:
    """Headless Chromium at 1280x2000, every request sent through the recording proxy."""
    subprocess.run(
        [
            outside_tool("chromium", "chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pings",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "--proxy-bypass-list=<-loopback>",  # loopback too goes through the proxy
            f"--user-data-dir={page.parent / 'chromium-profile'}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )


def page_requests(seen: list[str]) -> list[str]:
    return [
        url
        for url in seen
        if not any(url.split("/")[2].split(":")[0].endswith(h) for h in BROWSER_HOUSEKEEPING)
    ]


def test_chromium_draws_the_page_without_a_request(
    html_report: Path, proxy: tuple[int, list[str]], tmp_path: Path
) -> None:
    """The screenshot is 1280x2000 with both charts drawn in their colours, and the browser
    asked for nothing on the page's behalf (a page with one image and a font link would)."""
    port, seen = proxy
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><img src="http://creditwatch.invalid/pixel.png">'
        '<p style="background:url(https://creditwatch.invalid/bg.png)">x</p>'
    )
    screenshot(control, tmp_path / "control.png", port)
    assert {"http://creditwatch.invalid/pixel.png", "https://creditwatch.invalid:443"} <= set(
        page_requests(seen)
    ), "the recording proxy sees what a page fetches"
    seen.clear()
    png = tmp_path / "report.png"
    screenshot(html_report, png, port)
    assert page_requests(seen) == []
    picture = read_png(png)
    assert (picture.width, picture.height) == (1280, 2000)
    colors = picture.colors()
    _, most = colors.most_common(1)[0]
    assert most < sum(colors.values()) * 0.9, "mostly one colour: a blank page"
    assert len(colors) > 100
    assert colors[hex_color(SPEND)] > 50, "the daily spend bars"
    assert sum(n for c, n in colors.items() if _near(c, hex_color(BALANCE))) > 50, "the balance"


def _near(color: tuple[int, int, int], wanted: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(color, wanted, strict=True))
