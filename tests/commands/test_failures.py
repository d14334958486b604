"""One line for every failure at the command edge, with its exit status."""

from __future__ import annotations

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
