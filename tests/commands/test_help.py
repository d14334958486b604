"""`creditwatch --help` lists every command without importing one (a fast start), and each
command's own flags appear when it is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.commands.main import CATALOG, build_parser, load_command, main

PROBE = """
import sys
from service.commands.main import main
try:
    main(["--help"])
except SystemExit as done:
    assert done.code == 0, done.code
heavy = sorted(m for m in ("sqlalchemy", "httpx", "apscheduler", "sqlmodel") if m in sys.modules)
commands = sorted(m for m in sys.modules if m.startswith("service.commands.") and
                  m not in ("service.commands.main", "service.commands.registry"))
print("HEAVY", heavy, "COMMANDS", commands, file=sys.stderr)
"""


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    for name, _, help_text in CATALOG:
        assert name in done.stdout
        assert help_text.split()[0] in done.stdout
    assert "HEAVY [] COMMANDS []" in done.stderr


def test_the_catalog_names_each_commands_own_module() -> None:
    assert [load_command(name).name for name, _, _ in CATALOG] == [n for n, _, _ in CATALOG]
    everything = build_parser()  # every command's flags, as before
    assert everything.parse_args(["status", "--json"]).json is True


def test_a_named_command_gets_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--env-file", "status", "status", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out
    assert "usage: creditwatch status" in out
    with pytest.raises(SystemExit) as refused:
        main(["nonsense"])
    assert refused.value.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
