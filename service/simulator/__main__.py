"""``python -m service.simulator``: run the simulated Admin API in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from service.simulator.server import SimulatorServer
from service.simulator.workload import Workload, WorkloadSpec


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m service.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keys", type=int, default=12, help="number of API keys")
    parser.add_argument("--workspaces", type=int, default=3, help="named workspaces")
    parser.add_argument("--hourly-spend", type=Decimal, default=Decimal(10), help="USD")
    parser.add_argument("--start", help="RFC 3339 start of usage (default: 40 days ago)")
    parser.add_argument("--admin-key", default="sk-ant-admin01-simulator")
    parser.add_argument("--forbidden-key", default=None)
    args = parser.parse_args(argv)
    if args.start:
        start = datetime.fromisoformat(args.start).astimezone(UTC)
    else:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=40)
    spec = WorkloadSpec(
        seed=args.seed,
        start=start,
        n_workspaces=args.workspaces,
        n_keys=args.keys,
        hourly_spend_usd=args.hourly_spend,
    )
    server = SimulatorServer(
        Workload(spec),
        admin_key=args.admin_key,
        forbidden_key=args.forbidden_key,
        host=args.host,
        port=args.port,
    )
    with server:
        banner = f"Admin API simulator on {server.base_url}, usage from {start:%Y-%m-%d}"
        print(f"{banner}; Ctrl-C stops", flush=True)  # noqa: T201
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
