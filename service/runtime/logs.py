"""Logging set-up: one line per event on stderr, logfmt (``key=value``) or JSON, every
configured secret masked; under journald no timestamp (the journal keeps its own) and a
syslog priority prefix.

Masking happens on the formatted output, so it covers the message, its arguments and any
exception text alike. ``configure_logging`` may run again (SIGHUP): it replaces the handler,
so a new level, format or secret takes effect at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from service.settings.grammar import mask_secret

# Secrets shorter than this are not masked by value (they would mangle ordinary words); the
# URL pattern below still hides a short password written into a URL.
MIN_MASKED_LENGTH = 6
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*):[^\s@/]+@")
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "apscheduler.executors.default",
    "apscheduler.scheduler",
    "alembic",
)


class SecretMasker:
    """Replaces each known secret with its masked form, and any password inside a URL."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_MASKED_LENGTH}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, mask_secret(secret))
        return _URL_PASSWORD.sub(r"\g<scheme>:***@", text)


# syslog priorities, which journald reads from a "<N>" prefix (SyslogLevelPrefix=yes).
_SYSLOG_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
_BARE = re.compile(r"[A-Za-z0-9_.:/@+%-]+")


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when it can be, else quoted with escapes."""
    text = "" if value is None else str(value)
    if _BARE.fullmatch(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("\r", "\\r").replace("\t", "\\t") + '"'


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The event's own key=value fields: ``log.info(..., extra={"fields": {...}})``."""
    found = getattr(record, "fields", None)
    return dict(found) if isinstance(found, dict) else {}


class MaskingTextFormatter(logging.Formatter):
    """One logfmt line per event: ``ts= level= logger= msg=`` and the event's fields.

    Under journald (``JOURNAL_STREAM`` set) the timestamp is left to the journal and the line
    starts with the syslog priority, so ``journalctl -p warning`` works.
    """

    def __init__(self, mask: SecretMasker, *, journald: bool = False) -> None:
        super().__init__()
        self.mask = mask
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        parts = [] if self.journald else [f"ts={_timestamp(record)}"]
        parts += [f"level={record.levelname}", f"logger={record.name}"]
        # Masked before quoting (a quoted secret would no longer match) and after (the fields).
        parts.append(f"msg={logfmt_value(self.mask(record.getMessage()))}")
        parts += [
            f"{key}={logfmt_value(self.mask(str(value)))}"
            for key, value in fields_of(record).items()
        ]
        if record.exc_info:
            exc = self.mask(self.formatException(record.exc_info))
            parts.append(f"exc={logfmt_value(exc)}")
        line = self.mask(" ".join(parts))
        if self.journald:
            return f"<{_SYSLOG_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


class MaskingJsonFormatter(logging.Formatter):
    """One JSON object per line: ts (not under journald, which keeps its own), level, logger,
    message, the event's fields (and exc at DEBUG tracebacks)."""

    def __init__(self, mask: SecretMasker, *, journald: bool = False) -> None:
        super().__init__()
        self.mask = mask
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {} if self.journald else {"ts": _timestamp(record)}
        entry |= {
            "level": record.levelname,
            "logger": record.name,
            "message": self.mask(record.getMessage()),
        }
        for key, value in fields_of(record).items():
            entry.setdefault(key, self.mask(value) if isinstance(value, str) else value)
        if record.exc_info:
            entry["exc"] = self.mask(self.formatException(record.exc_info))
        line = json.dumps(entry, ensure_ascii=False, default=str)
        if self.journald:
            # journald strips the prefix: the journal's MESSAGE is the JSON object alone.
            return f"<{_SYSLOG_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def configure_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Route all logs to stderr in ``fmt`` (``text`` or ``json``) at ``level``, secrets masked."""
    mask = SecretMasker(secrets)
    handler = logging.StreamHandler(sys.stderr)
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    if fmt == "json":
        handler.setFormatter(MaskingJsonFormatter(mask, journald=journald))
    else:
        handler.setFormatter(MaskingTextFormatter(mask, journald=journald))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO and httpcore headers at DEBUG: webhook URLs and the
    # x-api-key header are secrets, so these stay at WARNING whatever the level. (Alembic
    # announces its migration context, and APScheduler every job it adds, at INFO on every
    # start: noise, not news.)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
