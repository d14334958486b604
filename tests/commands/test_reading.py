"""Reading commands show the ledger as booked, never migrate it, never wait for the write lock."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import text

from service.store.engine import LEDGER_LOCK_KEY, make_engine
from service.store.migrations import alembic_config, head_revision
from tests.helpers import run_cli

# A deadlock guard, not a speed assertion: before the fix `status` waited out the 30 s busy
# timeout (SQLite) or forever (PostgreSQL) behind a booking.
HANG = 60.0


def test_status_shows_the_ledgers_starting_balance_not_the_shells(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell with other starting-balance settings still sees what the ledger was booked with."""
    assert run_cli(capsys, "once")[0] == 0
    monkeypatch.setenv("CREDITWATCH_STARTING_BALANCE", "1")
    monkeypatch.setenv("CREDITWATCH_STARTING_BALANCE_AT", "2026-11-08T00:00:00Z")
    code, out, err = run_cli(capsys, "status", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["starting_balance_usd"] == "5000.00"
    assert shown["starting_balance_at"] == "2026-11-05T00:00:00Z"


def test_reading_commands_do_not_migrate_an_old_schema(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    """A database behind head is reported with the command to run, and left as it was."""
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0002")
    for args in (("status",), ("report",), ("credits", "list"), ("simulate",)):
        code, _, err = run_cli(capsys, *args)
        assert code == 1
        assert err.strip().splitlines()[-1] == (
            "creditwatch: the database is at revision 0002, this creditwatch needs "
            f"{head_revision()}: run `creditwatch db upgrade`"
        )
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0002"
    engine.dispose()
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    assert run_cli(capsys, "status")[0] == 0


def test_status_answers_while_a_booking_holds_the_write_lock(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    """`status` beside a long booking answers from the last commit instead of waiting for it."""
    assert run_cli(capsys, "once")[0] == 0
    engine = make_engine(db_url)
    with engine.connect() as booking:
        # The same lock a booking takes: BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL.
        if engine.dialect.name == "postgresql":
            booking.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK_KEY})
        else:
            booking.execute(text("UPDATE collection_state SET last_error = 'booking'"))
        answers: list[tuple[int, str, str]] = []
        reader = threading.Thread(
            target=lambda: answers.append(run_cli(capsys, "status", "--json")), daemon=True
        )
        reader.start()
        reader.join(HANG)
        still_waiting = reader.is_alive()
        booking.rollback()
    reader.join(HANG)
    engine.dispose()
    assert not still_waiting, "status waited for the booking's lock"
    code, out, err = answers[0]
    assert code == 0, err
    assert json.loads(out)["last_error"] is None, "it reads the last commit, not the booking"


def test_a_database_migrated_by_a_newer_creditwatch_is_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    """An unknown revision says to upgrade creditwatch: exit 1, not an unexpected error."""
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    for args in (("status",), ("db", "upgrade"), ("once",)):
        code, _, err = run_cli(capsys, *args)
        assert code == 1, err
        line = err.strip().splitlines()[-1]
        assert "0099" in line
        assert "a newer creditwatch migrated it; upgrade creditwatch" in line


def test_reading_commands_leave_the_sqlite_file_as_it_was(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    """Not a byte changes: no journal-mode switch, no write, whatever the command reads."""
    if not db_url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL reads run READ ONLY; this is about the SQLite file")
    assert run_cli(capsys, "once")[0] == 0
    path = Path(db_url.removeprefix("sqlite:///"))
    engine = make_engine(db_url)
    with engine.connect() as connection:
        connection.exec_driver_sql("COMMIT")  # the writer's BEGIN IMMEDIATE
        connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
    engine.dispose()
    before = path.read_bytes()
    for args in (("status",), ("report",), ("credits", "list"), ("simulate",), ("alerts",)):
        code, _, err = run_cli(capsys, *args)
        assert code == 0, (args, err)
    assert path.read_bytes() == before
