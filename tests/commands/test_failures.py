"""One line for every failure at the command edge, with its exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import CLI_KEY, exploding, run_cli

HINT = "set CREDITWATCH_LOG_LEVEL=DEBUG for the traceback"


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory with settings at INFO (the env fixture logs at DEBUG)."""
    monkeypatch.chdir(tmp_path)
    for name in ("ANTHROPIC_ADMIN_KEY", "CREDITWATCH_DATABASE_URL", "CREDITWATCH_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        f"ANTHROPIC_ADMIN_KEY={CLI_KEY}\n"
        "ANTHROPIC_BASE_URL=http://127.0.0.1:9\n"
        f"CREDITWATCH_DATABASE_URL=sqlite:///{tmp_path / 'cw.db'}\n"
    )
    return tmp_path


pytestmark = pytest.mark.usefixtures("restore_logging")


def test_an_unexpected_error_is_one_line_naming_its_class_and_exit_70(
    quiet_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback by default: the error's class, its first line, and how to see more."""
    code, out, err = run_cli(capsys, "once", transport=httpx.MockTransport(exploding))
    assert code == 70
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("creditwatch: unexpected error RuntimeError: boom while asking")
    assert err.rstrip().endswith(HINT)
    assert CLI_KEY not in err


def test_at_debug_the_traceback_comes_first_and_masked(
    quiet_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CREDITWATCH_LOG_LEVEL=DEBUG shows the traceback, then the same one line last."""
    monkeypatch.setenv("CREDITWATCH_LOG_LEVEL", "DEBUG")
    code, _, err = run_cli(capsys, "once", transport=httpx.MockTransport(exploding))
    assert code == 70
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("creditwatch: unexpected error RuntimeError")
    assert CLI_KEY not in err


def test_a_configuration_error_never_shows_a_traceback_even_at_debug(
    quiet_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliberate error says all there is to say."""
    monkeypatch.setenv("CREDITWATCH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CREDITWATCH_LOOKBACK", "forever")
    code, _, err = run_cli(capsys, "status")
    assert code == 78
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_sqlite_folder_that_cannot_be_made_names_the_variable(
    quiet_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database path under a file is a setting to fix: exit 78, not an unexpected error."""
    blocker = quiet_env / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CREDITWATCH_DATABASE_URL", f"sqlite:///{blocker}/cw.db")
    code, _, err = run_cli(capsys, "once")
    assert code == 78
    assert err.startswith(
        "creditwatch: configuration error: CREDITWATCH_DATABASE_URL: cannot create"
    )


def test_output_cut_short_by_a_pipe_is_quiet(quiet_env: Path) -> None:
    """`creditwatch check-config | head -0`: no traceback, no message, SIGPIPE's status."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "check-config"],
        cwd=quiet_env,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader leaves before the first line
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert err == b""
