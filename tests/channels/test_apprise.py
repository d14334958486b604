"""The Apprise channel over a real socket: Apprise's ``json://`` URL posts to a receiver on
127.0.0.1. Title and body, notify types, failures classified, the extra missing, the URL secret."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator

import httpx
import pytest

from service.channels.apprise_notify import AppriseChannel
from service.channels.base import ChannelContext
from service.errors import ConfigError, DeliveryError
from service.render import wording
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

SECRET = "s3cr3t-t0ken-0123456789abcdef"
# Apprise masks the URL parts it logs that look random, not a plain word like this topic.
TOPIC = "acmebilling"
VARIABLE = "CREDITWATCH_CHANNEL_PHONE"


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    # One server for the module: stopping a Receiver takes its half-second poll interval.
    with Receiver() as running:
        yield running


@pytest.fixture
def receiver(server: Receiver) -> Receiver:
    """The module's receiver with no requests recorded yet (each test consumes its script)."""
    server.received.clear()
    return server


def json_url(receiver: Receiver) -> str:
    """Apprise's JSON plugin URL for the receiver: ``json://`` posts over plain http."""
    return f"json://{receiver.url.removeprefix('http://')}/notify/{SECRET}"


def make_channel(http: httpx.Client, target: str) -> AppriseChannel:
    spec = ChannelSpec("phone", "apprise", target, VARIABLE)
    return AppriseChannel(spec, ChannelContext(http, ChannelSettings(channels=(spec,))))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_sends_headline_as_title_and_plain_text_as_body(
    receiver: Receiver, http: httpx.Client
) -> None:
    """Apprise gets the shared headline as its title and the plain-text alert as its body."""
    alert = sample_alert_view()
    sent = make_channel(http, json_url(receiver)).send(alert)
    [request] = receiver.received
    assert request.path == f"/notify/{SECRET}"
    message = request.json()
    assert message["title"] == wording.headline(alert)
    assert message["message"] == wording.plain_text(alert)
    assert message["type"] == "warning"
    assert sent.status is None


@pytest.mark.parametrize(
    ("kind", "severity", "notify_type"),
    [
        ("alert", "info", "info"),
        ("alert", "warning", "warning"),
        ("alert", "critical", "failure"),
        ("reminder", "critical", "failure"),
        ("resolved", "info", "success"),
    ],
)
def test_notify_type_follows_severity_and_resolution(
    receiver: Receiver, http: httpx.Client, kind: str, severity: str, notify_type: str
) -> None:
    """Severity picks info, warning or failure; a resolved notice is a success."""
    notice = 2 if kind != "alert" else 1
    alert = sample_alert_view(kind=kind, severity=severity, notice=notice)
    make_channel(http, json_url(receiver)).send(alert)
    assert receiver.received[0].json()["type"] == notify_type


def test_refused_notification_is_transient(receiver: Receiver, http: httpx.Client) -> None:
    """A service answering 500 makes Apprise report failure: transient, and the URL unsaid."""
    receiver.script(Answer(500, b"down"))
    channel = make_channel(http, json_url(receiver))
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert not caught.value.permanent
    assert "error=500" in str(caught.value), "Apprise's own reason is given"
    assert len(receiver.received) == 1
    assert SECRET not in str(caught.value)
    assert receiver.url.removeprefix("http://") not in str(caught.value)


def test_unreachable_service_is_transient(http: httpx.Client) -> None:
    """Nothing listening behind the Apprise URL is a failure worth retrying later."""
    channel = make_channel(http, f"json://127.0.0.1:{closed_port()}/notify/{SECRET}")
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert not caught.value.permanent
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "target",
    [f"nosuchservice://{SECRET}@example.com/x", f"ntfyy://ntfy.sh/{TOPIC}", "json://"],
)
def test_unparseable_url_is_permanent(http: httpx.Client, target: str) -> None:
    """An Apprise URL no plugin accepts fails every send permanently, without echoing the URL."""
    channel = make_channel(http, target)
    with pytest.raises(DeliveryError) as caught:
        channel.send(sample_alert_view())
    assert caught.value.permanent
    assert str(caught.value).startswith("apprise phone: ")
    assert SECRET not in str(caught.value)
    assert TOPIC not in str(caught.value)
    assert target not in str(caught.value)


def test_missing_extra_is_a_config_error(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the apprise package the channel names its variable and the extra to install."""
    monkeypatch.setitem(sys.modules, "apprise", None)
    with pytest.raises(ConfigError) as caught:
        make_channel(http, f"ntfy://ntfy.sh/{SECRET}")
    assert caught.value.variable == VARIABLE
    assert "pip install 'creditwatch[apprise]'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_secret_url_is_never_logged(
    receiver: Receiver, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Apprise's own logs (a URL it cannot parse, at DEBUG the URL it posts to) stay out."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError):
        make_channel(http, f"ntfyy://ntfy.sh/{TOPIC}").send(sample_alert_view())
    receiver.script(Answer(500, b"down"))
    with pytest.raises(DeliveryError):
        make_channel(http, json_url(receiver)).send(sample_alert_view())
    make_channel(http, json_url(receiver)).send(sample_alert_view())
    assert len(receiver.received) == 2
    assert TOPIC not in caplog.text
    assert SECRET not in caplog.text
