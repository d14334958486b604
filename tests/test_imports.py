"""What a fresh process imports: the daemon's cycle and `creditwatch --help` stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Libraries the daemon's steady path does without: Alembic (and Mako) migrate a ledger only when
# it is behind head; click, rich and Pygments are httpx's command-line client; the simulator is
# for `demo` and the tests.
NOT_IN_THE_CYCLE = ("alembic", "mako", "click", "pygments", "service.simulator")
# What `creditwatch --help` lists without importing: every command's stack.
NOT_IN_HELP = ("sqlalchemy", "sqlmodel", "httpx", "pydantic", "alembic", "apscheduler", "rich")


def _imported(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages or modules) a fresh interpreter holds after ``code``."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        "held = {name for name, module in sys.modules.items() if module is not None}\n"
        f"names = {names!r}\n"
        "print(json.dumps(sorted(n for n in names if any(h == n or h.startswith(n + '.') "
        "for h in held))))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    found: list[str] = json.loads(ran.stdout)
    return found


@pytest.mark.parametrize("module", ["service.runtime.cycle", "service.commands.run"])
def test_the_daemon_imports_nothing_it_does_not_run(module: str) -> None:
    """The cycle and the daemon's command import no migration tool, CLI library or simulator."""
    assert _imported(f"import {module}", NOT_IN_THE_CYCLE) == []


def test_help_imports_no_command_stack() -> None:
    """`creditwatch --help` lists the commands without the database, HTTP or the scheduler."""
    code = (
        "import contextlib, io, sys\n"
        "from service.commands.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert _imported(code, NOT_IN_HELP) == []
