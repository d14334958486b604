"""The Slack channel against a real receiver: Block Kit that slack_sdk's models accept, within
Slack's limits, names escaped for mrkdwn, Slack's error answers classified, no token anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from slack_sdk.models.blocks import Block

from service.channels.base import ChannelContext
from service.channels.slack import SlackChannel
from service.errors import DeliveryError
from service.render import wording
from service.render.slack import escape, fact_sections, message
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

TOKEN = "secret-token"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def slack(url: str, http: httpx.Client, credit_unit: Decimal = Decimal(1)) -> SlackChannel:
    spec = ChannelSpec("ops", "slack", f"{url}/services/T/B/{TOKEN}", "CREDITWATCH_CHANNEL_OPS")
    context = ChannelContext(http=http, settings=ChannelSettings(), credit_unit=credit_unit)
    return SlackChannel(spec, context)


def validated(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks, each parsed by slack_sdk, valid, unchanged by the round trip; and the limits
    slack_sdk does not check (50 blocks, 2,000 characters a field, context text)."""
    blocks: list[dict[str, Any]] = payload["blocks"]
    parsed = Block.parse_all(blocks)
    assert len(parsed) == len(blocks) <= 50
    for model, block in zip(parsed, blocks, strict=True):
        assert model is not None, f"slack_sdk does not know {block['type']!r}"
        model.validate_json()
        assert model.to_dict() == block
    for block in blocks:
        assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        assert all(len(element["text"]) <= 3000 for element in block.get("elements", []))
    assert 0 < len(payload["text"]) <= 4000
    return blocks


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    texts += [f["text"] for b in blocks for f in b.get("fields", [])]
    texts += [e["text"] for b in blocks for e in b.get("elements", [])]
    return texts


def drivers_text(blocks: list[dict[str, Any]]) -> str:
    (text,) = [t for t in mrkdwn_texts(blocks) if t.startswith("*Top drivers*")]
    return text


def test_a_delivery_posts_block_kit_to_the_webhook(receiver: Receiver, http: httpx.Client) -> None:
    """One JSON POST to the webhook path; Slack's 200 "ok" is a success."""
    view = sample_alert_view()
    sent = slack(receiver.url, http).send(view)
    (request,) = receiver.received
    assert request.path == f"/services/T/B/{TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert (sent.status, sent.detail) == ("200", "")  # "ok" is no detail worth a warning
    blocks = validated(request.json())
    assert request.json() == message(view)
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]


def test_the_blocks_say_what_the_shared_wording_says(
    receiver: Receiver, http: httpx.Client
) -> None:
    """Header, summary, facts as fields, drivers, freshness and the plain-text fallback."""
    view = sample_alert_view()
    slack(receiver.url, http).send(view)
    payload = receiver.received[0].json()
    header, summary, facts, drivers, context = validated(payload)
    assert header["text"] == {"type": "plain_text", "text": wording.headline(view)}
    assert summary["text"]["text"] == view.summary
    assert [f["text"] for f in facts["fields"]] == [
        f"*{fact.label}*\n{fact.value}" for fact in wording.facts(view)
    ]
    assert drivers["text"]["text"].splitlines() == [
        "*Top drivers*",
        *(f"• {wording.driver_line(d)}" for d in view.drivers),
    ]
    assert context["elements"][0]["text"] == escape(wording.freshness(view))
    assert view.dedup_id in context["elements"][0]["text"]
    assert payload["text"] == escape(wording.plain_text(view))


def test_money_uses_the_context_credit_unit(receiver: Receiver, http: httpx.Client) -> None:
    """With a credit unit configured, amounts show credits beside dollars."""
    view = sample_alert_view()
    slack(receiver.url, http, credit_unit=Decimal("0.01")).send(view)
    fields = [f["text"] for f in validated(receiver.received[0].json())[2]["fields"]]
    assert fields[0] == "*Amount*\n$412.30 (41,230.00 credits)"


@pytest.mark.parametrize("kind", ["alert", "reminder", "resolved"])
@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
@pytest.mark.parametrize("drivers", [0, 1, 43])
@pytest.mark.parametrize("tricky", [False, True])
def test_every_rendering_is_valid_block_kit(
    kind: str, severity: str, drivers: int, tricky: bool
) -> None:
    """Every kind, severity and driver count parses and validates with slack_sdk's models."""
    view = sample_alert_view(kind=kind, severity=severity, drivers=drivers, tricky_names=tricky)
    blocks = validated(message(view, Decimal("0.02")))
    assert blocks[0]["text"]["text"].startswith(wording.KIND_LABEL[kind])
    assert blocks[1]["text"]["text"] == view.summary


def test_names_are_escaped_for_mrkdwn(receiver: Receiver, http: httpx.Client) -> None:
    """& < > become entities and * _ ~ ` look-alikes; mid-word underscores stay as they are."""
    slack(receiver.url, http).send(sample_alert_view(tricky_names=True))
    payload = receiver.received[0].json()
    blocks = validated(payload)
    line = drivers_text(blocks).splitlines()[3]
    assert line == (
        "• Workspace Prod &lt;script&gt;&amp;\u2217\u02cd\u223c\u02cb| (wrkspc_01): $330.00 "
        "(-$5.00 since the last alert)"
    )
    for text in [*mrkdwn_texts(blocks), payload["text"]]:
        assert "<script>" not in text
        assert "~" not in text
        assert "`" not in text
    assert "Prod &lt;script&gt;&amp;\u2217\u02cd\u223c\u02cb|" in payload["text"]
    assert "apikey_01" in drivers_text(blocks)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain name", "plain name"),
        ("<!channel> & <@U123>", "&lt;!channel&gt; &amp; &lt;@U123&gt;"),
        (
            "*bold* _it_ ~del~ `code`",
            "\u2217bold\u2217 \u02cdit\u02cd \u223cdel\u223c \u02cbcode\u02cb",
        ),
        ("ci_runner_2", "ci_runner_2"),
        ("_leading trailing_", "\u02cdleading trailing\u02cd"),
        ("a__b", "a\u02cd\u02cdb"),
        ("> quoted\n> again", "\u00ad&gt; quoted\n\u00ad&gt; again"),
        ("x > y", "x &gt; y"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
    ],
)
def test_escape_leaves_no_mrkdwn_markup(raw: str, escaped: str) -> None:
    """The escaping table: entities, look-alike markers, quotes at line starts."""
    assert escape(raw) == escaped


