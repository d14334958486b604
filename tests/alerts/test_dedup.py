"""The dedup decision, table by table: events once, the highest threshold, repeat and resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.alerts.dedup import Action, Decision, Memory, OpenCondition, decide
from service.alerts.model import Content, Finding, Identity

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = timedelta(hours=24)
CONTENT = Content(severity="warning", title="t", summary="s", rule_name="r")
GROUP = "budget:monthly/org/2026-11/spend"


def threshold(label: str, rank: int) -> Finding:
    identity = Identity("budget:monthly", "org", "2026-11", label)
    return Finding(identity, CONTENT, group=GROUP, rank=rank)


def condition(holds: bool, rule: str = "low_balance", scope: str = "org") -> Finding:
    return Finding(Identity(rule, scope, "", "$25.00"), CONTENT, persistent=True, holds=holds)


def opened(
    finding: Finding, *, episode: int = 1, notified: datetime = NOW - timedelta(hours=1)
) -> OpenCondition:
    return OpenCondition(finding.identity, episode, notified, 1, "t", "r")


def actions(decisions: list[Decision]) -> list[tuple[Action, str]]:
    return [(d.action, d.identity.threshold or d.identity.rule) for d in decisions]


@pytest.mark.parametrize(
    ("crossed", "sent", "top", "expected"),
    [
        # Several thresholds crossed at once: one alert names the highest.
        (
            [("50%", 50), ("80%", 80), ("100%", 100)],
            [],
            None,
            [("alert", "100%"), ("skip", "50%"), ("skip", "80%")],
        ),
        # Already sent: never again, whatever else happens.
        ([("50%", 50)], ["50%"], 50, [("skip", "50%")]),
        # A threshold added below one already alerted is never sent.
        ([("60%", 60), ("80%", 80)], ["80%"], 80, [("skip", "60%"), ("skip", "80%")]),
        # One added above the highest alerted but below spend is sent once.
        ([("80%", 80), ("90%", 90)], ["80%"], 80, [("skip", "80%"), ("alert", "90%")]),
        # Equal to the top (an absolute amount at the same dollars): covered.
        ([("$400.00", 80)], ["80%"], 80, [("skip", "$400.00")]),
    ],
)
def test_budget_thresholds(
    crossed: list[tuple[str, int]],
    sent: list[str],
    top: int | None,
    expected: list[tuple[Action, str]],
) -> None:
    """Which of a budget's crossed thresholds become an alert this cycle."""
    findings = [threshold(label, rank) for label, rank in crossed]
    memory = Memory(
        events_sent=frozenset(threshold(label, 0).identity.key for label in sent),
        group_top={GROUP: top} if top is not None else {},
    )
    decisions = decide(findings, memory, NOW, repeat=DAY)
    assert sorted(actions(decisions), key=lambda a: a[1]) == sorted(expected, key=lambda a: a[1])


def test_an_event_without_a_group_is_sent_once() -> None:
    """A reload blocked this month, an expiring lot: once per identity."""
    event = Finding(Identity("health:reload_blocked", "org", "2026-11"), CONTENT)
    assert actions(decide([event], Memory(), NOW, repeat=DAY)) == [
        ("alert", "health:reload_blocked")
    ]
    memory = Memory(events_sent=frozenset({event.identity.key}))
    assert actions(decide([event], memory, NOW, repeat=DAY)) == [("skip", "health:reload_blocked")]


@pytest.mark.parametrize(
    ("holds", "open_since", "repeat", "last_episode", "expected", "episode"),
    [
        (True, None, DAY, 0, "alert", 1),  # begins
        (True, None, DAY, 2, "alert", 3),  # returns after two episodes: a new alert
        (True, timedelta(hours=1), DAY, 1, "hold", 1),  # still holds, not yet time
        (True, DAY, DAY, 1, "remind", 1),  # still holds, a day later: a reminder
        (True, 30 * DAY, None, 1, "hold", 1),  # repeat 0: never reminded
        (False, timedelta(hours=1), DAY, 1, "resolve", 1),  # clears: one resolved notice
    ],
)
def test_condition_lifecycle(
    holds: bool,
    open_since: timedelta | None,
    repeat: timedelta | None,
    last_episode: int,
    expected: Action,
    episode: int,
) -> None:
    """Begin, hold, remind every repeat interval, resolve; a return is a new episode."""
    finding = condition(holds)
    memory = Memory(
        open_conditions=(
            {finding.identity.key: opened(finding, episode=episode, notified=NOW - open_since)}
            if open_since is not None
            else {}
        ),
        last_episode={finding.identity.key: last_episode} if last_episode else {},
    )
    (decision,) = decide([finding], memory, NOW, repeat=repeat)
    assert (decision.action, decision.episode) == (expected, episode)
    assert decision.dedup_id == f"{finding.identity.key}#{episode}"


def test_a_condition_that_never_held_says_nothing() -> None:
    """Holds False with nothing open: no decision at all."""
    assert decide([condition(False)], Memory(), NOW, repeat=DAY) == []


def test_an_enumerated_condition_that_disappears_resolves() -> None:
    """An unknown model the price book has learned is no longer reported: resolved."""
    gone = condition(True, rule="health:unknown_model", scope="model=claude-x")
    memory = Memory(open_conditions={gone.identity.key: opened(gone)})
    (decision,) = decide([], memory, NOW, repeat=DAY, enumerating=frozenset({gone.identity.rule}))
    assert decision.action == "resolve"
    assert decision.finding is None


def test_a_condition_whose_rule_was_edited_away_closes_without_a_notice() -> None:
    """Low balance changed from 25 to 50: the 25 episode is closed silently, 50 is new."""
    old = condition(True)
    new = Finding(Identity("low_balance", "org", "", "$50.00"), CONTENT, persistent=True)
    memory = Memory(open_conditions={old.identity.key: opened(old)})
    decisions = decide([new], memory, NOW, repeat=DAY)
    assert sorted((d.action, d.identity.threshold) for d in decisions) == [
        ("alert", "$50.00"),
        ("close", "$25.00"),
    ]
    assert not next(d for d in decisions if d.action == "close").notifies
