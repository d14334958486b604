"""Apprise (the optional ``creditwatch[apprise]`` extra): any service an Apprise URL names.

The title is the headline and the body the plain-text alert. Apprise reports only success or
failure, never why, so a failed notify is transient (it is as likely a network error as
anything else); a URL Apprise cannot parse is permanent.

Apprise logs the whole URL it could not parse at ERROR (``Unparseable URL …``), hosts at
WARNING and the URL it posts to at DEBUG, all on the ``apprise`` logger: building a channel
silences that logger entirely (and stops it propagating), and holds urllib3's (request paths
at DEBUG) at WARNING, so no secret URL reaches the logs. A failed notify captures Apprise's
warnings for the moment of the call and gives the last as the reason, masked by the worker
with every piece of the Apprise URL before it is stored or logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from service.channels.base import ChannelContext, Sent
from service.errors import ConfigError, DeliveryError
from service.render import wording
from service.render.view import AlertView
from service.settings.channels import ChannelSpec

if TYPE_CHECKING:
    import apprise

EXTRA_HINT = "pip install 'creditwatch[apprise]'"
_EXAMPLE = "apprise:ntfy://ntfy.sh/my-topic"
_SILENT = logging.CRITICAL + 1


class AppriseChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        """Raises ConfigError naming ``spec.variable`` when the Apprise extra is not installed."""
        self.spec = spec
        self.context = context
        try:
            import apprise
        except ImportError:
            raise ConfigError(
                spec.variable, f"needs the Apprise extra: {EXTRA_HINT}", _EXAMPLE
            ) from None
        _quiet_loggers()
        self._types: dict[str, apprise.NotifyType] = {
            "info": apprise.NotifyType.INFO,
            "warning": apprise.NotifyType.WARNING,
            "critical": apprise.NotifyType.FAILURE,
            "resolved": apprise.NotifyType.SUCCESS,
        }
        self._text = apprise.NotifyFormat.TEXT
        self._capture = apprise.LogCapture
        self._apprise = apprise.Apprise()
        # add() returns False for a URL no Apprise plugin accepts: no retry can fix that.
        self._parsed = self._apprise.add(spec.target)

    def send(self, alert: AlertView) -> Sent:
        what = f"apprise {self.spec.name}"
        if not self._parsed:
            raise DeliveryError(
                f"{what}: Apprise cannot use this URL (an unknown service or a malformed URL)",
                permanent=True,
            )
        kind = "resolved" if alert.kind == "resolved" else alert.severity
        # Apprise says why only in its log: caught here (never propagated), its last warning
        # becomes the reason, which the worker masks like every error before storing it.
        capture = self._capture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
        with capture as captured:
            delivered = self._apprise.notify(
                body=wording.plain_text(alert, self.context.credit_unit),
                title=wording.headline(alert),
                notify_type=self._types.get(kind, self._types["warning"]),
                body_format=self._text,
            )
            said = [line for line in captured.getvalue().splitlines() if line.strip()]
        if not delivered:
            reason = said[-1] if said else "Apprise gave no reason"
            raise DeliveryError(
                f"{what}: the service did not accept the notification ({reason})",
                permanent=False,
            )
        return Sent()


def _quiet_loggers() -> None:
    apprise_log = logging.getLogger("apprise")
    apprise_log.setLevel(_SILENT)
    apprise_log.propagate = False
    urllib3 = logging.getLogger("urllib3")
    urllib3.setLevel(max(logging.WARNING, urllib3.level))
