"""Settings: env file under the environment, secrets from files, exit 78 on bad values."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from service.commands.main import main
from service.errors import ConfigError
from service.settings import describe, environment, load_settings
from service.settings.environment import KNOWN_VARIABLES, RESERVED_VARIABLES

KEY = "sk-ant-admin01-abcdefghijklmnopqrstuvwxyz"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASE = {"ANTHROPIC_ADMIN_KEY": KEY}


def test_defaults() -> None:
    """With only the admin key, every other setting takes its documented default."""
    settings = load_settings(BASE, None)
    assert settings.api.base_url == "https://api.anthropic.com"
    assert settings.collection.poll_interval == timedelta(minutes=5)
    assert settings.collection.lookback == timedelta(hours=3)
    assert settings.collection.bucket_width == "1h"
    assert settings.ledger.database_url.endswith("/creditwatch.db")
    assert settings.ledger.starting_balance is None


def test_state_directory_holds_the_default_database() -> None:
    """Under systemd, the default SQLite file lives in $STATE_DIRECTORY."""
    settings = load_settings({**BASE, "STATE_DIRECTORY": "/var/lib/creditwatch"}, None)
    assert settings.ledger.database_url == "sqlite:////var/lib/creditwatch/creditwatch.db"


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    """A variable set in both places takes the process environment's value."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_text(
        f"ANTHROPIC_ADMIN_KEY={KEY}\nCREDITWATCH_POLL_INTERVAL=10m\nCREDITWATCH_LOOKBACK=1h\n"
    )
    settings = load_settings({"CREDITWATCH_POLL_INTERVAL": "30s"}, env_file)
    assert settings.collection.poll_interval == timedelta(seconds=30)
    assert settings.collection.lookback == timedelta(hours=1)
    assert settings.sources["CREDITWATCH_POLL_INTERVAL"] == "environment"
    assert settings.sources["CREDITWATCH_LOOKBACK"] == "env file"


def test_secret_from_file(tmp_path: Path) -> None:
    """ANTHROPIC_ADMIN_KEY_FILE reads the key from a file (systemd credentials)."""
    secret = tmp_path / "key"
    secret.write_text(KEY + "\n")
    settings = load_settings({"ANTHROPIC_ADMIN_KEY_FILE": str(secret)}, None)
    assert settings.require_admin_key().get_secret_value() == KEY


