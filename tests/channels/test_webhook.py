"""The generic webhook against a real receiver: the documented JSON, signed per Standard Webhooks
and verified by the `standardwebhooks` library, failures classified, no secret in any message."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.channels.base import ChannelContext
from service.channels.webhook import WebhookChannel, payload
from service.errors import DeliveryError
from service.http import build_http_client
from service.settings.channels import ChannelSettings, ChannelSpec
from tests.helpers import sample_alert_view
from tests.receivers import Answer, Receiver

SECRET = "whsec_" + base64.b64encode(b"creditwatch-webhook-test-key-0001").decode()
TOKEN = "hook-token-4f9c2e"
NOW = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def channel(
    receiver: Receiver, *, secret: str | None = SECRET, clock_at: datetime = NOW
) -> WebhookChannel:
    spec = ChannelSpec(
        "webhook", "webhook", f"{receiver.url}/hooks/{TOKEN}", "CREDITWATCH_WEBHOOK_URL"
    )
    context = ChannelContext(
        http=build_http_client("", timeout=5),
        settings=ChannelSettings(channels=(spec,), webhook_secret=secret),
        clock=lambda: clock_at,
    )
    return WebhookChannel(spec, context)


def verify(received: dict[str, str], body: bytes, *, at: datetime) -> object:
    """What a receiver does: the library checks the signature and the timestamp's age."""
    hook = Webhook(SECRET)
    headers = {k: v for k, v in received.items() if k.startswith("webhook-")}
    # The library checks the timestamp against its own clock; sign "now" for it.
    assert abs(int(headers["webhook-timestamp"]) - int(at.timestamp())) <= 1
    return hook.verify(body, headers)


def test_a_signed_delivery_verifies_with_the_standard_webhooks_library(receiver: Receiver) -> None:
    """webhook-id is the dedup id, the timestamp is now, the signature checks out."""
    now = datetime.now(UTC)
    view = sample_alert_view()
    channel(receiver, clock_at=now).send(view)
    (request,) = receiver.received
    assert request.path == f"/hooks/{TOKEN}"
    assert request.headers["webhook-id"] == view.dedup_id == "budget:monthly/org/2026-11/80%"
    assert request.headers["content-type"] == "application/json"
    verified = verify(request.headers, request.body, at=now)
    assert verified == request.json()
    assert request.json() == payload(view)


def test_a_tampered_body_or_another_secret_fails_verification(receiver: Receiver) -> None:
    """The signature covers the id, the timestamp and every byte of the body."""
    now = datetime.now(UTC)
    channel(receiver, clock_at=now).send(sample_alert_view())
    (request,) = receiver.received
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"412.3", b"412.4"), headers)
    other = "whsec_" + base64.b64encode(b"another-key-entirely-0000000000").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, headers)


def test_a_retry_keeps_its_id_and_signs_a_fresh_timestamp(receiver: Receiver) -> None:
    """The same notification twice: one webhook-id, two timestamps, both signatures valid."""
    view = sample_alert_view()
    first, later = datetime.now(UTC), datetime.now(UTC) + timedelta(seconds=90)
    channel(receiver, clock_at=first).send(view)
    channel(receiver, clock_at=later).send(view)
    one, two = receiver.received
    assert one.headers["webhook-id"] == two.headers["webhook-id"]
    assert int(two.headers["webhook-timestamp"]) - int(one.headers["webhook-timestamp"]) == 90
    assert one.headers["webhook-signature"] != two.headers["webhook-signature"]
    verify(one.headers, one.body, at=first)


def test_reminders_and_resolved_notices_have_ids_of_their_own(receiver: Receiver) -> None:
    """A receiver that drops repeated ids keeps every notification of an alert."""
    channel(receiver).send(sample_alert_view())
    channel(receiver).send(sample_alert_view(kind="reminder", notice=2))
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == ["budget:monthly/org/2026-11/80%", "budget:monthly/org/2026-11/80%:2"]
    reminder = receiver.received[1].json()
    assert (reminder["kind"], reminder["type"]) == ("reminder", "creditwatch.alert.reminder")
    assert reminder["dedup_id"] == "budget:monthly/org/2026-11/80%"
    assert reminder["previous_message_id"] == "budget:monthly/org/2026-11/80%"


def test_without_a_secret_there_is_no_signature(receiver: Receiver) -> None:
    """Unsigned, but still with its id and timestamp."""
    channel(receiver, secret=None).send(sample_alert_view())
    (request,) = receiver.received
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"]


def test_the_payload_is_the_documented_schema(receiver: Receiver) -> None:
    """docs/webhook.md's example has exactly the keys the channel sends, amounts as strings."""
    channel(receiver).send(sample_alert_view())
    sent = receiver.received[0].json()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhook.md").read_text()
    example = json.loads(docs.split("```json", 1)[1].split("```", 1)[0])
    assert set(example) == set(sent)
    assert set(example["drivers"][0]) == set(sent["drivers"][0])
    assert sent["value_usd"] == "412.30"
    assert sent["limit_usd"] == "500.00"
    assert sent["schema"] == 1


@pytest.mark.parametrize(
    ("answer", "permanent", "retry_after"),
    [
        (Answer(400, b"bad"), True, None),
        (Answer(401, b""), True, None),
        (Answer(403, b""), True, None),
        (Answer(404, b"not found"), True, None),
        (Answer(410, b"gone"), True, None),
        (Answer(429, b"slow down", {"Retry-After": "30"}), False, 30.0),
        (Answer(500, b"oops"), False, None),
        (Answer(503, b""), False, None),
        (Answer(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}), True, None),
    ],
)
def test_failures_are_classified(
    receiver: Receiver, answer: Answer, permanent: bool, retry_after: float | None
) -> None:
    """4xx (and redirects) stop, 429 waits as asked, 5xx retries; the URL is never in the text."""
    receiver.script(answer)
    with pytest.raises(DeliveryError) as caught:
        channel(receiver).send(sample_alert_view())
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert caught.value.status == str(answer.status)
    assert TOKEN not in str(caught.value)
    assert receiver.url not in str(caught.value)


def test_a_receiver_that_is_down_is_transient() -> None:
    """Connection refused: try again later."""
    with Receiver() as gone:
        dead = channel(gone)
    with pytest.raises(DeliveryError) as caught:
        dead.send(sample_alert_view())
    assert not caught.value.permanent
    assert "could not connect" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_an_id_beyond_ascii_is_percent_encoded_and_still_verifies(receiver: Receiver) -> None:
    """A budget scoped to workspace Équipe: headers are ASCII, so the id is encoded there."""
    now = datetime.now(UTC)
    identity = "budget:équipe/workspace=Équipe/2026-11/80%"
    view = dataclasses.replace(sample_alert_view(), dedup_id=identity, message_id=identity)
    channel(receiver, clock_at=now).send(view)
    (request,) = receiver.received
    assert request.headers["webhook-id"] == quote(identity, safe="".join(map(chr, range(33, 127))))
    assert "%C3%89quipe" in request.headers["webhook-id"]
    assert verify(request.headers, request.body, at=now) == request.json()
    assert request.json()["message_id"] == identity
