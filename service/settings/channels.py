"""Delivery channels from the environment: the built-in ones and ``CREDITWATCH_CHANNEL_<NAME>``.

- ``CREDITWATCH_SLACK_WEBHOOK_URL`` → channel ``slack``; ``CREDITWATCH_WEBHOOK_URL`` → ``webhook``
  (signed with ``CREDITWATCH_WEBHOOK_SECRET``, ``whsec_`` + base64, when set);
  ``CREDITWATCH_SMTP_URL`` + ``CREDITWATCH_EMAIL_FROM`` + ``CREDITWATCH_EMAIL_TO`` → ``email``.
- ``CREDITWATCH_CHANNEL_<NAME>=kind:target``: ``slack:https://hooks.slack.com/…``,
  ``webhook:https://…``, ``email:a@x.com,b@y.com`` (through the SMTP URL),
  ``discord:https://discord.com/api/webhooks/…``, ``teams:https://…`` (a Workflows webhook),
  ``pagerduty:<routing key>`` (Events API v2 at ``CREDITWATCH_PAGERDUTY_URL``),
  ``apprise:<apprise URL>`` (the optional ``creditwatch[apprise]`` extra).
- SMTP URLs: ``smtp://user:pass@host:587`` (STARTTLS, the default), ``smtps://…:465`` (TLS from
  the start), ``smtp://127.0.0.1:2525?tls=off`` (a local relay); ``?verify=off`` skips the
  certificate check (a self-signed relay).
Channel URLs, routing keys and SMTP passwords are secrets: never shown, logged or alerted.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from service.errors import ConfigError
from service.settings.grammar import mask_secret, parse_duration, url_tokens

ChannelKind = Literal["slack", "webhook", "email", "discord", "teams", "pagerduty", "apprise"]
SmtpSecurity = Literal["starttls", "ssl", "none"]
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
CHANNEL_PREFIX = "CREDITWATCH_CHANNEL_"
# Channel names are stored with every notification (100 characters at most there).
_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{20,64}")
_EXAMPLES: dict[str, str] = {
    "slack": "slack:https://hooks.slack.com/services/T000/B000/XXXX",
    "webhook": "webhook:https://alerts.example.com/creditwatch",
    "email": "email:oncall@example.com,finance@example.com",
    "discord": "discord:https://discord.com/api/webhooks/123/abc",
    "teams": "teams:https://prod-00.westus.logic.azure.com/workflows/…",
    "pagerduty": "pagerduty:R0UT1NGKEY0123456789ABCDEF012345",
    "apprise": "apprise:ntfy://ntfy.sh/my-topic",
}


@dataclass(frozen=True)
class ChannelSpec:
    """One configured channel: its name (for routing), kind, target (a secret) and variable."""

    name: str
    kind: ChannelKind
    target: str
    variable: str

    def describe(self) -> str:
        if self.kind == "email":
            return f"email to {self.target}"
        if self.kind in ("pagerduty", "apprise"):
            return f"{self.kind} {mask_secret(self.target)}"
        # The path of a webhook URL is its secret (Slack's, Discord's tokens): the host only.
        return f"{self.kind} {urlsplit(self.target).scheme}://{urlsplit(self.target).hostname}/…"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: SmtpSecurity
    verify: bool
    username: str | None
    password: str | None

    def describe(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        check = "" if self.verify else ", certificate not verified"
        return f"{auth}{self.host}:{self.port} ({self.security}{check})"


@dataclass(frozen=True)
class ChannelSettings:
    channels: tuple[ChannelSpec, ...] = ()
    webhook_secret: str | None = None
    smtp: SmtpSettings | None = None
    email_from: str | None = None
    pagerduty_url: str = DEFAULT_PAGERDUTY_URL
    # A claimed delivery not acknowledged within this was abandoned (a crash): sent again.
    delivery_lease: timedelta = timedelta(minutes=5)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(channel.name for channel in self.channels)

    def describe(self) -> list[str]:
        """The channels in words, secrets masked, for `check-config`."""
        lines = [f"{c.name}: {c.describe()}  [{c.variable}]" for c in self.channels]
        if self.smtp is not None:
            lines.append(f"smtp: {self.smtp.describe()}, from {self.email_from}")
        if any(c.kind == "webhook" for c in self.channels):
            signed = "signed (Standard Webhooks)" if self.webhook_secret else "not signed"
            lines.append(f"webhooks are {signed}")
        return lines

    def secrets(self) -> list[str]:
        """Channel URLs and keys, and each token inside a URL: a receiver may echo either."""
        found = [c.target for c in self.channels if c.kind != "email"]
        for channel in self.channels:
            if channel.kind not in ("email", "pagerduty"):
                found += url_tokens(channel.target, every_word=channel.kind == "apprise")
        if self.webhook_secret:
            found.append(self.webhook_secret)
        if self.smtp is not None and self.smtp.password:
            found.append(self.smtp.password)
        return found


NO_CHANNEL = (
    "no channel is configured: alerts are kept (creditwatch alerts) and sent once one is; "
    "set CREDITWATCH_SLACK_WEBHOOK_URL, CREDITWATCH_WEBHOOK_URL or CREDITWATCH_CHANNEL_<NAME>"
)

Getter = Callable[[str], str | None]


def parse_channels(get: Getter, env: Mapping[str, str]) -> ChannelSettings:
    """Every configured channel; ConfigError naming the variable for the first bad one."""
    smtp_raw = get("CREDITWATCH_SMTP_URL")
    smtp = parse_smtp_url(smtp_raw) if smtp_raw else None
    sender = get("CREDITWATCH_EMAIL_FROM")
    if sender is not None:
        _addresses("CREDITWATCH_EMAIL_FROM", sender, single=True)
    secret = get("CREDITWATCH_WEBHOOK_SECRET")
    if secret is not None:
        _check_webhook_secret(secret)
    pagerduty_url = get("CREDITWATCH_PAGERDUTY_URL") or DEFAULT_PAGERDUTY_URL
    _check_url("CREDITWATCH_PAGERDUTY_URL", pagerduty_url, DEFAULT_PAGERDUTY_URL)
    lease = parse_duration(
        "CREDITWATCH_DELIVERY_LEASE",
        get("CREDITWATCH_DELIVERY_LEASE") or "5m",
        "5m",
        minimum=timedelta(seconds=1),
        maximum=timedelta(hours=1),
    )
    channels = _builtin(get)
    channels += [
        _named(variable, env[variable])
        for variable in sorted(env)
        if variable.startswith(CHANNEL_PREFIX) and env[variable]
    ]
    names = [c.name for c in channels]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"{CHANNEL_PREFIX}{name.upper()}",
                f"names the channel {name!r} that another setting already configures",
                _EXAMPLES["slack"],
            )
    _check_email(channels, smtp, sender)
    return ChannelSettings(
        channels=tuple(channels),
        webhook_secret=secret,
        smtp=smtp,
        email_from=sender,
        pagerduty_url=pagerduty_url.rstrip("/"),
        delivery_lease=lease,
    )


def _builtin(get: Getter) -> list[ChannelSpec]:
    """The channels of the contract's own variables: slack, webhook, email."""
    channels = []
    slack = get("CREDITWATCH_SLACK_WEBHOOK_URL")
    if slack:
        _check_url("CREDITWATCH_SLACK_WEBHOOK_URL", slack, _EXAMPLES["slack"][6:])
        channels.append(ChannelSpec("slack", "slack", slack, "CREDITWATCH_SLACK_WEBHOOK_URL"))
    webhook = get("CREDITWATCH_WEBHOOK_URL")
    if webhook:
        _check_url("CREDITWATCH_WEBHOOK_URL", webhook, _EXAMPLES["webhook"][8:])
        channels.append(ChannelSpec("webhook", "webhook", webhook, "CREDITWATCH_WEBHOOK_URL"))
    recipients = get("CREDITWATCH_EMAIL_TO")
    if recipients:
        checked = _addresses("CREDITWATCH_EMAIL_TO", recipients)
        channels.append(ChannelSpec("email", "email", checked, "CREDITWATCH_EMAIL_TO"))
    return channels