def test_starting_balance_parses_exactly() -> None:
    """The starting balance is an exact Decimal and its time an aware UTC datetime."""
    settings = load_settings(
        {
            **BASE,
            "CREDITWATCH_STARTING_BALANCE": "250.10",
            "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-01T02:00:00+02:00",
        },
        None,
    )
    assert settings.ledger.starting_balance == Decimal("250.10")
    assert settings.ledger.starting_balance_at == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("env", "variable", "problem"),
    [
        ({"ANTHROPIC_ADMIN_KEY": ""}, "ANTHROPIC_ADMIN_KEY", "is not set"),
        ({"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01 x"}, "ANTHROPIC_ADMIN_KEY", "white space"),
        (
            {"ANTHROPIC_ADMIN_KEY_FILE": "/nonexistent/key"},
            "ANTHROPIC_ADMIN_KEY_FILE",
            "cannot read",
        ),
        ({**BASE, "ANTHROPIC_BASE_URL": "api.anthropic.com"}, "ANTHROPIC_BASE_URL", "not an http"),
        (
            {**BASE, "CREDITWATCH_DATABASE_URL": "mysql://x/y"},
            "CREDITWATCH_DATABASE_URL",
            "not supported",
        ),
        (
            {**BASE, "CREDITWATCH_DATABASE_URL": "not a url"},
            "CREDITWATCH_DATABASE_URL",
            "not an SQLAlchemy",
        ),
        (
            {**BASE, "CREDITWATCH_POLL_INTERVAL": "5 minutes"},
            "CREDITWATCH_POLL_INTERVAL",
            "not a duration",
        ),
        (
            {**BASE, "CREDITWATCH_POLL_INTERVAL": "500ms"},
            "CREDITWATCH_POLL_INTERVAL",
            "shorter than",
        ),
        ({**BASE, "CREDITWATCH_LOOKBACK": "3"}, "CREDITWATCH_LOOKBACK", "not a duration"),
        (
            {
                **BASE,
                "CREDITWATCH_STARTING_BALANCE": "$250",
                "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-01T00:00:00Z",
            },
            "CREDITWATCH_STARTING_BALANCE",
            "not a number",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_STARTING_BALANCE": "-5",
                "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-01T00:00:00Z",
            },
            "CREDITWATCH_STARTING_BALANCE",
            "negative",
        ),
        (
            {**BASE, "CREDITWATCH_STARTING_BALANCE": "250"},
            "CREDITWATCH_STARTING_BALANCE_AT",
            "is required",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_STARTING_BALANCE": "250",
                "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-01 00:00",
            },
            "CREDITWATCH_STARTING_BALANCE_AT",
            "no UTC offset",
        ),
        (
            {**BASE, "CREDITWATCH_BACKFILL_FROM": "yesterday"},
            "CREDITWATCH_BACKFILL_FROM",
            "not an RFC 3339",
        ),
        (
            {**BASE, "CREDITWATCH_PRICES_FILE": "/nonexistent.toml"},
            "CREDITWATCH_PRICES_FILE",
            "does not exist",
        ),
        ({**BASE, "CREDITWATCH_LOG_LEVEL": "LOUD"}, "CREDITWATCH_LOG_LEVEL", "is not one of"),
        ({**BASE, "CREDITWATCH_LOG_FORMAT": "xml"}, "CREDITWATCH_LOG_FORMAT", "not text or json"),
        (
            {**BASE, "CREDITWATCH_BUCKET_WIDTH": "5m"},
            "CREDITWATCH_BUCKET_WIDTH",
            "not 1m, 1h or 1d",
        ),
        (
            {**BASE, "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "50"},
            "CREDITWATCH_AUTO_RELOAD_TO",
            "is required",
        ),
        (
            {**BASE, "CREDITWATCH_AUTO_RELOAD_TO": "50"},
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
            "is required",
        ),
        (
            {**BASE, "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "50", "CREDITWATCH_AUTO_RELOAD_TO": "50"},
            "CREDITWATCH_AUTO_RELOAD_TO",
            "must be above",
        ),
        (
            {**BASE, "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "0", "CREDITWATCH_AUTO_RELOAD_TO": "50"},
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
            "more than 0",
        ),
        (
            {**BASE, "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": "500"},
            "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT",
            "needs CREDITWATCH_AUTO_RELOAD_THRESHOLD",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "5",
                "CREDITWATCH_AUTO_RELOAD_TO": "50",
                "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": "0",
            },
            "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT",
            "more than 0",
        ),
        (
            {**BASE, "CREDITWATCH_CREDIT_UNIT_USD": "0"},
            "CREDITWATCH_CREDIT_UNIT_USD",
            "more than 0",
        ),
        (
            {**BASE, "CREDITWATCH_CREDIT_EXPIRY": "1y"},
            "CREDITWATCH_CREDIT_EXPIRY",
            "not a duration",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_STARTING_BALANCE": "99999999999999999999999",
                "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-01T00:00:00Z",
            },
            "CREDITWATCH_STARTING_BALANCE",
            "more than the ledger holds",
        ),
        (
            {**BASE, "CREDITWATCH_DATABASE_URL": "postgresql://u:p@h:notaport/db"},
            "CREDITWATCH_DATABASE_URL",
            "not an SQLAlchemy",
        ),
        (
            {**BASE, "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-\u00e9t\u00e9"},
            "ANTHROPIC_ADMIN_KEY",
            "non-ASCII",
        ),
        (
            {**BASE, "ANTHROPIC_BASE_URL": "https://api.anthropic.com/v1"},
            "ANTHROPIC_BASE_URL",
            "ends in /v1",
        ),
        (
            {**BASE, "CREDITWATCH_LOOKBACK": "99999999999d"},
            "CREDITWATCH_LOOKBACK",
            "longer than the maximum",
        ),
        (
            {**BASE, "CREDITWATCH_CREDIT_EXPIRY": "99999999999d"},
            "CREDITWATCH_CREDIT_EXPIRY",
            "longer than the maximum",
        ),
        (
            {**BASE, "CREDITWATCH_POLL_INTERVAL": "2d"},
            "CREDITWATCH_POLL_INTERVAL",
            "longer than the maximum 1d",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "1e999999",
                "CREDITWATCH_AUTO_RELOAD_TO": "50",
            },
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
            "more than the ledger holds",
        ),
        (
            {**BASE, "CREDITWATCH_BACKFILL_FROM": "1970-01-01T00:00:00Z"},
            "CREDITWATCH_BACKFILL_FROM",
            "outside the years 2000 to 2100",
        ),
        (
            {
                **BASE,
                "CREDITWATCH_STARTING_BALANCE": "250",
                "CREDITWATCH_STARTING_BALANCE_AT": "2026-12-01T13:00:00Z",
            },
            "CREDITWATCH_STARTING_BALANCE_AT",
            "is in the future",
        ),
        (
            {**BASE, "ANTHROPIC_BASE_URL": "https://user:hunter2@proxy/x y"},
            "ANTHROPIC_BASE_URL",
            "not an http(s) URL",
        ),
        (
            {**BASE, "CREDITWATCH_POLL_INTERVALL": "5m"},
            "CREDITWATCH_POLL_INTERVALL",
            "did you mean CREDITWATCH_POLL_INTERVAL",
        ),
    ],
)
def test_bad_values_name_the_variable_the_problem_and_an_example(
    env: dict[str, str], variable: str, problem: str
) -> None:
    """Each bad value raises ConfigError with the variable, what is wrong and an example."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env, None, now=NOW)
    assert caught.value.variable == variable
    assert problem in caught.value.problem
    assert "(example: " in str(caught.value)
    if "did you mean" not in problem:
        assert f"example: {variable}=" in str(caught.value)


def test_misspelt_secret_variable_is_not_echoed() -> None:
    """A typo in a secret's name is reported without printing the value it holds."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "CREDITWATCH_WEBHOK_SECRET": "whsec_c2VjcmV0LXZhbHVl"}, None)
    assert "CREDITWATCH_WEBHOOK_SECRET" in str(caught.value)
    assert "whsec_c2VjcmV0LXZhbHVl" not in str(caught.value)


