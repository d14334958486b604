"""Installed the way users install it: a wheel in a fresh venv, run from another directory.

The checkout is not on the path: the wheel must carry the migrations and the price book. Every
command a user starts with must exit 0 and never print a traceback. ``pipx install`` of the
checkout is the same check through a build from source.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "sk-ant-admin01-simulator"  # python -m service.simulator's default key
# One worker runs the module (`--dist loadfile`), building and installing once.
pytestmark = pytest.mark.install
STEP_TIMEOUT = 600
SKIPPED = (".venv", ".git", "build", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache",
           ".hypothesis", "__pycache__", "*.db")  # fmt: skip


@dataclass(frozen=True)
class Install:
    bin: Path
    work: Path
    base_url: str

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``creditwatch ARGS`` from the work directory, as a user's shell would run it."""
        done = subprocess.run(
            [str(self.bin / "creditwatch"), *args],
            cwd=self.work,
            env=env or self.environment(),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        print(f"$ creditwatch {' '.join(args)}  -> exit {done.returncode}")  # noqa: T201
        print(done.stdout[-2000:], done.stderr[-2000:], sep="", end="")  # noqa: T201
        return done

    def environment(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.work),
            "ANTHROPIC_ADMIN_KEY": ADMIN_KEY,
            "ANTHROPIC_BASE_URL": self.base_url,
            "CREDITWATCH_DATABASE_URL": f"sqlite:///{self.work / 'creditwatch.db'}",
            "CREDITWATCH_STARTING_BALANCE": "500",
            "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-20T00:00:00Z",
            "CREDITWATCH_BACKFILL_FROM": "2026-11-20T00:00:00Z",
        }


def _check(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout: building in place would race another worker's build/ folder."""
    copy = tmp_path_factory.mktemp("checkout") / "creditwatch"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*SKIPPED))
    return copy


@pytest.fixture(scope="module")
def wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout, as `pip wheel .` builds it."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(dist),
            str(checkout),
        ],
        check=True,
        timeout=STEP_TIMEOUT,
    )
    (built,) = dist.glob("creditwatch-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """A fresh venv with only the wheel and its dependencies, and the simulator it ships."""
    root = tmp_path_factory.mktemp("user")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", str(wheel)], check=True, timeout=STEP_TIMEOUT
    )
    work = root / "elsewhere"
    work.mkdir()
    simulator = subprocess.Popen(
        [str(bin_dir / "python"), "-m", "service.simulator", "--port", "0"],
        cwd=work,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdout is not None
    banner = simulator.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+", banner)
    assert found, banner
    try:
        yield Install(bin_dir, work, found.group(0))
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        simulator.stdout.close()


def test_the_wheel_carries_the_migrations_and_the_price_book(wheel: Path) -> None:
    """Inside the wheel: service/migrations (env.py, versions) and service/pricing/prices.toml."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "service/migrations/env.py" in names
    assert "service/migrations/script.py.mako" in names
    assert any(n.startswith("service/migrations/versions/0001_") for n in names)
    assert "service/pricing/prices.toml" in names
    assert not any(n.startswith("alembic/") for n in names), "would shadow the Alembic library"


def test_every_first_command_works_from_another_directory(installed: Install) -> None:
    """db upgrade, once against the simulator, status --json, report, and the rest: exit 0."""
    assert _check(installed.run("--version")).strip() == f"creditwatch {version('creditwatch')}"
    _check(installed.run("check-config"))
    assert "newest schema" in _check(installed.run("db", "upgrade"))
    assert _check(installed.run("once")).startswith("collected ")
    status = json.loads(_check(installed.run("status", "--json")))
    assert status["balance_usd"] is not None
    assert status["last_collected_at"] is not None
    assert "total" in _check(installed.run("report", "--by", "model"))
    _check(installed.run("credits", "list"))
    _check(installed.run("simulate", "--reload-threshold", "50", "--reload-to", "200"))


def test_a_bad_value_in_the_installed_command_is_one_line(installed: Install) -> None:
    """Exit 78 with the variable's name, no traceback, from the installed entry point."""
    env = {**installed.environment(), "CREDITWATCH_POLL_INTERVAL": "often"}
    done = installed.run("once", env=env)
    assert done.returncode == 78
    assert done.stderr.count("\n") == 1
    assert "CREDITWATCH_POLL_INTERVAL" in done.stderr
    assert "Traceback" not in done.stderr


def test_pipx_install_of_the_checkout_runs(
    installed: Install, checkout: Path, tmp_path: Path
) -> None:
    """`pipx install <checkout>` gives a creditwatch that migrates and reads a ledger."""
    pipx = str(Path(sys.executable).parent / "pipx")  # a dev dependency, beside pytest
    home = tmp_path / "pipx"
    env = {
        **installed.environment(),
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(home / "bin"),
        "PIPX_MAN_DIR": str(home / "man"),
        "PATH": f"{home / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "CREDITWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'pipx.db'}",
    }
    subprocess.run(
        [pipx, "install", "--quiet", str(checkout)], env=env, check=True, timeout=STEP_TIMEOUT
    )
    pipx_install = Install(home / "bin", installed.work, installed.base_url)
    _check(pipx_install.run("db", "upgrade", env=env))
    _check(pipx_install.run("once", env=env))
    _check(pipx_install.run("status", env=env))
