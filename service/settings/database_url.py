"""Database URLs as SQLAlchemy reads them: masked for people, their secrets for the log filter.

SQLAlchemy accepts ``/``, ``?`` and ``#`` unencoded in a password, so these read the URL as
SQLAlchemy does, not as a web URL (:mod:`service.settings.grammar` does web URLs).
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.settings.grammar import SECRET_QUERY_KEYS


def mask_database_url(url: str) -> str:
    """A SQLAlchemy URL with its password and credential query parameters masked."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "(not shown: not a database URL)"
    query = {k: "***" if k.lower() in SECRET_QUERY_KEYS else v for k, v in parsed.query.items()}
    # The masks would be percent-encoded (%2A): shown plainly, they read as what they are.
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A", "*")


def database_credentials(url: str) -> list[str]:
    """The password and credential query values of a SQLAlchemy URL (its user is not one)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in SECRET_QUERY_KEYS:
            found += [value] if isinstance(value, str) else list(value)
    return [str(v) for v in found if v]
