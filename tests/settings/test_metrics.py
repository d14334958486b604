"""CREDITWATCH_METRICS_ADDR: where /metrics and /healthz listen; 127.0.0.1 unless told."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import describe, load_settings
from service.settings.metrics import MetricsAddress, parse_metrics_addr
from tests.helpers import run_cli

BASE = {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-abcdefghijklmnopqrstuvwxyz"}


@pytest.mark.parametrize(
    ("raw", "host", "port", "shown"),
    [
        ("9464", "127.0.0.1", 9464, "127.0.0.1:9464"),
        (":9464", "127.0.0.1", 9464, "127.0.0.1:9464"),
        (" 127.0.0.1:9464 ", "127.0.0.1", 9464, "127.0.0.1:9464"),
        ("0.0.0.0:9464", "0.0.0.0", 9464, "0.0.0.0:9464"),  # noqa: S104 - exposing is asked for
        ("localhost:1", "localhost", 1, "localhost:1"),
        ("metrics.internal:65535", "metrics.internal", 65535, "metrics.internal:65535"),
        ("[::1]:9464", "::1", 9464, "[::1]:9464"),
        ("[::]:9464", "::", 9464, "[::]:9464"),
    ],
)
def test_metrics_addr_forms(raw: str, host: str, port: int, shown: str) -> None:
    """A port alone means 127.0.0.1; host:port and [IPv6]:port are taken as written."""
    address = parse_metrics_addr(raw)
    assert address == MetricsAddress(host, port)
    assert str(address) == shown


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:", "TCP port from 1 to 65535"),
        ("127.0.0.1:0", "TCP port from 1 to 65535"),
        ("127.0.0.1:65536", "TCP port from 1 to 65535"),
        ("127.0.0.1:http", "TCP port from 1 to 65535"),
        ("９４６４", "has no port"),  # fullwidth digits are not a port
        ("http://127.0.0.1:9464/metrics", "is a URL"),
        ("::1:9464", "in brackets"),
        ("[::1]9464", "is not [IPv6 address]:port"),
        ("[nonsense]:9464", "is not an IPv6 address"),
        ("999.1.1.1:9464", "is not an IPv4 address"),
        ("bad_host:9464", "is not an IP address or a host name"),
        ("-x.example:9464", "is not an IP address or a host name"),
    ],
)
def test_bad_metrics_addr_names_the_variable_and_an_example(raw: str, problem: str) -> None:
    """A bad address is a ConfigError naming the variable, the problem and an example."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "CREDITWATCH_METRICS_ADDR": raw}, None)
    assert caught.value.variable == "CREDITWATCH_METRICS_ADDR"
    assert problem in caught.value.problem
    assert "example: CREDITWATCH_METRICS_ADDR=127.0.0.1:9464" in str(caught.value)


def test_metrics_addr_is_off_by_default_and_no_longer_reserved() -> None:
    """Unset, no server runs; set, it is a setting of its own, not a 'not implemented' warning."""
    assert load_settings(BASE, None).metrics_addr is None
    settings = load_settings({**BASE, "CREDITWATCH_METRICS_ADDR": "9464"}, None)
    assert settings.metrics_addr == MetricsAddress("127.0.0.1", 9464)
    assert not any("CREDITWATCH_METRICS_ADDR" in w for w in settings.warnings)


def test_check_config_prints_the_metrics_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """check-config shows where /metrics and /healthz listen, or that no server runs."""
    monkeypatch.chdir(tmp_path)
    assert describe(load_settings(BASE, None))["CREDITWATCH_METRICS_ADDR"] == (
        "(not set: no metrics server)"
    )
    for name, value in {**BASE, "CREDITWATCH_METRICS_ADDR": ":9464"}.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run_cli(capsys, "check-config")
    assert code == 0
    assert "CREDITWATCH_METRICS_ADDR" in out
    assert "127.0.0.1:9464 (/metrics and /healthz)" in out


def test_a_bad_metrics_addr_stops_check_config_with_exit_78(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """check-config refuses a bad address with EX_CONFIG and one line naming the variable."""
    monkeypatch.chdir(tmp_path)
    for name, value in {**BASE, "CREDITWATCH_METRICS_ADDR": "localhost"}.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, "check-config")
    assert code == 78
    assert "CREDITWATCH_METRICS_ADDR: 'localhost' has no port" in err
