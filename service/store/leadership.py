"""Which instance leads: a PostgreSQL advisory lock held on a connection of its own.

Every instance runs the same settings against one PostgreSQL database; the one that holds the
session-level advisory lock collects, evaluates and delivers, the others wait and keep trying.
The lock belongs to the connection: when the leader dies, or its connection is cut, PostgreSQL
lets go at once (a killed backend) or after the TCP keepalives set here say the peer is gone
(about 15 s of silence), and the next instance to try takes it. SQLite is one file on one
machine: its only instance leads.

``status`` names the leader from ``pg_locks`` and ``pg_stat_activity``: the lock's connection
carries the instance's name as its ``application_name``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
# The lock is (LEADER_LOCK_CLASS, hashtext(current_schema())): one leader per schema, so two
# organizations (or two test runs) sharing a database in schemas of their own do not collide.
LEADER_LOCK_CLASS = 0x6C65_6164  # "lead"
APPLICATION_PREFIX = "creditwatch leader "
# pg_locks shows a two-key advisory lock as (classid, objid) with objsubid 2; objid is an oid
# (unsigned), hashtext a signed int4.
_TRY = text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))")
_UNLOCK = text("SELECT pg_advisory_unlock(:cls, hashtext(current_schema()))")
_OURS = text(
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid = :cls AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
    " AND pid = pg_backend_pid()"
)
_HOLDER = text(
    "SELECT a.application_name, a.backend_start FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
    " AND l.objsubid = 2 AND l.classid = :cls"
    " AND l.objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
)
# The server gives up on a silent leader after idle + interval × count seconds.
_KEEPALIVE = {"idle": 5, "interval": 2, "count": 5}
_USER_TIMEOUT_MS = 15_000


def instance_name() -> str:
    """This process, as `status` shows the leader: host and process id."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class Leadership(Protocol):
    def hold(self) -> bool:
        """Take the lead, or confirm it is still ours; False while another instance leads."""
        ...

    def release(self) -> None:
        """Let go of the lead (a clean stop), so another instance takes over at once."""
        ...


class SoleInstance:
    """SQLite: one instance, always the leader."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        return


class PostgresLeadership:
    """The advisory lock on a dedicated connection, re-checked on every :meth:`hold`."""

    def __init__(self, url: str, instance: str) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._engine: Engine = create_engine(
            parsed,
            poolclass=NullPool,
            connect_args={
                "application_name": (APPLICATION_PREFIX + instance)[:63],
                "connect_timeout": 5,
                "keepalives": 1,
                "keepalives_idle": _KEEPALIVE["idle"],
                "keepalives_interval": _KEEPALIVE["interval"],
                "keepalives_count": _KEEPALIVE["count"],
                # Keepalives are silent while a query waits unanswered: a check stuck on a dead
                # link gives up after this long instead of TCP's ~15 minutes of retransmits.
                "tcp_user_timeout": _USER_TIMEOUT_MS,
            },
        )
        self._connection: Connection | None = None
        self.held = False

    def hold(self) -> bool:
        try:
            if self._connection is None:
                self._connection = self._open()
            if self.held:
                self.held = self._still_ours(self._connection)
            else:
                found = self._connection.execute(_TRY, {"cls": LEADER_LOCK_CLASS}).scalar()
                self.held = bool(found)
        except SQLAlchemyError as exc:
            if self.held:
                log.warning("the leader's database connection failed: %s", type(exc).__name__)
            self._close()
        return self.held

    def release(self) -> None:
        if self._connection is not None and self.held:
            # Closing the connection lets go of the lock anyway.
            with contextlib.suppress(SQLAlchemyError):
                self._connection.execute(_UNLOCK, {"cls": LEADER_LOCK_CLASS})
        self._close()
        self._engine.dispose()

    def _open(self) -> Connection:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # The server side of the keepalives: a leader cut off from the database loses the lock
        # within idle + interval × count seconds, not after the kernel's two hours.
        try:
            for setting in ("idle", "interval", "count"):
                connection.execute(text(f"SET tcp_keepalives_{setting} = {_KEEPALIVE[setting]}"))
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):
                connection.close()
            raise
        return connection

    def _still_ours(self, connection: Connection) -> bool:
        found = connection.execute(_OURS, {"cls": LEADER_LOCK_CLASS}).first()
        return found is not None

    def _close(self) -> None:
        self.held = False
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None


def leadership_for(database_url: str, instance: str | None = None) -> Leadership:
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresLeadership(database_url, instance or instance_name())
    return SoleInstance()


@dataclass(frozen=True)
class Leader:
    instance: str
    since: datetime | None


def current_leader(session: Session) -> Leader | None:
    """The instance that holds the lock now (PostgreSQL), None when none does."""
    row = session.execute(_HOLDER, {"cls": LEADER_LOCK_CLASS}).first()
    if row is None:
        return None
    name = str(row[0] or "")
    since = row[1].astimezone(UTC) if row[1] is not None else None
    return Leader(name.removeprefix(APPLICATION_PREFIX) or "unnamed", since)
