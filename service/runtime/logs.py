"""Logging set-up: text or JSON lines on stderr, every configured secret masked.

Masking happens on the formatted output, so it covers the message, its arguments and any
exception text alike. ``configure_logging`` may run again (SIGHUP): it replaces the handler,
so a new level, format or secret takes effect at once.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from service.settings.grammar import mask_secret

# Secrets shorter than this are not masked by value (they would mangle ordinary words); the
# URL pattern below still hides a short password written into a URL.
MIN_MASKED_LENGTH = 6
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*):[^\s@/]+@")
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler.executors.default", "alembic")


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


class MaskingTextFormatter(logging.Formatter):
    def __init__(self, mask: SecretMasker, fmt: str) -> None:
        super().__init__(fmt)
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


class MaskingJsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (and exc at DEBUG tracebacks)."""

    def __init__(self, mask: SecretMasker) -> None:
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": self.mask(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = self.mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Route all logs to stderr in ``fmt`` (``text`` or ``json``) at ``level``, secrets masked."""
    mask = SecretMasker(secrets)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(MaskingJsonFormatter(mask))
    else:
        handler.setFormatter(
            MaskingTextFormatter(mask, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO and httpcore headers at DEBUG: webhook URLs and the
    # x-api-key header are secrets, so these stay at WARNING whatever the level. (Alembic
    # announces its migration context at INFO on every start: noise, not news.)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
