"""The Discord channel against a real receiver: one embed within Discord's limits, markdown
escaped, no mentions, 204 a success, failures classified, no token in any message."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.channels.base import ChannelContext
from service.channels.discord import (
    RESOLVED_COLOR,
    SEVERITY_COLOR,
    DiscordChannel,
    escape,
    payload,
)
from service.errors import DeliveryError
from service.render import wording
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

TOKEN = "secret-token"
NO_CONTENT = Answer(204, b"")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(default=NO_CONTENT) as r:
        yield r


def discord(url: str, http: httpx.Client, credit_unit: Decimal = Decimal(1)) -> DiscordChannel:
    spec = ChannelSpec("ops", "discord", f"{url}/services/T/B/{TOKEN}", "CREDITWATCH_CHANNEL_OPS")
    context = ChannelContext(http=http, settings=ChannelSettings(), credit_unit=credit_unit)
    return DiscordChannel(spec, context)


def within_limits(body: dict[str, Any]) -> dict[str, Any]:
    """The one embed, checked against every documented embed limit; returned for more checks."""
    assert len(body["content"]) <= 2000
    (embed,) = body["embeds"]
    assert len(embed["title"]) <= 256
    assert len(embed.get("description", "")) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    assert len(embed["footer"]["text"]) <= 2048
    total = len(embed["title"]) + len(embed.get("description", "")) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert body["allowed_mentions"] == {"parse": []}
    found: dict[str, Any] = embed
    return found


def test_a_delivery_posts_one_embed_and_204_is_success(
    receiver: Receiver, http: httpx.Client
) -> None:
    """One JSON POST to the webhook; Discord's 204 No Content is a success."""
    view = sample_alert_view()
    sent = discord(receiver.url, http).send(view)
    (request,) = receiver.received
    assert request.path == f"/services/T/B/{TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert sent.status == "204"
    assert request.json() == payload(view)


def test_the_embed_says_what_the_shared_wording_says(
    receiver: Receiver, http: httpx.Client
) -> None:
    """Headline, summary and drivers, facts as inline fields, freshness in the footer."""
    view = sample_alert_view()
    discord(receiver.url, http).send(view)
    body = receiver.received[0].json()
    embed = within_limits(body)
    assert body["content"] == embed["title"] == wording.headline(view)
    assert embed["description"].splitlines() == [
        view.summary,
        "",
        "**Top drivers**",
        *(f"- {escape(wording.driver_line(d))}" for d in view.drivers),
    ]
    assert [(f["name"], f["value"]) for f in embed["fields"]] == [
        (fact.label, fact.value) for fact in wording.facts(view)
    ]
    assert all(f["inline"] for f in embed["fields"])
    assert embed["footer"]["text"] == wording.freshness(view)
    assert embed["timestamp"] == "2026-11-20T14:05:00+00:00"


def test_money_uses_the_context_credit_unit(receiver: Receiver, http: httpx.Client) -> None:
    """With a credit unit configured, amounts show credits beside dollars."""
    discord(receiver.url, http, credit_unit=Decimal("0.01")).send(sample_alert_view())
    (amount, *_) = within_limits(receiver.received[0].json())["fields"]
    assert amount == {"name": "Amount", "value": "$412.30 (41,230.00 credits)", "inline": True}


@pytest.mark.parametrize(
    ("kind", "severity", "color"),
    [
        ("alert", "info", SEVERITY_COLOR["info"]),
        ("alert", "warning", SEVERITY_COLOR["warning"]),
        ("reminder", "critical", SEVERITY_COLOR["critical"]),
        ("resolved", "critical", RESOLVED_COLOR),
    ],
)
def test_the_color_follows_the_severity(kind: str, severity: str, color: int) -> None:
    """Blue, orange, red by severity; a resolved notice is green whatever its severity."""
    embed = within_limits(payload(sample_alert_view(kind=kind, severity=severity)))
    assert embed["color"] == color


def test_names_are_escaped_and_cannot_mention(receiver: Receiver, http: httpx.Client) -> None:
    """Markdown characters in names are backslashed; allowed_mentions parses nothing."""
    base = sample_alert_view(tricky_names=True)
    view = replace(base, title="Unknown model price: @everyone <@123> (priced as x)")
    discord(receiver.url, http).send(view)
    body = receiver.received[0].json()
    embed = within_limits(body)
    assert body["allowed_mentions"] == {"parse": []}
    assert body["content"] == r"Unknown model price: @everyone \<@123\> (priced as x)"
    assert r"Prod \<script\>&\*\_\~\`\| (wrkspc\_01)" in embed["description"]
    assert "<script>" not in embed["description"]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain name", "plain name"),
        ("**bold** __under__ ~~del~~", r"\*\*bold\*\* \_\_under\_\_ \~\~del\~\~"),
        ("||spoiler|| `code`", r"\|\|spoiler\|\| \`code\`"),
        ("[click](https://evil.example)", r"\[click\](https://evil.example)"),
        ("<@123> <#456> <:emoji:789>", r"\<@123\> \<#456\> \<:emoji:789\>"),
        ("# heading\n- item\n-# small\n1. first", "\\# heading\n\\- item\n\\-# small\n1\\. first"),
        ("> quote", r"\> quote"),
        ("back\\slash", r"back\\slash"),
        ("2026-11 is not a list", "2026-11 is not a list"),
    ],
)
def test_escape_leaves_no_markdown(raw: str, escaped: str) -> None:
    """The escaping table: inline markers anywhere, headings and lists at line starts."""
    assert escape(raw) == escaped


