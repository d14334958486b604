"""A faithful Anthropic Admin API simulator over a synthetic, deterministic workload.

Used by the tests, ``creditwatch demo`` and the benchmarks. It shares no code with the client
(``service/anthropic.py`` and friends): two independent readings of the API.

    with SimulatorServer(Workload(WorkloadSpec(seed=1)), clock=ManualClock(now)) as sim:
        httpx.get(sim.base_url + "/v1/organizations/me", headers=...)
"""

from service.simulator.clock import ManualClock
from service.simulator.faults import Fault, Faults, MalformedKind
from service.simulator.server import RecordedRequest, SimulatorServer
from service.simulator.workload import (
    DEFAULT_MODELS,
    Spike,
    TokenCounts,
    Workload,
    WorkloadSpec,
)

__all__ = [
    "DEFAULT_MODELS",
    "Fault",
    "Faults",
    "MalformedKind",
    "ManualClock",
    "RecordedRequest",
    "SimulatorServer",
    "Spike",
    "TokenCounts",
    "Workload",
    "WorkloadSpec",
]
