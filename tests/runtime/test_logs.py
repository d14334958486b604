"""Logging: one line per event, every secret masked, in messages and exception text alike."""

from __future__ import annotations

import json
import logging

import pytest

from service.runtime.logs import SecretMasker, configure_logging

SECRET = "sk-ant-admin01-very-secret-key-0123456789"


pytestmark = pytest.mark.usefixtures("restore_logging")


def _fail_with_the_secret() -> None:
    raise ValueError(f"the server echoed {SECRET} back")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exception_text_is_masked(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """A secret inside an exception's message and traceback never reaches stderr."""
    configure_logging("DEBUG", fmt, [SECRET])
    try:
        _fail_with_the_secret()
    except ValueError:
        logging.getLogger("creditwatch.test").exception("failed with %s", SECRET)
    err = capsys.readouterr().err
    assert SECRET not in err
    assert SECRET[4:20] not in err
    assert "sk-a…(masked)" in err
    assert "Traceback" in err
    if fmt == "json":
        entry = json.loads(err)  # one object on one line, the traceback inside it
        assert SECRET not in entry["exc"]


def test_a_password_in_any_url_is_masked() -> None:
    """A URL password the settings did not know (a library's message) is hidden too."""
    mask = SecretMasker([])
    assert mask("connect postgresql://cw:pa55@db/cw failed") == (
        "connect postgresql://cw:***@db/cw failed"
    )


def test_short_strings_are_not_masked_by_value() -> None:
    """A four-character password would mangle ordinary words; URLs still hide it."""
    mask = SecretMasker(["pass"])
    assert mask("password passed") == "password passed"


def test_reconfiguring_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """A second configure_logging (SIGHUP) applies the new level, format and secrets."""
    configure_logging("INFO", "text", [])
    configure_logging("WARNING", "json", [SECRET])
    log = logging.getLogger("creditwatch.test")
    log.info("hidden at WARNING")
    log.warning("key %s", SECRET)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(logging.getLogger().handlers) == 1
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "key sk-a…(masked)"
