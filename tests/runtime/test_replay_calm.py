"""Days of the simulator's workload, with a spike, through the real cycle once an hour: calm.

Calm means what a person on call would mean: the spike is alerted once, soon after it starts,
and resolved once when it ends; each budget threshold at most once in its period; the health
rules quiet while collection works; no day with a flood. (`make bench` runs a whole month.)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.admin_api.retry import RetryPolicy
from service.alerts.model import Alert
from service.runtime.cycle import Runtime
from service.settings import load_settings
from service.simulator import ManualClock, SimulatorServer, Spike, Workload, WorkloadSpec

KEY = "sk-ant-admin01-replay-calm"
START = datetime(2026, 10, 12, tzinfo=UTC)  # a Monday
SPIKE_START = datetime(2026, 10, 14, 13, tzinfo=UTC)
SPIKE = Spike(SPIKE_START, SPIKE_START + timedelta(hours=3), 6)


def test_four_days_with_a_spike_are_calm(tmp_path: Path) -> None:
    """One spike alert and one resolve; each threshold once; nothing from the health rules."""
    spec = WorkloadSpec(seed=5, start=START - timedelta(days=8), n_keys=4, spike=SPIKE)
    clock = ManualClock(START + timedelta(minutes=30))
    alerts: list[tuple[datetime, Alert]] = []
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as simulator:
        settings = load_settings(
            {
                "ANTHROPIC_ADMIN_KEY": KEY,
                "ANTHROPIC_BASE_URL": simulator.base_url,
                "CREDITWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'calm.db'}",
                "CREDITWATCH_BACKFILL_FROM": (START - timedelta(days=8)).isoformat(),
                "CREDITWATCH_MONTHLY_BUDGET": "1500",
                "CREDITWATCH_BUDGET_DAILY": "limit=120 period=day thresholds=80,100",
                "CREDITWATCH_SPIKE": "factor=3 min=5",
            },
            None,
            now=clock(),
        )
        with Runtime(settings, retry=RetryPolicy(max_retries=1, base_delay=0.01)) as runtime:
            while clock() < START + timedelta(days=4):
                alerts += [(clock(), a) for a in runtime.cycle(clock).alerts]
                clock.advance(timedelta(hours=1))
    spikes = [(at, a.kind) for at, a in alerts if a.identity.rule == "spike"]
    assert [kind for _, kind in spikes] == ["alert", "resolved"]
    first, last = spikes[0][0], spikes[1][0]
    assert SPIKE_START < first <= SPIKE_START + timedelta(hours=2), "alerted within two hours"
    assert SPIKE.end < last <= SPIKE.end + timedelta(hours=2), "resolved once it was over"
    budget_ids = Counter(a.dedup_id for _, a in alerts if a.identity.rule.startswith("budget:"))
    assert budget_ids, "the budgets were crossed"
    assert set(budget_ids.values()) == {1}
    assert not [a for _, a in alerts if a.identity.rule.startswith("health:")]
    # The spike day is the busiest: the spike and its resolve, the daily budget's 80% and
    # 100% (the spike pushed it over), the month's first threshold. Five events, five alerts.
    per_day = Counter(at.date() for at, _ in alerts)
    assert max(per_day.values()) <= 6, [(at, a.content.title) for at, a in alerts]
