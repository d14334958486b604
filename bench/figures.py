"""Where each benchmark keeps its figures: ``bench/results/<name>.json``, written the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def results_path(name: str) -> Path:
    """The file of the benchmark ``name`` (``ingest`` → ``bench/results/ingest.json``)."""
    return RESULTS_DIR / f"{name}.json"


def write_figures(path: Path, figures: dict[str, Any], *, said: str = "figures written to") -> None:
    """Write ``figures`` as indented JSON to ``path`` and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{said} {path}")
