"""The Teams channel against a real receiver: a Workflows message holding one Adaptive Card 1.4,
under Teams' 28 KB, 202 a success, failures classified, no token in any message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.channels.base import ChannelContext
from service.channels.teams import MAX_BYTES, TeamsChannel, encode, message
from service.errors import DeliveryError
from service.render import wording
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

TOKEN = "secret-token"
TEAMS_LIMIT = 28 * 1024
ACCEPTED = Answer(202, b"")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(default=ACCEPTED) as r:
        yield r


def teams(url: str, http: httpx.Client, credit_unit: Decimal = Decimal(1)) -> TeamsChannel:
    spec = ChannelSpec("ops", "teams", f"{url}/services/T/B/{TOKEN}", "CREDITWATCH_CHANNEL_OPS")
    context = ChannelContext(http=http, settings=ChannelSettings(), credit_unit=credit_unit)
    return TeamsChannel(spec, context)


def card_of(body: dict[str, Any]) -> dict[str, Any]:
    """The Adaptive Card inside a Workflows message, its envelope checked on the way."""
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert all(block["type"] in ("TextBlock", "FactSet") for block in card["body"])
    return card


def texts(card: dict[str, Any]) -> list[str]:
    return [block["text"] for block in card["body"] if block["type"] == "TextBlock"]


def test_a_delivery_posts_an_adaptive_card_and_202_is_success(
    receiver: Receiver, http: httpx.Client
) -> None:
    """One JSON POST of the card message; Workflows' 202 Accepted is a success."""
    view = sample_alert_view()
    sent = teams(receiver.url, http).send(view)
    (request,) = receiver.received
    assert request.path == f"/services/T/B/{TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert sent.status == "202"
    assert request.body == encode(message(view))
    card_of(json.loads(request.body))


def test_the_card_says_what_the_shared_wording_says(receiver: Receiver, http: httpx.Client) -> None:
    """Bold medium title, summary, a FactSet of the facts, drivers, subtle freshness line."""
    view = sample_alert_view()
    teams(receiver.url, http).send(view)
    card = card_of(receiver.received[0].json())
    title, summary, facts, heading, *drivers, freshness = card["body"]
    assert title == {
        "type": "TextBlock",
        "text": wording.headline(view),
        "wrap": True,
        "weight": "Bolder",
        "size": "Medium",
        "color": "Warning",
    }
    assert summary == {"type": "TextBlock", "text": view.summary, "wrap": True}
    assert facts == {
        "type": "FactSet",
        "facts": [{"title": f.label, "value": f.value} for f in wording.facts(view)],
    }
    assert (heading["text"], heading["weight"]) == ("Top drivers", "Bolder")
    assert [d["text"] for d in drivers] == [f"• {wording.driver_line(d)}" for d in view.drivers]
    assert all(d["wrap"] for d in drivers)
    assert freshness["text"] == wording.freshness(view)
    assert freshness["isSubtle"] is True


def test_money_uses_the_context_credit_unit(receiver: Receiver, http: httpx.Client) -> None:
    """With a credit unit configured, amounts show credits beside dollars."""
    teams(receiver.url, http, credit_unit=Decimal("0.01")).send(sample_alert_view())
    facts = card_of(receiver.received[0].json())["body"][2]["facts"]
    assert facts[0] == {"title": "Amount", "value": "$412.30 (41,230.00 credits)"}


@pytest.mark.parametrize(
    ("kind", "severity", "color"),
    [
        ("alert", "info", "Accent"),
        ("alert", "warning", "Warning"),
        ("reminder", "critical", "Attention"),
        ("resolved", "critical", "Good"),
    ],
)
def test_the_title_color_follows_the_severity(kind: str, severity: str, color: str) -> None:
    """Accent, Warning, Attention by severity; a resolved notice is Good whatever its severity."""
    card = card_of(message(sample_alert_view(kind=kind, severity=severity)))
    assert card["body"][0]["color"] == color


def test_no_drivers_means_no_drivers_heading() -> None:
    """An alert without drivers has title, summary, facts and freshness only."""
    card = card_of(message(sample_alert_view(drivers=0)))
    assert [block["type"] for block in card["body"]] == [
        "TextBlock",
        "TextBlock",
        "FactSet",
        "TextBlock",
    ]
    assert "Top drivers" not in texts(card)


def test_long_driver_lists_are_cut_to_twelve_with_a_count() -> None:
    """43 drivers: the top twelve in order, then "… and 31 more"."""
    view = sample_alert_view(drivers=43)
    lines = texts(card_of(message(view)))[3:-1]
    assert lines[:12] == [f"• {wording.driver_line(d)}" for d in view.drivers[:12]]
    assert lines[12:] == ["… and 31 more"]


def test_the_card_stays_under_the_teams_size_limit() -> None:
    """Long names in four-byte characters: drivers go, counted, until the bytes fit."""
    base = sample_alert_view(drivers=43)
    view = replace(
        base,
        title="\U0001f525" * 2000,
        summary="\U0001f4b8" * 4000,
        drivers=tuple(replace(d, name="\U0001f916" * 1000) for d in base.drivers),
    )
    body = message(view)
    size = len(encode(body))
    assert size <= MAX_BYTES < TEAMS_LIMIT
    lines = texts(card_of(body))
    assert lines[0].endswith("…")
    assert "Top drivers" in lines
    shown = [line for line in lines if line.startswith("• ")]
    assert 0 < len(shown) < 10
    assert f"… and {43 - len(shown)} more" in lines


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [
        (Answer(400, b'{"error":{"code":"TriggerInputSchemaMismatch"}}'), True),
        (Answer(401, b""), True),
        (Answer(404, b'{"error":{"code":"WorkflowNotFound"}}'), True),
        (Answer(429, b"", {"Retry-After": "7"}), False),
        (Answer(500, b""), False),
        (Answer(503, b"Service Unavailable"), False),
    ],
)
def test_failures_are_classified(
    receiver: Receiver, http: httpx.Client, answer: Answer, permanent: bool
) -> None:
    """4xx stops, 429 and 5xx retry; Teams' words are in the message, the URL never is."""
    receiver.script(answer)
    with pytest.raises(DeliveryError) as caught:
        teams(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is permanent
    assert caught.value.status == str(answer.status)
    assert caught.value.retry_after == (7 if answer.status == 429 else None)
    assert str(caught.value).startswith(f"teams ops: HTTP {answer.status}")
    assert answer.body.decode() in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert receiver.url not in str(caught.value)


def test_a_closed_port_is_transient(http: httpx.Client) -> None:
    """Connection refused: transient, and the message holds no URL."""
    with Receiver() as gone:
        url = gone.url
    with pytest.raises(DeliveryError) as caught:
        teams(url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert "could not connect" in str(caught.value)
    assert TOKEN not in str(caught.value)
