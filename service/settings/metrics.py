"""``CREDITWATCH_METRICS_ADDR``: where the daemon serves ``/metrics`` and ``/healthz``.

``127.0.0.1:9464``, ``[::1]:9464`` or ``localhost:9464``; a bare port (``9464`` or ``:9464``)
means 127.0.0.1, so nothing is exposed beyond the machine unless the address says so
(``0.0.0.0:9464``, ``[::]:9464``). Unset, no server runs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from service.errors import ConfigError

VARIABLE = "CREDITWATCH_METRICS_ADDR"
DEFAULT_HOST = "127.0.0.1"
EXAMPLE = "127.0.0.1:9464"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r":?([0-9]{1,5})")


@dataclass(frozen=True)
class MetricsAddress:
    """A host (an IP address or a name) and a TCP port to listen on."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


def parse_metrics_addr(raw: str | None) -> MetricsAddress | None:
    """The address in ``raw`` (None when unset); ConfigError naming the problem otherwise."""
    if raw is None:
        return None
    text = raw.strip()
    bare = _PORT.fullmatch(text)
    if bare:
        return MetricsAddress(DEFAULT_HOST, _port(raw, bare.group(1)))
    if "://" in text or "/" in text:
        raise _error(f"{raw!r} is a URL; give host:port only (the paths are fixed)")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise _error(f"{raw!r} is not [IPv6 address]:port")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise _error(f"{host!r} is not an IPv6 address") from None
        return MetricsAddress(str(address), _port(raw, rest[1:]))
    host, colon, port = text.rpartition(":")
    if not colon:
        raise _error(f"{raw!r} has no port (host:port, or a port alone)")
    if ":" in host:
        raise _error(f"{raw!r}: put an IPv6 address in brackets, as [::1]:9464")
    if not host:
        return MetricsAddress(DEFAULT_HOST, _port(raw, port))
    if re.fullmatch(r"[0-9.]+", host):
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _error(f"{host!r} is not an IPv4 address") from None
    elif len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise _error(f"{host!r} is not an IP address or a host name")
    return MetricsAddress(host, _port(raw, port))


def _port(raw: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise _error(f"{raw!r} does not end in a TCP port from 1 to 65535")
    return int(text)


def _error(problem: str) -> ConfigError:
    return ConfigError(VARIABLE, problem, EXAMPLE)
