"""The explicit channel registry: each kind and the class that delivers it.

Imports are deferred to the first channel of a kind: a deployment without email never imports
smtplib's TLS code, and Apprise stays an optional extra (its channel says how to install it).
"""

from __future__ import annotations

from collections.abc import Callable

from service.channels.base import Channel, ChannelContext
from service.settings.channels import ChannelKind, ChannelSpec

Factory = Callable[[ChannelSpec, ChannelContext], Channel]


def _slack(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.slack import SlackChannel

    return SlackChannel(spec, context)


def _webhook(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.webhook import WebhookChannel

    return WebhookChannel(spec, context)


def _email(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.email import EmailChannel

    return EmailChannel(spec, context)


def _discord(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.discord import DiscordChannel

    return DiscordChannel(spec, context)


def _teams(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.teams import TeamsChannel

    return TeamsChannel(spec, context)


def _pagerduty(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.pagerduty import PagerDutyChannel

    return PagerDutyChannel(spec, context)


def _apprise(spec: ChannelSpec, context: ChannelContext) -> Channel:
    from service.channels.apprise_notify import AppriseChannel

    return AppriseChannel(spec, context)


CHANNELS: dict[ChannelKind, Factory] = {
    "slack": _slack,
    "webhook": _webhook,
    "email": _email,
    "discord": _discord,
    "teams": _teams,
    "pagerduty": _pagerduty,
    "apprise": _apprise,
}


def build_channels(context: ChannelContext) -> dict[str, Channel]:
    """Every configured channel by name."""
    return {spec.name: CHANNELS[spec.kind](spec, context) for spec in context.settings.channels}