def _check_email(
    channels: list[ChannelSpec], smtp: SmtpSettings | None, sender: str | None
) -> None:
    """Email channels need the SMTP URL and a sender; an SMTP URL alone needs recipients."""
    if any(c.kind == "email" for c in channels):
        if smtp is None:
            raise ConfigError(
                "CREDITWATCH_SMTP_URL", "is required to send email", "smtp://user:pass@mail:587"
            )
        if sender is None:
            raise ConfigError(
                "CREDITWATCH_EMAIL_FROM", "is required to send email", "creditwatch@example.com"
            )
    elif smtp is not None:
        raise ConfigError(
            "CREDITWATCH_EMAIL_TO",
            "is required with CREDITWATCH_SMTP_URL (who gets the email)",
            "oncall@example.com",
        )


def _named(variable: str, raw: str) -> ChannelSpec:
    name = variable.removeprefix(CHANNEL_PREFIX)
    if not _NAME.fullmatch(name):
        raise ConfigError(
            variable,
            "the channel's name takes letters, digits and _ (64 at most)",
            _EXAMPLES["slack"],
        )
    kind, colon, target = raw.partition(":")
    kinds = get_args(ChannelKind)
    if not colon or kind not in kinds:
        # Never echo the value: it is a secret (a webhook URL, a routing key).
        raise ConfigError(
            variable,
            f"does not start with a channel kind ({', '.join(kinds)}) and a colon",
            _EXAMPLES["slack"],
        )
    example = _EXAMPLES[kind]
    if not target:
        raise ConfigError(variable, f"has no {kind} target after the colon", example)
    if kind in ("slack", "webhook", "discord", "teams"):
        _check_url(variable, target, example)
    elif kind == "email":
        target = _addresses(variable, target)
    elif kind == "pagerduty":
        if not _ROUTING_KEY.fullmatch(target):
            raise ConfigError(
                variable, "is not a PagerDuty routing key (20 to 64 letters and digits)", example
            )
    elif importlib.util.find_spec("apprise") is None:
        raise ConfigError(
            variable,
            "needs the Apprise extra: pip install 'creditwatch[apprise]'",
            example,
        )
    return ChannelSpec(name.lower(), kind, target, variable)  # type: ignore[arg-type]


