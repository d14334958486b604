"""The dedup decision: which findings become notifications this cycle, and why. Pure.

DESIGN §2: an alert's identity is (rule, scope, period, threshold) and it is sent once. Of the
thresholds of one budget crossed in one cycle, one alert names the highest; a threshold at or
below one already alerted in the period is never sent. Conditions that persist are reminded every
``repeat`` while they hold and resolved once when they clear; a later return is a new episode
with its own dedup id. A condition whose rule no longer reports it is resolved when the rule
enumerates what holds (unknown models), and closed without a notice when the rule itself was
edited away (a changed low-balance amount is a new identity, not a recovery).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from service.alerts.model import Finding, Identity

Action = Literal["alert", "remind", "resolve", "close", "hold", "skip"]


@dataclass(frozen=True)
class OpenCondition:
    """A condition alerted and not yet resolved, as the store remembers it."""

    identity: Identity
    episode: int
    last_notified_at: datetime
    notices: int
    title: str
    rule_name: str


@dataclass(frozen=True)
class Memory:
    """What was decided before: events sent, the top of each group, conditions still open."""

    events_sent: frozenset[str] = frozenset()
    group_top: Mapping[str, int] = field(default_factory=dict)
    open_conditions: Mapping[str, OpenCondition] = field(default_factory=dict)
    last_episode: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    identity: Identity
    episode: int = 1
    finding: Finding | None = None
    open: OpenCondition | None = None

    @property
    def dedup_id(self) -> str:
        """Events are their identity; a condition's episodes each get their own id."""
        persistent = self.open is not None or (self.finding is not None and self.finding.persistent)
        return f"{self.identity.key}#{self.episode}" if persistent else self.identity.key

    @property
    def notifies(self) -> bool:
        return self.action in ("alert", "remind", "resolve")


def decide(
    findings: Iterable[Finding],
    memory: Memory,
    now: datetime,
    *,
    repeat: timedelta | None,
    enumerating: frozenset[str] = frozenset(),
) -> list[Decision]:
    """One decision per finding and per open condition, in a stable order."""
    findings = list(findings)
    decisions = _events([f for f in findings if not f.persistent], memory)
    decisions += _conditions([f for f in findings if f.persistent], memory, now, repeat)
    reported = {f.identity.key for f in findings if f.persistent}
    for key, open_condition in sorted(memory.open_conditions.items()):
        if key in reported:
            continue
        if open_condition.identity.rule in enumerating:
            decisions.append(
                Decision(
                    "resolve",
                    "the rule no longer reports it",
                    open_condition.identity,
                    open_condition.episode,
                    open=open_condition,
                )
            )
        else:
            decisions.append(
                Decision(
                    "close",
                    "its rule is no longer configured this way; closed without a notice",
                    open_condition.identity,
                    open_condition.episode,
                    open=open_condition,
                )
            )
    return decisions


def _events(events: list[Finding], memory: Memory) -> list[Decision]:
    decisions: list[Decision] = []
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in sorted(events, key=lambda f: f.identity):
        if finding.identity.key in memory.events_sent:
            decisions.append(Decision("skip", "already sent", finding.identity, finding=finding))
        elif finding.group is None or finding.rank is None:
            decisions.append(Decision("alert", "new event", finding.identity, finding=finding))
        elif finding.rank <= memory.group_top.get(finding.group, -1):
            decisions.append(
                Decision(
                    "skip",
                    "at or below a threshold already alerted in this period",
                    finding.identity,
                    finding=finding,
                )
            )
        else:
            grouped[finding.group].append(finding)
    for crossed in grouped.values():
        top = max(crossed, key=lambda f: (f.rank or 0, f.identity))
        decisions.append(
            Decision(
                "alert",
                f"the highest of {len(crossed)} threshold(s) crossed",
                top.identity,
                finding=top,
            )
        )
        decisions += [
            Decision(
                "skip",
                f"covered by the alert for {top.identity.threshold}",
                f.identity,
                finding=f,
            )
            for f in crossed
            if f is not top
        ]
    return decisions


def _conditions(
    conditions: list[Finding], memory: Memory, now: datetime, repeat: timedelta | None
) -> list[Decision]:
    decisions: list[Decision] = []
    for finding in sorted(conditions, key=lambda f: f.identity):
        key = finding.identity.key
        open_condition = memory.open_conditions.get(key)
        if finding.holds and open_condition is None:
            episode = memory.last_episode.get(key, 0) + 1
            reason = "began" if episode == 1 else f"returned (episode {episode})"
            decisions.append(Decision("alert", reason, finding.identity, episode, finding))
        elif finding.holds and open_condition is not None:
            due = repeat is not None and now - open_condition.last_notified_at >= repeat
            decisions.append(
                Decision(
                    "remind" if due else "hold",
                    "still holds, repeat interval passed" if due else "still holds",
                    finding.identity,
                    open_condition.episode,
                    finding,
                    open_condition,
                )
            )
        elif open_condition is not None:
            decisions.append(
                Decision(
                    "resolve",
                    "cleared",
                    finding.identity,
                    open_condition.episode,
                    finding,
                    open_condition,
                )
            )
    return decisions