def test_long_driver_lists_are_cut_to_twelve_with_a_count() -> None:
    """43 drivers: the top twelve in order, then "… and 31 more"."""
    view = sample_alert_view(drivers=43)
    lines = within_limits(payload(view))["description"].splitlines()
    assert lines[3:15] == [f"- {escape(wording.driver_line(d))}" for d in view.drivers[:12]]
    assert lines[15:] == ["… and 31 more"]


def test_oversized_text_fits_every_embed_limit() -> None:
    """Huge titles, summaries, scopes and names are clipped; the embed stays within 6,000."""
    base = sample_alert_view(drivers=43)
    view = replace(
        base,
        title="T*" * 2000,
        summary="S_" * 5000,
        scope="workspace:" + "w" * 5000,
        drivers=tuple(replace(d, name="n" * 900) for d in base.drivers),
    )
    body = payload(view)
    embed = within_limits(body)
    assert embed["title"].endswith("…")
    assert not embed["title"].removesuffix("…").endswith("\\")
    assert body["content"].endswith("…")
    assert embed["fields"][-1]["name"] == "Scope"
    assert embed["fields"][-1]["value"].endswith("…")
    assert embed["description"].endswith("…")


def test_drivers_give_way_to_the_total_limit() -> None:
    """When the 6,000 shared characters run short, drivers go first and are counted."""
    base = sample_alert_view(drivers=43)
    view = replace(
        base,
        dedup_id="d" * 2000,
        scope="workspace:" + "w" * 3000,
        drivers=tuple(replace(d, name="n" * 250) for d in base.drivers),
    )
    description = within_limits(payload(view))["description"]
    lines = description.splitlines()
    assert lines[:3] == [view.summary, "", "**Top drivers**"]
    shown = len(lines) - 4
    assert 0 < shown < 10
    assert lines[-1] == f"… and {43 - shown} more"


def test_fields_past_the_total_limit_are_dropped_from_the_end() -> None:
    """Facts too long to share 6,000 characters lose their last fields, not the title."""
    view = replace(
        sample_alert_view(),
        dedup_id="d" * 2000,
        title="T" * 300,
        threshold="t" * 2000,
        period="p" * 2000,
        scope="workspace:" + "w" * 2000,
        runway_until=None,
        runway_note="r" * 2000,
    )
    embed = within_limits(payload(view))
    names = [f["name"] for f in embed["fields"]]
    assert names == [fact.label for fact in wording.facts(view)][: len(names)]
    assert len(names) < len(wording.facts(view))
    assert len(embed["title"]) == 256


def test_a_rate_limit_waits_as_discord_asks(receiver: Receiver, http: httpx.Client) -> None:
    """429 with Retry-After (and retry_after in the JSON) is transient with that wait."""
    body = b'{"message": "You are being rate limited.", "retry_after": 7.0, "global": false}'
    receiver.script(Answer(429, body, {"Retry-After": "7", "content-type": "application/json"}))
    with pytest.raises(DeliveryError) as caught:
        discord(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert caught.value.retry_after == 7
    assert caught.value.status == "429"
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b'{"message": "Invalid Form Body", "code": 50035}'),
        (401, b'{"message": "Invalid Webhook Token", "code": 50027}'),
        (404, b'{"message": "Unknown Webhook", "code": 10015}'),
    ],
)
def test_client_errors_are_permanent(
    receiver: Receiver, http: httpx.Client, status: int, body: bytes
) -> None:
    """A bad body, a wrong token, a deleted webhook: no retry, Discord's words in the message."""
    receiver.script(Answer(status, body))
    with pytest.raises(DeliveryError) as caught:
        discord(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is True
    assert caught.value.status == str(status)
    assert str(caught.value) == f"discord ops: HTTP {status} {body.decode()}"
    assert TOKEN not in str(caught.value)
    assert receiver.url not in str(caught.value)


def test_a_server_error_is_transient(receiver: Receiver, http: httpx.Client) -> None:
    """502 from Discord: try again later."""
    receiver.script(Answer(502, b"bad gateway"))
    with pytest.raises(DeliveryError) as caught:
        discord(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert caught.value.status == "502"


def test_a_closed_port_is_transient(http: httpx.Client) -> None:
    """Connection refused: transient, and the message holds no URL."""
    with Receiver() as gone:
        url = gone.url
    with pytest.raises(DeliveryError) as caught:
        discord(url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert "could not connect" in str(caught.value)
    assert TOKEN not in str(caught.value)
