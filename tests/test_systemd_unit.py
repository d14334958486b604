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


def test_the_service_reads_its_settings_and_key_the_way_a_reload_needs() -> None:
    """The env file is read by creditwatch itself (so SIGHUP sees edits), the key as a credential.

    EnvironmentFile= would be read by systemd at start only, and the process environment wins
    over --env-file: every edit a reload re-reads would be shadowed by the start-time copy.
    """
    unit = directives(UNIT.read_text())
    assert "EnvironmentFile" not in unit
    assert unit["ExecStart"] == [f"{INSTALLED} --env-file /etc/creditwatch/creditwatch.env run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["SupplementaryGroups"] == ["creditwatch-config"]
    assert unit["LoadCredential"] == ["admin-key:/etc/creditwatch/admin-key"]
    assert "ANTHROPIC_ADMIN_KEY_FILE=%d/admin-key" in unit["Environment"]
    # RestartPreventExitStatus= does not cover ExecStartPre=: a pre-check exiting 78 would be
    # restarted for ever. `run` checks the settings itself and exits 78 before READY=1.
    assert "ExecStartPre" not in unit
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["creditwatch"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["78"]
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert "WatchdogSec" in unit


def test_every_hardening_directive_has_its_reason_beside_it() -> None:
    """A directive after the [Service] header is preceded by a comment (its own or its group's)."""
    lines = UNIT.read_text().split("[Service]", 1)[1].split("[Install]", 1)[0].splitlines()
    previous = ""
    for line in lines:
        if "=" in line and not line.startswith("#"):
            assert previous.startswith("#") or "=" in previous, f"no reason given for {line}"
        previous = line if line.strip() else ""


# The figure `systemd-analyze security --offline=true` gives the shipped unit. What remains is
# what a networked service cannot give up (README "Running in production" lists it).
EXPOSURE = "1.1"


def test_systemd_analyze_security_rates_the_unit_at_the_pinned_figure(tmp_path: Path) -> None:
    analyze = outside_tool("systemd-analyze", "systemd")
    unit = tmp_path / "creditwatch.service"
    unit.write_text(UNIT.read_text())
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    overall = [line for line in done.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, done.stdout + done.stderr
    figure = overall[0].split(":")[-1].split()[0]
    assert figure == EXPOSURE, overall[0]
    assert float(figure) <= 1.5
    # What still costs exposure is exactly what a networked service must keep.
    open_items = sorted(
        line.split()[1].split("=")[0]
        for line in done.stdout.splitlines()
        if line.startswith("\u2717")
    )
    assert open_items == sorted(
        [
            "DeviceAllow",
            "IPAddressDeny",
            "PrivateNetwork",
            "ProcSubset",
            "RestrictAddressFamilies",
            "RestrictAddressFamilies",
            "RootDirectory",
            "SupplementaryGroups",
        ]
    ), open_items


@pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv"
)
def test_what_the_unit_runs_starts_as_an_unprivileged_user() -> None:
    """check-config as an unprivileged user in the env file's group, as the unit runs it: exit 0.

    As systemd would run it: the env file 0640 root:<group> read through --env-file by a process
    whose only extra group is that one, the key in a credential file the service user can read,
    the state directory as the working directory and $STATE_DIRECTORY. Without the group the
    same command cannot read the file, and says so in one line with exit 78.
    """
    with tempfile.TemporaryDirectory(prefix="creditwatch-unit-") as folder:
        _check_config_as_nobody(Path(folder))


GROUP = 64999  # stands for SupplementaryGroups=creditwatch-config


def _check_config_as_nobody(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key = credentials / "admin-key"
    key.write_text("sk-ant-admin01-unit-test-key-0123456789\n")
    for path in (tmp_path, state, credentials, key):
        os.chown(path, 65534, 65534)
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o750)
    os.chown(etc, 0, GROUP)
    env_file = etc / "creditwatch.env"
    env_file.write_text("CREDITWATCH_POLL_INTERVAL=7m\nCREDITWATCH_LOW_BALANCE=25\n")
    os.chown(env_file, 0, GROUP)
    env_file.chmod(0o640)
    environment = {
        "PATH": "/usr/bin:/bin",
        "STATE_DIRECTORY": str(state),
        "CREDENTIALS_DIRECTORY": str(credentials),
        "ANTHROPIC_ADMIN_KEY_FILE": str(key),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "service", "--env-file", str(env_file), "check-config"]
    as_member = ("setpriv", "--reuid=65534", "--regid=65534", f"--groups={GROUP}")
    done = subprocess.run(
        [*as_member, *command],
        cwd=state,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"sqlite:///{state}/creditwatch.db" in done.stdout
    assert "environment: ANTHROPIC_ADMIN_KEY_FILE" in done.stdout
    assert "7m" in done.stdout or "7 min" in done.stdout, done.stdout
    assert "sk-ant-admin01-unit" not in done.stdout
    outsider = subprocess.run(
        [*NOBODY, *command], cwd=state, env=environment, capture_output=True, text=True, check=False
    )
    assert outsider.returncode == 78, outsider.stderr
    assert len(outsider.stderr.strip().splitlines()) == 1, outsider.stderr
    assert "Traceback" not in outsider.stderr
