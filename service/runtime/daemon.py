"""The daemon: APScheduler runs a cycle every poll interval until SIGTERM/SIGINT.

SIGHUP re-reads the settings: the new ones (log level, format and secret masking included) apply
at once; a bad file keeps the running settings and logs "reload refused" with the reason. With
``NOTIFY_SOCKET`` set, systemd is told READY=1 once the first schedule is in place; with
``WATCHDOG_USEC`` set, a scheduler job sends WATCHDOG=1 at half that period, so a process whose
scheduler has died stops pinging and systemd restarts it. Every failure in a job or in the
reload is one log line (the traceback at DEBUG), never an uncaught exception in a thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from service.domain.timefmt import format_duration
from service.runtime.cycle import Runtime
from service.runtime.failures import log_failure
from service.runtime.logs import configure_logging
from service.runtime.systemd import sd_notify, watchdog_period
from service.settings import Settings
from service.settings.channels import NO_CHANNEL

log = logging.getLogger(__name__)
CYCLE_JOB = "cycle"
DELIVERY_JOB = "delivery"
WATCHDOG_JOB = "watchdog"
# The outbox is worked every few seconds, whatever the poll interval: an alert waits for no cycle.
DELIVERY_SECONDS = 5.0

Clock = Callable[[], datetime]


def apply_logging(settings: Settings) -> None:
    configure_logging(settings.log.level, settings.log.format, settings.secrets)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        *,
        make_runtime: Callable[[Settings], Runtime] = Runtime,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.make_runtime = make_runtime
        self.runtime = make_runtime(settings)
        self.reload_settings = reload_settings
        self.clock = clock
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.lock = threading.Lock()
        self.delivery_lock = threading.Lock()
        self.stopping = threading.Event()

    def cycle(self) -> None:
        with self.lock:
            try:
                result = self.runtime.cycle(self.clock)
            except Exception as exc:  # noqa: BLE001 - one line per failure; the next cycle runs
                log_failure(log, "cycle failed", exc)
                return
            log.info("%s", result.summary())
        if result.alerts and not self.stopping.is_set():
            # New alerts go out now, not at the next delivery tick. Delivered from this job's
            # own thread: a job that calls back into the scheduler (modify_job) can deadlock
            # with a shutdown that is waiting for it.
            self.deliver()

    def deliver(self) -> None:
        with self.delivery_lock:
            try:
                report = self.runtime.deliver(self.stopping.is_set)
            except Exception as exc:  # noqa: BLE001 - one line; the next tick tries again
                log_failure(log, "delivery failed", exc)
                return
            if report.sent or report.retried or report.failed:
                log.info("%s", report.summary())

    def schedule(self) -> None:
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=self.runtime.settings.collection.poll_interval.total_seconds(),
            id=CYCLE_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        self.scheduler.add_job(
            self.deliver,
            "interval",
            seconds=DELIVERY_SECONDS,
            id=DELIVERY_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            # A tick that could not run on time is simply the next one.
            misfire_grace_time=int(DELIVERY_SECONDS),
            replace_existing=True,
        )

    def schedule_watchdog(self) -> None:
        period = watchdog_period()
        if period is None:
            return
        self.scheduler.add_job(
            sd_notify,
            "interval",
            args=["WATCHDOG=1"],
            seconds=period,
            id=WATCHDOG_JOB,
            replace_existing=True,
        )

    def reload(self) -> None:
        try:
            settings = self.reload_settings()
            runtime = self.make_runtime(settings)
        except Exception as exc:  # noqa: BLE001 - a refused reload keeps the daemon running
            log_failure(log, "reload refused, keeping the running settings", exc)
            return
        with self.lock, self.delivery_lock:
            old, self.runtime = self.runtime, runtime
        old.close()
        apply_logging(settings)
        for warning in settings.warnings:
            log.warning("%s", warning)
        self.schedule()
        log.info("settings reloaded")

    def stop(self) -> None:
        """Ask the daemon to stop; any number of signals ask once (a second Ctrl-C)."""
        self.stopping.set()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT, then finish the running cycle and return 0.

        The scheduler runs in the background and the main thread waits for a stop: a signal
        that arrives before the scheduler has started still stops it, and shutting down happens
        once, here, not in the signal's thread.
        """

        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self.stop, daemon=True).start()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self.reload, daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        self.schedule()
        self.schedule_watchdog()
        self.scheduler.start()
        sd_notify("READY=1")
        settings = self.runtime.settings
        log.info(
            "creditwatch running: a cycle every %s, alerts to %s",
            format_duration(settings.collection.poll_interval),
            ", ".join(settings.channels.names) or "no channel",
        )
        if not settings.channels.channels:
            log.warning("%s", NO_CHANNEL)
        self.stopping.wait()
        log.info("stopping after the running cycle, if any")
        sd_notify("STOPPING=1")
        self.scheduler.shutdown(wait=True)
        self.runtime.close()
        log.info("stopped")
        return 0
