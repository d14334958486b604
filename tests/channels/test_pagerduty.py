"""The PagerDuty channel against a real HTTP receiver on 127.0.0.1: the Events API v2 trigger and
resolve events, PagerDuty's answers classified, and the routing key kept out of every message."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from service.channels.base import ChannelContext
from service.channels.pagerduty import SUMMARY_LIMIT, PagerDutyChannel
from service.errors import DeliveryError
from service.render import wording
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

ROUTING_KEY = "R0UT1NGKEYsecret0123456789ABCDEF"
ACCEPTED = Answer(
    202,
    json.dumps(
        {"status": "success", "message": "Event processed", "dedup_key": "budget:monthly"}
    ).encode(),
    {"content-type": "application/json"},
)


def make_channel(http: httpx.Client, url: str) -> PagerDutyChannel:
    spec = ChannelSpec("oncall", "pagerduty", ROUTING_KEY, "CREDITWATCH_CHANNEL_ONCALL")
    settings = ChannelSettings(channels=(spec,), pagerduty_url=url)
    return PagerDutyChannel(spec, ChannelContext(http, settings))


@pytest.fixture(scope="module")
def events_api() -> Iterator[Receiver]:
    # One server for the module: stopping a Receiver takes its half-second poll interval.
    with Receiver(default=ACCEPTED) as running:
        yield running


@pytest.fixture
def receiver(events_api: Receiver) -> Receiver:
    """The module's receiver with no requests recorded yet (each test consumes its script)."""
    events_api.received.clear()
    return events_api


@pytest.fixture
def channel(receiver: Receiver, http: httpx.Client) -> PagerDutyChannel:
    return make_channel(http, f"{receiver.url}/v2/enqueue")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_alert_triggers_an_event_keyed_by_the_dedup_id(
    receiver: Receiver, channel: PagerDutyChannel
) -> None:
    """An alert is a trigger event whose dedup_key is the alert's dedup id, worded as elsewhere."""
    alert = sample_alert_view()
    channel.send(alert)
    [request] = receiver.received
    event = request.json()
    assert request.path == "/v2/enqueue"
    assert request.headers["content-type"] == "application/json"
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == alert.dedup_id
    assert event["client"] == "creditwatch"
    payload = event["payload"]
    assert payload["summary"] == wording.headline(alert)
    assert payload["source"] == "creditwatch"
    assert payload["severity"] == "warning"
    assert payload["timestamp"] == "2026-11-20T14:05:00Z"
    assert payload["component"] == alert.rule
    assert payload["group"] == alert.scope
    assert payload["class"] == alert.rule_name
    details = payload["custom_details"]
    assert details["summary"] == alert.summary
    assert details["facts"] == {f.label: f.value for f in wording.facts(alert)}
    assert details["drivers"] == [wording.driver_line(d) for d in alert.drivers]
    assert details["freshness"] == wording.freshness(alert)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("warning", "warning"), ("info", "info")],
)
def test_severity_maps_to_pagerduty_severity(
    receiver: Receiver, channel: PagerDutyChannel, severity: str, expected: str
) -> None:
    """Each creditwatch severity becomes the PD-CEF severity of the same name."""
    channel.send(sample_alert_view(severity=severity))
    assert receiver.received[0].json()["payload"]["severity"] == expected


def test_reminder_triggers_on_the_same_dedup_key(
    receiver: Receiver, channel: PagerDutyChannel
) -> None:
    """A reminder is another trigger for the alert PagerDuty already holds, not a new alert."""
    reminder = sample_alert_view(kind="reminder", notice=2)
    channel.send(reminder)
    event = receiver.received[0].json()
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == reminder.dedup_id
    assert event["payload"]["summary"].startswith("Reminder: ")


def test_summary_is_clipped_to_pagerduty_limit(
    receiver: Receiver, channel: PagerDutyChannel
) -> None:
    """A headline longer than 1024 characters is cut to exactly 1024, ending in an ellipsis."""
    long_title = dataclasses.replace(sample_alert_view(), title="x" * 3000)
    channel.send(long_title)
    summary = receiver.received[0].json()["payload"]["summary"]
    assert len(summary) == SUMMARY_LIMIT
    assert summary.endswith("x…")


def test_routing_key_travels_in_the_body_only(
    receiver: Receiver, channel: PagerDutyChannel
) -> None:
    """The routing key is the body's routing_key field and appears nowhere else in the request."""
    channel.send(sample_alert_view())
    [request] = receiver.received
    assert ROUTING_KEY not in request.path
    assert not any(ROUTING_KEY in value for value in request.headers.values())
    assert request.body.decode().count(ROUTING_KEY) == 1


def test_resolved_notice_resolves_the_alert(receiver: Receiver, channel: PagerDutyChannel) -> None:
    """The resolved notice is a resolve event for the alert's dedup key and nothing more."""
    resolved = sample_alert_view(kind="resolved", notice=2)
    channel.send(resolved)
    assert receiver.received[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": resolved.dedup_id,
    }


def test_accepted_event_is_sent(channel: PagerDutyChannel) -> None:
    """A 202 with PagerDuty's success body is a delivery reporting its message and dedup key."""
    sent = channel.send(sample_alert_view())
    assert sent.status == "202"
    assert sent.detail == "Event processed (dedup_key budget:monthly)"


def test_invalid_event_is_permanent_and_says_why(
    receiver: Receiver, channel: PagerDutyChannel
) -> None:
    """A 400 is permanent and carries PagerDuty's message and errors, never the routing key."""
    body = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [f"'routing_key' {ROUTING_KEY} is unknown"],
    }
    receiver.script(Answer(400, json.dumps(body).encode(), {"content-type": "application/json"}))
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    error = caught.value
    assert error.permanent
    assert error.status == "400"
    assert "Event object is invalid" in str(error)
    assert "'routing_key' (routing key) is unknown" in str(error)
    assert ROUTING_KEY not in str(error)
    assert str(error).startswith("pagerduty oncall: HTTP 400")


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({}, None), ({"retry-after": "30"}, 30.0)],
)
def test_rate_limit_is_transient(
    receiver: Receiver,
    channel: PagerDutyChannel,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    """A 429 is retried later, after its Retry-After when PagerDuty sends one (it may not)."""
    receiver.script(Answer(429, b"", headers))
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert not caught.value.permanent
    assert caught.value.status == "429"
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_transient(
    receiver: Receiver, channel: PagerDutyChannel, status: int
) -> None:
    """A 5xx from PagerDuty is retried later."""
    receiver.script(Answer(status, b"upstream trouble"))
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert not caught.value.permanent
    assert caught.value.status == str(status)


def test_unreachable_endpoint_is_transient(http: httpx.Client) -> None:
    """Nothing listening on the Events API port is a connection error, retried later."""
    channel = make_channel(http, f"http://127.0.0.1:{closed_port()}/v2/enqueue")
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert not caught.value.permanent
    assert "could not connect" in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)


def test_routing_key_is_never_logged(
    receiver: Receiver, channel: PagerDutyChannel, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither an accepted nor a refused event logs the routing key, even at DEBUG."""
    caplog.set_level(logging.DEBUG)
    channel.send(sample_alert_view())
    receiver.script(Answer(400, json.dumps({"errors": [ROUTING_KEY]}).encode()))
    with pytest.raises(DeliveryError):
        channel.send(sample_alert_view())
    assert ROUTING_KEY not in caplog.text
