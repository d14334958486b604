"""`make bench`: how long `creditwatch --help` takes, against a bare interpreter's start.

The installed entry point in this venv, run as a fresh process (best of 7), beside
``python -c pass`` of the same interpreter measured in the same run: the floor no Python
command can beat. Figures are printed and written to ``bench/results/startup.json``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.figures import results_path, write_figures

RESULTS = results_path("startup")
ENTRY = Path(sys.executable).parent / "creditwatch"
RUNS = 7


def best_of(command: list[str]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        began = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd="/")  # noqa: S603
        best = min(best, time.perf_counter() - began)
    return best


def main() -> int:
    help_seconds = best_of([str(ENTRY), "--help"])
    status_help = best_of([str(ENTRY), "status", "--help"])
    floor = best_of([sys.executable, "-c", "pass"])
    figures = {
        "help_seconds": round(help_seconds, 3),
        "status_help_seconds": round(status_help, 3),
        "floor_seconds": round(floor, 3),
        "help_vs_floor": round(help_seconds / floor, 1),
    }
    print(
        f"creditwatch --help: {help_seconds * 1000:.0f} ms, status --help "
        f"{status_help * 1000:.0f} ms (python -c pass: {floor * 1000:.0f} ms)"
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