def _check_url(variable: str, url: str, example: str) -> None:
    """https, or http to this machine only (a local relay, a test receiver); never echoed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigError(variable, "is not a URL", example) from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in _LOOPBACK:
        return
    raise ConfigError(
        variable, "is not an https URL (plain http only to 127.0.0.1 or localhost)", example
    )


def _addresses(variable: str, raw: str, *, single: bool = False) -> str:
    """Comma-separated e-mail addresses, each checked; CR and LF refused (header injection)."""
    example = "creditwatch@example.com" if single else "oncall@example.com,finance@example.com"
    if any(ch in raw for ch in "\r\n\0"):
        raise ConfigError(variable, "contains a line break (not allowed in an address)", example)
    pairs = getaddresses([raw])
    if not pairs or (single and len(pairs) > 1):
        raise ConfigError(variable, "is not one e-mail address", example)
    for display, address in pairs:
        try:
            parsed = Address(display_name=display, addr_spec=address)
        except (ValueError, IndexError):
            raise ConfigError(variable, f"{address!r} is not an e-mail address", example) from None
        if not parsed.username or not parsed.domain:
            raise ConfigError(variable, f"{address!r} is not an e-mail address", example)
    return ",".join(address for _, address in pairs)


def parse_smtp_url(raw: str) -> SmtpSettings:
    """``smtp://`` (STARTTLS), ``smtps://`` (TLS), ``?tls=off``, ``?verify=off``; AUTH when the
    URL has a user. Never echoes the URL (it may hold a password)."""
    variable = "CREDITWATCH_SMTP_URL"
    example = "smtp://alerts:app-password@smtp.example.com:587"
    try:
        parts = urlsplit(raw)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ConfigError(variable, "is not an smtp:// or smtps:// URL", example) from None
    if parts.scheme not in ("smtp", "smtps") or not host:
        raise ConfigError(variable, "is not an smtp:// or smtps:// URL", example)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"tls", "verify"}
    if unknown:
        raise ConfigError(variable, f"has unknown options {sorted(unknown)} (tls, verify)", example)
    security: SmtpSecurity = "ssl" if parts.scheme == "smtps" else "starttls"
    if options.get("tls") == "off":
        if parts.scheme == "smtps":
            raise ConfigError(variable, "smtps:// with tls=off contradicts itself", example)
        security = "none"
    elif options.get("tls") not in (None, "on"):
        raise ConfigError(variable, "tls= takes on or off", example)
    if options.get("verify") not in (None, "on", "off"):
        raise ConfigError(variable, "verify= takes on or off", example)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if password and security == "none" and host not in _LOOPBACK:
        raise ConfigError(
            variable,
            "sends a password without TLS to another machine; remove tls=off",
            example,
        )
    return SmtpSettings(
        host=host,
        port=port or (465 if security == "ssl" else 587),
        security=security,
        verify=options.get("verify") != "off",
        username=username,
        password=password,
    )


def _check_webhook_secret(secret: str) -> None:
    example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    if not secret.startswith("whsec_"):
        raise ConfigError(
            "CREDITWATCH_WEBHOOK_SECRET", "does not start with whsec_ (Standard Webhooks)", example
        )
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "CREDITWATCH_WEBHOOK_SECRET", "is not whsec_ followed by base64", example
        ) from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(
            "CREDITWATCH_WEBHOOK_SECRET",
            "holds a key shorter than 24 or longer than 64 bytes",
            example,
        )