def test_long_driver_lists_are_cut_to_twelve_with_a_count() -> None:
    """43 drivers: the top twelve in order, then "… and 31 more"."""
    view = sample_alert_view(drivers=43)
    lines = drivers_text(validated(message(view))).splitlines()
    assert lines[1:13] == [f"• {wording.driver_line(d)}" for d in view.drivers[:12]]
    assert lines[13:] == ["… and 31 more"]


def test_oversized_text_is_clipped_to_slack_limits() -> None:
    """Huge titles, summaries, names and scopes are cut with an ellipsis, never rejected."""
    base = sample_alert_view(drivers=43, tricky_names=True)
    view = replace(
        base,
        title="T&" * 400,
        summary="S<" * 4000,
        scope="workspace:" + "w" * 5000,
        drivers=tuple(replace(d, name="n&" * 3000) for d in base.drivers),
    )
    payload = message(view)
    blocks = validated(payload)
    assert len(blocks[0]["text"]["text"]) == 150
    assert blocks[0]["text"]["text"].endswith("…")
    assert 2990 <= len(blocks[1]["text"]["text"]) <= 3000
    assert not blocks[1]["text"]["text"].removesuffix("…").endswith(("&", "&l", "&lt"))
    lines = drivers_text(blocks).splitlines()
    assert len(lines) == 14
    assert lines[-1] == "… and 31 more"
    assert all(line.endswith("…") for line in lines[1:13])


def test_many_facts_spread_over_sections_of_ten() -> None:
    """No section carries more than ten fields, and every fact is shown, in order."""
    facts = [wording.Fact(f"Fact {i}", str(i)) for i in range(23)]
    sections = fact_sections(facts)
    assert [len(s["fields"]) for s in sections] == [10, 10, 3]
    assert [f["text"] for s in sections for f in s["fields"]] == [
        f"*Fact {i}*\n{i}" for i in range(23)
    ]
    for section in sections:
        model = Block.parse(section)
        assert model is not None
        model.validate_json()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, "invalid_token"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_error_answers_are_permanent(
    receiver: Receiver, http: httpx.Client, status: int, body: str
) -> None:
    """Slack's documented webhook errors stop retries; the message names the code, not the URL."""
    receiver.script(Answer(status, body.encode()))
    with pytest.raises(DeliveryError) as caught:
        slack(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is True
    assert caught.value.status == str(status)
    assert str(caught.value) == f"slack ops: HTTP {status} {body}"
    assert TOKEN not in str(caught.value)
    assert receiver.url not in str(caught.value)


def test_a_rate_limit_waits_as_slack_asks(receiver: Receiver, http: httpx.Client) -> None:
    """429 with Retry-After: 7 is transient and carries the seven seconds."""
    receiver.script(Answer(429, b"rate_limited", {"Retry-After": "7"}))
    with pytest.raises(DeliveryError) as caught:
        slack(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert caught.value.retry_after == 7
    assert caught.value.status == "429"
    assert TOKEN not in str(caught.value)


def test_a_server_error_is_transient(receiver: Receiver, http: httpx.Client) -> None:
    """500 from Slack: try again later."""
    receiver.script(Answer(500, b"rollup_error"))
    with pytest.raises(DeliveryError) as caught:
        slack(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert str(caught.value) == "slack ops: HTTP 500 rollup_error"


def test_a_closed_port_is_transient(http: httpx.Client) -> None:
    """Connection refused: transient, and the message holds no URL."""
    with Receiver() as gone:
        url = gone.url
    with pytest.raises(DeliveryError) as caught:
        slack(url, http).send(sample_alert_view())
    assert caught.value.permanent is False
    assert "could not connect" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert url not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "shown"), [(b"invalid_payload", "invalid_payload"), (b"", "(empty body)")]
)
def test_a_200_that_is_not_ok_is_permanent(
    receiver: Receiver, http: httpx.Client, body: bytes, shown: str
) -> None:
    """Only the body "ok" means Slack posted the message; anything else is a permanent error."""
    receiver.script(Answer(200, body))
    with pytest.raises(DeliveryError) as caught:
        slack(receiver.url, http).send(sample_alert_view())
    assert caught.value.permanent is True
    assert caught.value.status == "200"
    assert str(caught.value) == f"slack ops: HTTP 200 {shown}"
    assert TOKEN not in str(caught.value)


def test_the_header_is_plain_text_and_shown_as_written() -> None:
    """plain_text is never parsed, so the header keeps the title's characters unescaped."""
    view = replace(sample_alert_view(), title="Unknown model price: <!here> *x* & y")
    blocks = validated(message(view))
    assert blocks[0]["text"] == {
        "type": "plain_text",
        "text": "Unknown model price: <!here> *x* & y",
    }
