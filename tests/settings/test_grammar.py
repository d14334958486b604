"""Value grammars: every value parses within bounds, and credentials never show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.errors import ConfigError
from service.settings.database_url import database_credentials, mask_database_url
from service.settings.grammar import (
    mask_url,
    parse_duration,
    parse_money,
    parse_timestamp,
    url_credentials,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("2w", timedelta(weeks=2)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_durations_parse(raw: str, expected: timedelta) -> None:
    """Units s, m, h, d, w (and ms) combine; the ten-year maximum itself is allowed."""
    assert parse_duration("X", raw, "5m", minimum=timedelta()) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("99999999999d", "longer than the maximum 3650d"),
        ("999999999999999999999999w", "longer than the maximum"),
        ("3651d", "longer than the maximum"),
        ("5 minutes", "not a duration"),
        ("", "not a duration"),
        ("-5m", "not a duration"),
    ],
)
def test_durations_out_of_bounds_are_refused(raw: str, problem: str) -> None:
    """A duration no setting could mean is a ConfigError, never an OverflowError."""
    with pytest.raises(ConfigError) as caught:
        parse_duration("CREDITWATCH_LOOKBACK", raw, "3h", minimum=timedelta())
    assert problem in caught.value.problem
    assert caught.value.variable == "CREDITWATCH_LOOKBACK"


def test_a_duration_has_a_per_setting_maximum() -> None:
    """A setting may cap lower than ten years."""
    with pytest.raises(ConfigError, match="longer than the maximum 1d"):
        parse_duration("X", "2d", "5m", minimum=timedelta(), maximum=timedelta(days=1))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1e999999", "more than the ledger holds"),
        ("-1e999999", "is negative"),
        ("1e-999999", "more than 9 decimal places"),
        ("NaN", "not a finite amount"),
        ("Infinity", "not a finite amount"),
        ("1000000000.000000001", "more than the ledger holds"),
        ("0.0000000001", "more than 9 decimal places"),
        ("12,50", "not a number"),
    ],
)
def test_amounts_out_of_bounds_are_refused(raw: str, problem: str) -> None:
    """Amounts are exact, finite, non-negative, at most a billion and nano-dollar precise."""
    with pytest.raises(ConfigError) as caught:
        parse_money("CREDITWATCH_LOW_BALANCE", raw, "25")
    assert problem in caught.value.problem


def test_amounts_parse_exactly() -> None:
    """Decimal in, Decimal out: no float anywhere."""
    assert parse_money("X", " 1000000000 ", "1") == Decimal(1_000_000_000)
    assert parse_money("X", "0.000000001", "1") == Decimal("0.000000001")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1999-12-31T23:59:59Z", "outside the years 2000 to 2100"),
        ("2100-01-01T00:00:00Z", "outside the years 2000 to 2100"),
        ("9999-12-31T23:59:59+00:00", "outside the years 2000 to 2100"),
        ("2026-11-01T00:00:00", "no UTC offset"),
        ("tomorrow", "not an RFC 3339"),
    ],
)
def test_timestamps_out_of_bounds_are_refused(raw: str, problem: str) -> None:
    """Times are 2000–2100 with an offset."""
    with pytest.raises(ConfigError) as caught:
        parse_timestamp("CREDITWATCH_BACKFILL_FROM", raw, "2026-11-01T00:00:00Z")
    assert problem in caught.value.problem


def test_timestamps_are_aware_utc() -> None:
    """An offset is converted to UTC."""
    parsed = parse_timestamp("X", "2026-11-01T02:00:00+02:00", "")
    assert parsed == datetime(2026, 11, 1, tzinfo=UTC)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("https://proxy-user:pr0xy-pass@proxy.internal", "proxy-user:***@", "pr0xy-pass"),
        ("https://tok3nAsUser1234@proxy.internal", "tok3…(masked)@", "tok3nAsUser1234"),
        ("https://api.anthropic.com", "https://api.anthropic.com", "\0"),
        ("https://proxy.internal/x?token=t0ken-1234", "token=***", "t0ken-1234"),
    ],
)
def test_mask_url_hides_every_credential(url: str, shown: str, hidden: str) -> None:
    """A web URL's password, credential query parameters and a token in the user part."""
    masked = mask_url(url)
    assert shown in masked
    assert hidden not in masked


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("postgresql://cw:hunter2secret@db/cw", "postgresql://cw:***@db/cw", "hunter2secret"),
        ("postgresql://cw@db/cw?password=qu3ry-secret", "password=***", "qu3ry-secret"),
        # SQLAlchemy takes these characters unencoded in a password; so must the mask.
        ("postgresql://cw:s3cr/etpass@127.0.0.1:5999/cw", "cw:***@127.0.0.1:5999/cw", "s3cr"),
        ("postgresql://cw:s3cr?etpass@db/cw", "cw:***@db/cw", "etpass"),
        ("postgresql://cw:s3cr#etpass@db/cw", "cw:***@db/cw", "etpass"),
        ("sqlite:////var/lib/creditwatch/cw.db", "sqlite:////var/lib/creditwatch/cw.db", "\0"),
        ("sqlite:///cw.db?password=x-secret-1", "sqlite:///cw.db?password=***", "x-secret-1"),
    ],
)
def test_mask_database_url_reads_the_url_as_sqlalchemy_does(
    url: str, shown: str, hidden: str
) -> None:
    """Every password SQLAlchemy would send is masked, however it is spelt."""
    masked = mask_database_url(url)
    assert shown in masked
    assert hidden not in masked
    assert all(secret not in masked for secret in database_credentials(url))


def test_a_database_user_is_not_a_secret() -> None:
    """``creditwatch@db`` names a role, not a credential: masking it would mangle every log."""
    assert database_credentials("postgresql+psycopg://creditwatch@db.internal/creditwatch") == []
    assert database_credentials("postgresql://cw:s3cr/etpass@db/cw") == ["s3cr/etpass"]


def test_url_credentials_lists_what_logs_must_mask() -> None:
    """The log filter learns a URL's password and secret query values."""
    assert url_credentials("https://u:pw-123456@proxy/x?password=other-9999") == [
        "pw-123456",
        "other-9999",
    ]
    assert url_credentials("https://api.anthropic.com") == []
