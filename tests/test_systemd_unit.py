"""The shipped systemd unit: systemd accepts it, and what it runs can start as a dynamic user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import outside_tool

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "creditwatch.service"
INSTALLED = "/opt/creditwatch/venv/bin/creditwatch"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def directives(unit: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit (comments and section headers skipped), in order."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        found.setdefault(key, []).append(value)
    return found


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """No error and no warning, with ExecStart pointing at an installed creditwatch."""
    analyze = outside_tool("systemd-analyze", "systemd")
    creditwatch = Path(sys.executable).parent / "creditwatch"
    unit = tmp_path / "creditwatch.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(creditwatch)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    complaint = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, check=False
    )
    assert "notifyy" in complaint.stderr, "verify would not notice a broken unit"


def test_the_service_never_opens_a_root_only_file() -> None:
    """Settings come through EnvironmentFile= (read by systemd), the key as a credential."""
    unit = directives(UNIT.read_text())
    assert unit["EnvironmentFile"] == ["/etc/creditwatch/creditwatch.env"]
    assert unit["LoadCredential"] == ["admin-key:/etc/creditwatch/admin-key"]
    assert "ANTHROPIC_ADMIN_KEY_FILE=%d/admin-key" in unit["Environment"]
    for command in unit["ExecStart"]:
        assert command.startswith(INSTALLED + " ")
        assert "--env-file" not in command
    # RestartPreventExitStatus= does not cover ExecStartPre=: a pre-check exiting 78 would be
    # restarted for ever. `run` checks the settings itself and exits 78 before READY=1.
    assert "ExecStartPre" not in unit
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["creditwatch"]
    assert unit["RestartPreventExitStatus"] == ["78"]
    assert unit["Type"] == ["notify"]


@pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv"
)
def test_what_the_unit_runs_starts_as_an_unprivileged_user() -> None:
    """check-config as an unprivileged user, with the unit's environment: exit 0.

    As systemd would run it: the settings as environment variables (the env file itself stays
    root's), the key in a credential file the service user can read, the state directory as the
    working directory and $STATE_DIRECTORY.
    """
    with tempfile.TemporaryDirectory(prefix="creditwatch-unit-") as folder:
        _check_config_as_nobody(Path(folder))


def _check_config_as_nobody(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key = credentials / "admin-key"
    key.write_text("sk-ant-admin01-unit-test-key-0123456789\n")
    for path in (tmp_path, state, credentials, key):
        os.chown(path, 65534, 65534)
    environment = {
        "PATH": "/usr/bin:/bin",
        "STATE_DIRECTORY": str(state),
        "CREDENTIALS_DIRECTORY": str(credentials),
        "ANTHROPIC_ADMIN_KEY_FILE": str(key),
        "CREDITWATCH_POLL_INTERVAL": "5m",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [*NOBODY, sys.executable, "-m", "service", "check-config"],
        cwd=state,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"sqlite:///{state}/creditwatch.db" in done.stdout
    assert "environment: ANTHROPIC_ADMIN_KEY_FILE" in done.stdout
    assert "sk-ant-admin01-unit" not in done.stdout
