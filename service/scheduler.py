"""The daemon: APScheduler runs a cycle every poll interval until SIGTERM/SIGINT.

SIGHUP re-reads the settings (a bad new file keeps the old settings and logs why). With
``NOTIFY_SOCKET`` set, systemd is told READY=1 once the first schedule is in place; with
``WATCHDOG_USEC`` set, a scheduler job sends WATCHDOG=1 at half that period, so a process whose
scheduler has died stops pinging and systemd restarts it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import DBAPIError

from service.config import Settings, format_duration
from service.cycle import Runtime
from service.errors import AdminAPIError, ConfigError, CreditwatchError

log = logging.getLogger(__name__)
CYCLE_JOB = "cycle"


def sd_notify(message: str) -> None:
    """Send ``message`` to systemd's notify socket when there is one; never raises."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)


class Daemon:
    def __init__(self, settings: Settings, reload_settings: Callable[[], Settings]) -> None:
        self.runtime = Runtime(settings)
        self.reload_settings = reload_settings
        self.scheduler = BlockingScheduler(timezone=UTC)
        self.lock = threading.Lock()

    def cycle(self) -> None:
        with self.lock:
            runtime = self.runtime
            try:
                result = runtime.cycle(lambda: datetime.now(UTC))
                log.info("%s", result.summary())
            except AdminAPIError as exc:
                log.error("cycle failed, next cycle resumes from the watermark: %s", exc)
            except CreditwatchError as exc:
                log.error("cycle failed: %s", exc)
            except DBAPIError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                log.error("cycle failed, database error: %s", reason)

    def schedule(self) -> None:
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=self.runtime.settings.poll_interval.total_seconds(),
            id=CYCLE_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    def schedule_watchdog(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        if not usec.isdigit() or int(usec) == 0:
            return
        self.scheduler.add_job(
            sd_notify,
            "interval",
            args=["WATCHDOG=1"],
            seconds=max(1.0, int(usec) / 2_000_000),
            id="watchdog",
            replace_existing=True,
        )

    def reload(self) -> None:
        try:
            settings = self.reload_settings()
            runtime = Runtime(settings)
        except (ConfigError, CreditwatchError) as exc:
            log.error("reload refused, keeping the running settings: %s", exc)
            return
        with self.lock:
            old, self.runtime = self.runtime, runtime
        old.close()
        self.schedule()
        log.info("settings reloaded")

    def stop(self) -> None:
        log.info("stopping after the running cycle, if any")
        sd_notify("STOPPING=1")
        self.scheduler.shutdown(wait=True)

    def run(self) -> int:
        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self.stop, daemon=True).start()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self.reload, daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        self.schedule()
        self.schedule_watchdog()
        sd_notify("READY=1")
        log.info(
            "creditwatch running: a cycle every %s",
            format_duration(self.runtime.settings.poll_interval),
        )
        self.scheduler.start()
        self.runtime.close()
        log.info("stopped")
        return 0


def run_daemon(settings: Settings, reload_settings: Callable[[], Settings]) -> int:
    return Daemon(settings, reload_settings).run()
