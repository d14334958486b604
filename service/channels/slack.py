"""Slack incoming webhooks: the Block Kit message of :mod:`service.render.slack`.

Slack answers 200 ``ok``; its errors are plain-text codes (``invalid_token``, ``no_service``,
``channel_not_found``, ``invalid_payload``, ``action_prohibited``) under 400, 403, 404 and 410,
which :func:`post_json` makes permanent, with the code in the message; 429 and 5xx are
transient (https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks).
"""

from __future__ import annotations

from service.channels.base import ChannelContext, Sent, post_json
from service.errors import DeliveryError
from service.render.slack import message
from service.render.view import AlertView
from service.settings.channels import ChannelSpec

_MAX_BODY = 200


class SlackChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.spec = spec
        self.context = context

    def send(self, alert: AlertView) -> Sent:
        what = f"slack {self.spec.name}"
        response = post_json(
            self.context, self.spec.target, message(alert, self.context.credit_unit), what=what
        )
        body = " ".join(response.text.split())[:_MAX_BODY]
        # Anything but "ok" is not a post Slack made, whatever the status says.
        if body != "ok":
            raise DeliveryError(
                f"{what}: HTTP {response.status_code} {body or '(empty body)'}",
                permanent=True,
                status=str(response.status_code),
            )
        return Sent(str(response.status_code))
