"""Channel settings: built-in variables, CREDITWATCH_CHANNEL_<NAME>, SMTP URLs, secrets masked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from service.commands.main import main
from service.errors import ConfigError
from service.settings import describe, load_settings
from service.settings.channels import ChannelSettings

KEY = "sk-ant-admin01-abcdefghijklmnopqrstuvwxyz"
SLACK = "https://hooks.slack.com/services/T0/B0/slacktoken123"
HOOK = "https://alerts.example.com/hook?token=hooktoken456"
ROUTING = "R0UT1NGKEY0123456789ABCDEF012345"
SMTP = "smtp://alerts:smtppass789@smtp.example.com:587"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def channels_of(**env: str) -> ChannelSettings:
    return load_settings({"ANTHROPIC_ADMIN_KEY": KEY, **env}, None).channels


def refused(**env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        channels_of(**env)
    return caught.value


def test_no_channel_is_the_default() -> None:
    settings = channels_of()
    assert settings.channels == ()
    assert settings.delivery_lease == timedelta(minutes=5)


def test_the_built_in_variables_name_their_channels() -> None:
    settings = channels_of(
        CREDITWATCH_SLACK_WEBHOOK_URL=SLACK,
        CREDITWATCH_WEBHOOK_URL=HOOK,
        CREDITWATCH_WEBHOOK_SECRET=WHSEC,
        CREDITWATCH_SMTP_URL=SMTP,
        CREDITWATCH_EMAIL_FROM="creditwatch@example.com",
        CREDITWATCH_EMAIL_TO="Ops <ops@example.com>, finance@example.com",
    )
    assert settings.names == ("slack", "webhook", "email")
    email = settings.channels[2]
    assert email.target == "ops@example.com,finance@example.com"
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == (
        "smtp.example.com",
        587,
        "starttls",
    )
    assert settings.smtp.username == "alerts"
    assert settings.smtp.password == "smtppass789"
    assert set(settings.secrets()) == {
        SLACK,
        "slacktoken123",
        HOOK,
        "hooktoken456",
        WHSEC,
        "smtppass789",
    }


def test_named_channels_of_every_kind() -> None:
    settings = channels_of(
        CREDITWATCH_CHANNEL_OPS=f"pagerduty:{ROUTING}",
        CREDITWATCH_CHANNEL_FINANCE_SLACK=f"slack:{SLACK}",
        CREDITWATCH_CHANNEL_CHAT="discord:https://discord.com/api/webhooks/1/abc",
        CREDITWATCH_CHANNEL_TEAMS="teams:https://prod-00.westus.logic.azure.com/workflows/x",
        CREDITWATCH_CHANNEL_HOOK="webhook:http://127.0.0.1:9000/in",
        CREDITWATCH_CHANNEL_NTFY="apprise:ntfy://ntfy.sh/topic",
        CREDITWATCH_CHANNEL_CFO="email:cfo@example.com",
        CREDITWATCH_SMTP_URL="smtp://127.0.0.1:2525?tls=off",
        CREDITWATCH_EMAIL_FROM="creditwatch@example.com",
    )
    kinds = {c.name: c.kind for c in settings.channels}
    assert kinds == {
        "ops": "pagerduty",
        "finance_slack": "slack",
        "chat": "discord",
        "teams": "teams",
        "hook": "webhook",
        "ntfy": "apprise",
        "cfo": "email",
    }
    assert settings.smtp is not None
    assert settings.smtp.security == "none"


@pytest.mark.parametrize(
    ("env", "variable", "problem"),
    [
        ({"CREDITWATCH_CHANNEL_OPS": ROUTING}, "CREDITWATCH_CHANNEL_OPS", "channel kind"),
        ({"CREDITWATCH_CHANNEL_OPS": "pager:" + ROUTING}, "CREDITWATCH_CHANNEL_OPS", "kind"),
        ({"CREDITWATCH_CHANNEL_OPS": "pagerduty:short"}, "CREDITWATCH_CHANNEL_OPS", "routing"),
        ({"CREDITWATCH_CHANNEL_OPS": "slack:"}, "CREDITWATCH_CHANNEL_OPS", "no slack target"),
        (
            {"CREDITWATCH_CHANNEL_OPS": "webhook:http://alerts.example.com/x"},
            "CREDITWATCH_CHANNEL_OPS",
            "https",
        ),
        (
            {"CREDITWATCH_SLACK_WEBHOOK_URL": "hooks.slack.com/x"},
            "CREDITWATCH_SLACK_WEBHOOK_URL",
            "https",
        ),
        (
            {"CREDITWATCH_CHANNEL_SLACK": f"slack:{SLACK}", "CREDITWATCH_SLACK_WEBHOOK_URL": SLACK},
            "CREDITWATCH_CHANNEL_SLACK",
            "already",
        ),
        ({"CREDITWATCH_EMAIL_TO": "ops@example.com"}, "CREDITWATCH_SMTP_URL", "required"),
        (
            {"CREDITWATCH_EMAIL_TO": "ops@example.com", "CREDITWATCH_SMTP_URL": SMTP},
            "CREDITWATCH_EMAIL_FROM",
            "required",
        ),
        ({"CREDITWATCH_SMTP_URL": SMTP}, "CREDITWATCH_EMAIL_TO", "required"),
        ({"CREDITWATCH_EMAIL_TO": "not an address"}, "CREDITWATCH_EMAIL_TO", "not an e-mail"),
        (
            {"CREDITWATCH_EMAIL_TO": "ops@example.com\r\nBcc: x@evil.example"},
            "CREDITWATCH_EMAIL_TO",
            "line break",
        ),
        ({"CREDITWATCH_SMTP_URL": "http://mail:25"}, "CREDITWATCH_SMTP_URL", "smtp://"),
        ({"CREDITWATCH_SMTP_URL": "smtp://mail:25?tls=maybe"}, "CREDITWATCH_SMTP_URL", "tls="),
        ({"CREDITWATCH_SMTP_URL": "smtp://mail:25?foo=1"}, "CREDITWATCH_SMTP_URL", "unknown"),
        (
            {"CREDITWATCH_SMTP_URL": "smtp://u:secretpw@mail.example.com:25?tls=off"},
            "CREDITWATCH_SMTP_URL",
            "without TLS",
        ),
        ({"CREDITWATCH_WEBHOOK_SECRET": "c2VjcmV0"}, "CREDITWATCH_WEBHOOK_SECRET", "whsec_"),
        ({"CREDITWATCH_WEBHOOK_SECRET": "whsec_c2Vj"}, "CREDITWATCH_WEBHOOK_SECRET", "shorter"),
        ({"CREDITWATCH_WEBHOOK_SECRET": "whsec_!!!"}, "CREDITWATCH_WEBHOOK_SECRET", "base64"),
        ({"CREDITWATCH_DELIVERY_LEASE": "0s"}, "CREDITWATCH_DELIVERY_LEASE", ""),
        ({"CREDITWATCH_DELIVERY_LEASE": "2h"}, "CREDITWATCH_DELIVERY_LEASE", ""),
        ({"CREDITWATCH_PAGERDUTY_URL": "ftp://x"}, "CREDITWATCH_PAGERDUTY_URL", "https"),
    ],
)
def test_channel_mistakes_name_the_variable_and_never_echo_the_value(
    env: dict[str, str], variable: str, problem: str
) -> None:
    error = refused(**env)
    assert error.variable == variable
    assert problem in error.problem
    assert "(example: " in str(error)
    for value in env.values():
        for secret in (ROUTING, "slacktoken123", "secretpw", "smtppass789"):
            if secret in value:
                assert secret not in str(error)


def test_the_delivery_lease_is_a_duration() -> None:
    lease = channels_of(CREDITWATCH_DELIVERY_LEASE="30s", CREDITWATCH_HTTP_TIMEOUT="10s")
    assert lease.delivery_lease == timedelta(seconds=30)
    error = refused(CREDITWATCH_DELIVERY_LEASE="30s")
    assert error.variable == "CREDITWATCH_DELIVERY_LEASE"
    assert "twice CREDITWATCH_HTTP_TIMEOUT" in error.problem


def test_smtps_defaults_to_465_and_verify_off_is_kept() -> None:
    settings = channels_of(
        CREDITWATCH_SMTP_URL="smtps://mail.example.com?verify=off",
        CREDITWATCH_EMAIL_FROM="cw@example.com",
        CREDITWATCH_EMAIL_TO="ops@example.com",
    )
    assert settings.smtp is not None
    assert (settings.smtp.port, settings.smtp.security, settings.smtp.verify) == (
        465,
        "ssl",
        False,
    )


def test_describe_names_channels_and_hides_their_secrets() -> None:
    settings = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": KEY,
            "CREDITWATCH_SLACK_WEBHOOK_URL": SLACK,
            "CREDITWATCH_CHANNEL_OPS": f"pagerduty:{ROUTING}",
            "CREDITWATCH_SMTP_URL": SMTP,
            "CREDITWATCH_EMAIL_FROM": "cw@example.com",
            "CREDITWATCH_EMAIL_TO": "ops@example.com",
            "CREDITWATCH_WEBHOOK_URL": HOOK,
            "CREDITWATCH_WEBHOOK_SECRET": WHSEC,
        },
        None,
    )
    text = "\n".join(f"{k} {v}" for k, v in describe(settings).items())
    text += "\n".join(settings.channels.describe())
    for secret in ("slacktoken123", ROUTING, "smtppass789", "hooktoken456", WHSEC, KEY):
        assert secret not in text
    assert "ops@example.com" in text
    assert "ops: pagerduty" in text
    assert "webhooks are signed" in text
    assert "alerts:***@smtp.example.com:587 (starttls)" in text


def test_check_config_lists_channels_masked_and_warns_when_there_is_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", KEY)
    assert main(["check-config"]) == 0
    assert "warning: no channel is configured" in capsys.readouterr().out
    monkeypatch.setenv("CREDITWATCH_SLACK_WEBHOOK_URL", SLACK)
    monkeypatch.setenv("CREDITWATCH_CHANNEL_OPS", f"pagerduty:{ROUTING}")
    assert main(["check-config"]) == 0
    out = capsys.readouterr()
    assert "slack: slack https://hooks.slack.com/…" in out.out
    assert "ops: pagerduty" in out.out
    assert "no channel" not in out.out
    for secret in ("slacktoken123", ROUTING, KEY):
        assert secret not in out.out + out.err


@pytest.mark.parametrize(
    ("url", "tokens", "readable"),
    [
        (SLACK, ["slacktoken123"], ["services", "hooks.slack.com"]),
        (
            "https://discord.com/api/webhooks/1234567890123/AbC-dEf_123456",
            ["1234567890123", "AbC-dEf_123456"],
            ["webhooks"],
        ),
        (
            "https://prod-00.westus.logic.azure.com/workflows/2f1e0c9a8b7d/triggers/manual/paths/"
            "invoke?api-version=2016-06-01&sig=AbCdEf012345xyz",
            ["2f1e0c9a8b7d", "AbCdEf012345xyz"],
            ["workflows", "logic.azure.com"],
        ),
        (HOOK, ["hooktoken456"], ["alerts.example.com"]),
    ],
)
def test_a_token_inside_a_channel_url_is_a_secret_on_its_own(
    url: str, tokens: list[str], readable: list[str]
) -> None:
    """A receiver that echoes part of its URL (an error body) must not put the token in a log."""
    secrets = channels_of(CREDITWATCH_CHANNEL_X=f"webhook:{url}").secrets()
    for token in tokens:
        assert token in secrets
    for word in readable:
        assert not any(word in secret for secret in secrets if secret != url)


def test_every_word_of_an_apprise_url_is_a_secret() -> None:
    """An ntfy topic is a plain word, and anyone who knows it reads the alerts."""
    secrets = channels_of(CREDITWATCH_CHANNEL_N="apprise:ntfy://ntfy.sh/acme-billing").secrets()
    assert "acme-billing" in secrets


def test_a_channel_name_is_at_most_64_characters() -> None:
    """Names are stored with every notification: a longer one is refused here, not there."""
    assert channels_of(**{"CREDITWATCH_CHANNEL_" + "A" * 64: f"slack:{SLACK}"}).names == ("a" * 64,)
    error = refused(**{"CREDITWATCH_CHANNEL_" + "A" * 65: f"slack:{SLACK}"})
    assert "64 at most" in error.problem


def test_a_token_of_letters_only_is_still_a_secret() -> None:
    """One Slack token in seventy has no digit; its length gives it away."""
    url = "https://hooks.slack.com/services/TABCDEFGH/BABCDEFGH/abcdefghijklmnopqrstuvwx"
    secrets = channels_of(CREDITWATCH_SLACK_WEBHOOK_URL=url).secrets()
    assert "abcdefghijklmnopqrstuvwx" in secrets