def test_env_example_documents_every_variable() -> None:
    """.env.example names every variable this version reads or reserves."""
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in sorted(KNOWN_VARIABLES | RESERVED_VARIABLES):
        assert name in example, name


def test_reserved_variables_warn_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A contract variable a version does not implement yet is reported, not ignored silently
    (every variable of today's contract is implemented: the mechanism is kept for the next)."""
    assert frozenset() == RESERVED_VARIABLES
    name = "CREDITWATCH_FUTURE_SETTING"
    monkeypatch.setattr(environment, "RESERVED_VARIABLES", frozenset({name}))
    settings = load_settings({**BASE, name: "5"}, None)
    assert any(name in w and "not implemented" in w for w in settings.warnings)


def test_fast_polling_of_anthropic_warns() -> None:
    """A poll interval under a minute against api.anthropic.com is allowed but warned about."""
    settings = load_settings({**BASE, "CREDITWATCH_POLL_INTERVAL": "30s"}, None)
    assert any("once a minute" in w for w in settings.warnings)
    local = load_settings(
        {**BASE, "CREDITWATCH_POLL_INTERVAL": "1s", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"},
        None,
    )
    assert local.warnings == ()


def test_describe_masks_secrets() -> None:
    """check-config output shows at most the first 4 characters of the key and no DB password."""
    settings = load_settings(
        {**BASE, "CREDITWATCH_DATABASE_URL": "postgresql://cw:hunter2secret@db/cw"}, None
    )
    shown = "\n".join(describe(settings).values())
    assert KEY not in shown
    assert KEY[4:12] not in shown
    assert "hunter2secret" not in shown
    assert describe(settings)["ANTHROPIC_ADMIN_KEY"].startswith("sk-a…")


def test_check_config_prints_masked_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`creditwatch check-config` succeeds and never prints the key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", KEY)
    assert main(["check-config"]) == 0
    out = capsys.readouterr()
    assert "ANTHROPIC_ADMIN_KEY" in out.out
    assert KEY not in out.out + out.err


def test_bad_env_file_value_exits_78_without_traceback(tmp_path: Path) -> None:
    """A real process given a bad value exits 78 with one line naming the variable."""
    env_file = tmp_path / "bad.env"
    env_file.write_text(f"ANTHROPIC_ADMIN_KEY={KEY}\nCREDITWATCH_POLL_INTERVAL=often\n")
    done = subprocess.run(
        [sys.executable, "-m", "service", "--env-file", str(env_file), "check-config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 78
    assert "CREDITWATCH_POLL_INTERVAL" in done.stderr
    assert "example: CREDITWATCH_POLL_INTERVAL=5m" in done.stderr
    assert "Traceback" not in done.stderr
    assert KEY not in done.stderr + done.stdout


def test_missing_explicit_env_file_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--env-file naming a file that does not exist is a configuration error."""
    assert main(["--env-file", str(tmp_path / "nope.env"), "check-config"]) == 78
    assert "does not exist" in capsys.readouterr().err


def test_a_broken_price_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A price override that does not parse stops check-config with exit 78 naming the variable."""
    prices = tmp_path / "prices.toml"
    prices.write_text('[[model]]\nid = "claude-x"\ninput = 3.0\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", KEY)
    monkeypatch.setenv("CREDITWATCH_PRICES_FILE", str(prices))
    assert main(["check-config"]) == 78
    err = capsys.readouterr().err
    assert err.startswith("creditwatch: configuration error: CREDITWATCH_PRICES_FILE:")
    assert "Traceback" not in err


def test_a_starting_balance_time_that_has_passed_is_accepted() -> None:
    """The future check uses the injected clock: the same time is fine once it has passed."""
    env = {
        **BASE,
        "CREDITWATCH_STARTING_BALANCE": "250",
        "CREDITWATCH_STARTING_BALANCE_AT": "2026-12-01T13:00:00Z",
    }
    later = load_settings(env, None, now=NOW + timedelta(hours=1))
    assert later.ledger.starting_balance_at == datetime(2026, 12, 1, 13, tzinfo=UTC)


def test_a_bad_base_url_is_not_echoed() -> None:
    """ANTHROPIC_BASE_URL may carry proxy credentials: the error does not print the value."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "ANTHROPIC_BASE_URL": "https://u:hunter2@proxy/x y"}, None)
    assert "hunter2" not in str(caught.value)


SECRETS = (
    ("ANTHROPIC_ADMIN_KEY", KEY),
    ("CREDITWATCH_DATABASE_URL", "postgresql://cw:db-pass-123@db.internal/cw"),
    ("CREDITWATCH_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/slacktoken123"),
    ("CREDITWATCH_WEBHOOK_URL", "https://hooks.example.com/creditwatch/hooktoken456"),
    ("CREDITWATCH_WEBHOOK_SECRET", "whsec_Y3JlZGl0d2F0Y2gtdGVzdC1zaWduaW5nLWtleS0wMTIz"),
    ("CREDITWATCH_SMTP_URL", "smtp://alerts:smtp-pass-789@mail.internal:587"),
    ("CREDITWATCH_CHANNEL_OPS", "pagerduty:routingkey0123456789abcdef"),
)


@pytest.mark.parametrize(("name", "value"), SECRETS, ids=[name for name, _ in SECRETS])
def test_every_secret_reads_from_a_file(tmp_path: Path, name: str, value: str) -> None:
    """<NAME>_FILE works for every secret of the contract, and the value is masked in logs."""
    secret = tmp_path / "secret"
    secret.write_text(value + "\n")
    env = {**BASE, f"{name}_FILE": str(secret)}
    if name == "ANTHROPIC_ADMIN_KEY":
        env.pop("ANTHROPIC_ADMIN_KEY")
    if name == "CREDITWATCH_SMTP_URL":  # mail needs a sender and recipients too
        env.update(CREDITWATCH_EMAIL_FROM="cw@example.com", CREDITWATCH_EMAIL_TO="ops@example.com")
    settings = load_settings(env, None)
    assert settings.sources[name] == f"environment: {name}_FILE"
    if name == "CREDITWATCH_DATABASE_URL":
        # The URL is used as given; its password is what logs must never show.
        assert settings.ledger.database_url == value
        assert "db-pass-123" in settings.secrets
    else:
        assert value in settings.secrets


def test_a_secret_and_its_file_together_are_refused(tmp_path: Path) -> None:
    """Setting both is ambiguous: one line says which to keep."""
    secret = tmp_path / "hook"
    secret.write_text("https://hooks.slack.com/services/T/B/x")
    with pytest.raises(ConfigError, match="keep one"):
        load_settings(
            {
                **BASE,
                "CREDITWATCH_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/y",
                "CREDITWATCH_SLACK_WEBHOOK_URL_FILE": str(secret),
            },
            None,
        )


def test_file_of_a_setting_that_is_not_a_secret_is_a_typo(tmp_path: Path) -> None:
    """Only secrets have a _FILE form; anything else is reported like any unknown name."""
    with pytest.raises(ConfigError, match="did you mean"):
        load_settings({**BASE, "CREDITWATCH_POLL_INTERVAL_FILE": str(tmp_path)}, None)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00broken", b"KEY=\xe9t\xe9\n"])
def test_a_secret_file_that_is_not_text_is_a_configuration_error(
    tmp_path: Path, content: bytes
) -> None:
    """A *_FILE holding bytes that are not UTF-8 stops with the variable's name."""
    secret = tmp_path / "key"
    secret.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings({"ANTHROPIC_ADMIN_KEY_FILE": str(secret)}, None)
    assert caught.value.variable == "ANTHROPIC_ADMIN_KEY_FILE"
    assert "not UTF-8 text" in caught.value.problem


def test_an_env_file_that_is_a_folder_is_a_configuration_error(tmp_path: Path) -> None:
    """--env-file naming something unreadable fails with exit 78, not IsADirectoryError."""
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE, tmp_path, env_file_explicit=True)
    assert caught.value.variable == "--env-file"
    assert "cannot be read" in caught.value.problem


def test_an_env_file_that_is_not_text_is_a_configuration_error(tmp_path: Path) -> None:
    """An env file saved in another encoding is refused naming the file and the byte."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_bytes(b"ANTHROPIC_ADMIN_KEY=sk-ant-admin01-x\nCREDITWATCH_NOTE=caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, env_file, env_file_explicit=True)
    assert "is not UTF-8 text" in caught.value.problem
    assert str(env_file) in caught.value.problem


def test_a_utf8_env_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Editors on Windows add a BOM; it is not part of the first variable's name."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_bytes(b"\xef\xbb\xbfANTHROPIC_ADMIN_KEY=" + KEY.encode() + b"\n")
    settings = load_settings({}, env_file, env_file_explicit=True)
    assert settings.require_admin_key().get_secret_value() == KEY


def test_describe_masks_urls_with_credentials() -> None:
    """check-config never shows a database password given as ?password= or proxy credentials."""
    settings = load_settings(
        {
            **BASE,
            "CREDITWATCH_DATABASE_URL": "postgresql+psycopg://cw@db/cw?password=qu3ry-secret",
            "ANTHROPIC_BASE_URL": "https://proxy:pr0xy-pass@proxy.internal",
        },
        None,
    )
    shown = "\n".join(describe(settings).values())
    assert "qu3ry-secret" not in shown
    assert "pr0xy-pass" not in shown
    assert "password=***" in shown
    assert {"qu3ry-secret", "pr0xy-pass"} <= set(settings.secrets)
    slashed = load_settings(
        {**BASE, "CREDITWATCH_DATABASE_URL": "postgresql://cw:s3cr/etpass@db:5999/cw"}, None
    )
    assert "s3cr/etpass" not in "\n".join(describe(slashed).values())
    assert "s3cr/etpass" in slashed.secrets


RUN_AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.mark.skipif(
    not Path("/usr/bin/setpriv").exists() or __import__("os").geteuid() != 0,
    reason="needs root and setpriv to run as another user",
)
def test_a_root_only_env_file_is_one_line_and_exit_78(tmp_path: Path) -> None:
    """What DynamicUser= meets with a mode-600 root file: exit 78, one line, no traceback."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_text(f"ANTHROPIC_ADMIN_KEY={KEY}\n")
    env_file.chmod(0o600)
    tmp_path.chmod(0o755)
    done = subprocess.run(
        [
            *RUN_AS_NOBODY,
            sys.executable,
            "-m",
            "service",
            "--env-file",
            str(env_file),
            "check-config",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )
    assert done.returncode == 78, done.stderr
    assert done.stderr.count("\n") == 1
    assert "Permission denied" in done.stderr
    assert "--env-file" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_examples_in_env_example_are_valid_settings() -> None:
    """Every commented example, uncommented at once, is accepted: the documentation is true."""
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    env: dict[str, str] = {}
    for line in example.splitlines():
        name, equals, value = line.removeprefix("# ").partition("=")
        if not equals or not name.isupper() or " " in name:
            continue
        if name.endswith("_FILE") or name == "CREDITWATCH_PRICES_FILE":
            continue  # they name files that exist on the operator's machine
        env[name] = value
    assert "CREDITWATCH_BUDGET_OPS" in env
    settings = load_settings(env, None, now=NOW)
    assert [b.name for b in settings.rules.budgets] == ["monthly", "ci", "ops"]
    assert settings.rules.spike is not None


def test_usage_source_defaults_to_messages_and_refuses_anything_else() -> None:
    """CREDITWATCH_USAGE_SOURCE: messages by default, analytics when asked, else exit 78."""
    assert load_settings(BASE, None).collection.usage_source == "messages"
    chosen = load_settings({**BASE, "CREDITWATCH_USAGE_SOURCE": "Analytics"}, None)
    assert chosen.collection.usage_source == "analytics"
    assert chosen.warnings == ()
    assert describe(chosen)["CREDITWATCH_USAGE_SOURCE"].startswith("analytics")
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "CREDITWATCH_USAGE_SOURCE": "legacy"}, None)
    assert caught.value.variable == "CREDITWATCH_USAGE_SOURCE"
    assert "'legacy' is not messages" in str(caught.value)
    assert "example: CREDITWATCH_USAGE_SOURCE=analytics" in str(caught.value)
