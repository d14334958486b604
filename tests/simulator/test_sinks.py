"""The demo's local sinks answer as the real receivers do and account for what they take."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx

from service.simulator.sinks import SlackSink, WebhookSink

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_the_slack_sink_answers_as_slack_does() -> None:
    """ok and one line (the header, the block count) for a message at its own URL; no_service
    for another path and invalid_payload for a body without text or blocks, with no line."""
    told: list[str] = []
    header = {"type": "header", "text": {"type": "plain_text", "text": "Budget & more"}}
    with SlackSink(told.append) as sink, httpx.Client(timeout=5) as http:
        sent = http.post(sink.url, json={"text": "Budget &amp; more\nsummary", "blocks": [header]})
        assert (sent.status_code, sent.text) == (200, "ok")
        fallback = http.post(sink.url, json={"text": "Only text &lt;here&gt;\nmore"})
        assert fallback.text == "ok"
        wrong = http.post(sink.url.rsplit("/", 1)[0] + "/guess", json={"text": "hi"})
        assert (wrong.status_code, wrong.text) == (404, "no_service")
        empty = http.post(sink.url, content=b"{}")
        assert (empty.status_code, empty.text) == (400, "invalid_payload")
        assert told == [
            "[slack sink]   Budget & more  [1 block]",
            "[slack sink]   Only text <here>  [0 blocks]",
        ]
        assert sink.drain() == told


def test_the_webhook_sink_checks_the_standard_webhooks_signature() -> None:
    """A body signed per the spec reads 'signature valid'; a tampered one 'SIGNATURE INVALID'."""
    told: list[str] = []
    body = json.dumps({"kind": "alert", "severity": "warning", "title": "Low"}).encode()
    msg_id, stamp = "low_balance/org//$25.00#1", "1767225600"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }
    with WebhookSink(SECRET, told.append) as sink, httpx.Client(timeout=5) as http:
        assert http.post(sink.url, content=body, headers=headers).status_code == 200
        http.post(sink.url, content=body.replace(b"Low", b"Lot"), headers=headers)
    assert told == [
        "[webhook sink] alert (warning): Low  [signature valid]",
        "[webhook sink] alert (warning): Lot  [SIGNATURE INVALID]",
    ]
