"""Logging: one line per event, every secret masked, in messages and exception text alike."""

from __future__ import annotations

import json
import logging
import re
import shlex

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


def test_a_text_line_is_logfmt_with_the_events_fields(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ts, level, logger, msg, then the fields; values with spaces, quotes or newlines quoted
    and escaped onto one line; a secret inside a field masked."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_logging("INFO", "text", [SECRET])
    logging.getLogger("creditwatch.test").info(
        "cycle done",
        extra={"fields": {"event": "cycle", "rows": 12, "note": 'a "b"\nc', "key": SECRET}},
    )
    (line,) = capsys.readouterr().err.splitlines()
    ts, rest = line.split(" ", 1)
    assert re.fullmatch(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts)
    assert rest == (
        'level=INFO logger=creditwatch.test msg="cycle done" event=cycle rows=12 '
        'note="a \\"b\\"\\nc" key="sk-a…(masked)"'
    )
    # shlex reads the quoting back as a logfmt reader would: every pair intact.
    pairs = dict(part.split("=", 1) for part in shlex.split(rest))
    assert pairs["note"] == 'a "b"\\nc'
    assert pairs["msg"] == "cycle done"


def test_under_journald_no_timestamp_and_a_syslog_priority(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """JOURNAL_STREAM set: each line starts with <priority> (warning 4, error 3, info 6), with
    no ts= (the journal stamps it); JSON too, its object after the prefix."""
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    configure_logging("INFO", "text", [])
    log = logging.getLogger("creditwatch.test")
    log.info("one")
    log.warning("two")
    log.error("three")
    lines = capsys.readouterr().err.splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>"]
    assert not any("ts=" in line for line in lines)
    configure_logging("INFO", "json", [])
    log.warning("four", extra={"fields": {"event": "reload"}})
    line = capsys.readouterr().err
    assert line.startswith("<4>{")
    entry = json.loads(line[3:])
    assert "ts" not in entry
    assert (entry["level"], entry["message"], entry["event"]) == ("WARNING", "four", "reload")


def test_a_traceback_is_one_logfmt_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At DEBUG the traceback rides along as exc=, escaped: the journal still sees one line."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_logging("DEBUG", "text", [])
    try:
        _fail_with_the_secret()
    except ValueError:
        logging.getLogger("creditwatch.test").debug("failed", exc_info=True)
    (line,) = capsys.readouterr().err.splitlines()
    assert 'exc="Traceback (most recent call last):\\n' in line
