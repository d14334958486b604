"""The daemon: APScheduler runs the jobs until SIGTERM/SIGINT.

Jobs, each with an explicit id, ``max_instances=1`` and ``coalesce=True`` (a late run is one
run, never a burst): the collection cycle every poll interval, delivery every 5 seconds, the
leadership check every few seconds, reconciliation with Anthropic's bill at start and then
daily (leader only, like the cycle; a reload keeps its schedule), and the watchdog ping under
systemd.

**Leadership.** On PostgreSQL every instance runs the same settings and the one holding the
leader lock (:mod:`service.store.leadership`) collects, evaluates and delivers; the others
check every few seconds and take over when it dies or loses its connection. The lock is
re-checked before each cycle and each delivery pass, and delivery asks between rows: a leader
that loses it stops delivering at once, and a new leader waits two checks before its first
delivery, so the old one has stopped by then (a claim still held by it is not taken before its
lease ends). SQLite has one instance, which always leads.

**Metrics.** With ``CREDITWATCH_METRICS_ADDR`` set, every instance serves ``/metrics`` and
``/healthz`` (:mod:`service.runtime.endpoint`), fed by the ``on_cycle``, ``on_leadership`` and
``on_reload`` hooks and by the ledger.

**Signals.** SIGHUP re-reads the settings: the new rules, channels, log level and masking apply
at once; a bad file keeps the running settings, logs "reload refused" with the reason and raises
``health:config_refused`` (resolved by the next good reload). SIGTERM/SIGINT stop taking work:
a running cycle ends after the chunk it is booking, a delivery pass after the row it is
sending; then the scheduler stops and the process exits 0.

With ``NOTIFY_SOCKET`` set, systemd is told READY=1 once the jobs are in place, STATUS= after
each cycle (its outcome, or that another instance leads) and WATCHDOG=1 at half of
``WATCHDOG_USEC`` while the cycle loop makes progress (a cycle stuck for a whole watchdog
period stops the pings, and systemd restarts the daemon). Every failure in a job or in the
reload is one log line (the traceback at DEBUG), never an uncaught exception in a thread.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import SchedulerNotRunningError
from sqlalchemy.exc import SQLAlchemyError

from service.alerts.facts import ConfigRefusal
from service.domain.timefmt import format_duration
from service.runtime.cycle import Runtime
from service.runtime.endpoint import start_endpoint
from service.runtime.failures import describe_failure, log_failure
from service.runtime.logs import configure_logging
from service.runtime.reconciling import reconcile_due
from service.runtime.systemd import sd_notify, watchdog_period
from service.settings import Settings
from service.settings.channels import NO_CHANNEL
from service.store.leadership import Leadership, SoleInstance, leadership_for

log = logging.getLogger(__name__)
CYCLE_JOB = "cycle"
DELIVERY_JOB = "delivery"
LEADERSHIP_JOB = "leadership"
WATCHDOG_JOB = "watchdog"
RECONCILE_JOB = "reconcile"
# Reconcile runs daily; the job looks every hour whether a run is due, so an instance that takes
# the lead (or a failed run) reconciles within the hour, not a day later.
RECONCILE_SECONDS = 24 * 3600.0
RECONCILE_CHECK_SECONDS = 3600.0
# The outbox is worked every few seconds, whatever the poll interval: an alert waits for no cycle.
DELIVERY_SECONDS = 5.0
# How often a follower tries for the lead (and the leader confirms it): a dead leader is
# replaced within two poll intervals, whatever the interval.
MAX_LEADERSHIP_SECONDS = 5.0
MIN_LEADERSHIP_SECONDS = 0.5

Clock = Callable[[], datetime]


def apply_logging(settings: Settings) -> None:
    configure_logging(settings.log.level, settings.log.format, settings.secrets)


def leadership_seconds(settings: Settings) -> float:
    poll = settings.collection.poll_interval.total_seconds()
    return max(MIN_LEADERSHIP_SECONDS, min(MAX_LEADERSHIP_SECONDS, poll / 4))


class Daemon:
    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        *,
        make_runtime: Callable[[Settings], Runtime] = Runtime,
        clock: Clock = lambda: datetime.now(UTC),
        leadership: Leadership | None = None,
    ) -> None:
        self.make_runtime = make_runtime
        self.runtime = make_runtime(settings)
        self.reload_settings = reload_settings
        self.clock = clock
        self.leadership = leadership or leadership_for(settings.ledger.database_url)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.lock = threading.Lock()
        self.delivery_lock = threading.Lock()
        self.leadership_lock = threading.Lock()
        self.reload_lock = threading.Lock()
        self.stopping = threading.Event()
        self.leading = False
        self.led_since = 0.0  # time.monotonic() when this instance took the lead
        self.in_cycle = False
        self.reconciled_at: float | None = None  # time.monotonic() of the last reconcile
        self.progress_at = time.monotonic()  # the running cycle's last step (the watchdog's)
        self.on_leadership: Callable[[bool], None] = lambda leading: None
        self.on_cycle: Callable[[float, BaseException | None], None] = lambda s, e: None
        self.on_reload: Callable[[bool], None] = lambda applied: None
        self.watch_progress(self.runtime)

    # Leadership.

    def check_leadership(self) -> bool:
        """Take or confirm the lead; log and tell systemd when it changes hands."""
        with self.leadership_lock:
            was = self.leading
            try:
                now_leading = self.leadership.hold()
            except Exception as exc:  # noqa: BLE001 - a check that fails is not the lead
                log_failure(log, "leadership check failed", exc)
                now_leading = False
            self.leading = now_leading and not self.stopping.is_set()
            if self.leading and not was:
                self.led_since = time.monotonic()
                self.reconciled_at = None  # a new leader reconciles at its next hourly look
                log.info(
                    "leading: this instance collects, evaluates and delivers",
                    extra={"fields": {"event": "leadership", "leading": True}},
                )
                sd_notify("STATUS=leading")
            elif was and not self.leading and not self.stopping.is_set():
                log.warning(
                    "no longer leading: another instance collects and delivers",
                    extra={"fields": {"event": "leadership", "leading": False}},
                )
                sd_notify("STATUS=standby: another instance leads")
            elif not was and not self.leading and not self.stopping.is_set():
                sd_notify("STATUS=standby: another instance leads")
            if was != self.leading:
                self.on_leadership(self.leading)
            return self.leading

    def _may_deliver(self) -> bool:
        """Leading, and for long enough that a previous leader has stopped delivering."""
        if not self.leading:
            return False
        grace = 2 * leadership_seconds(self.runtime.settings)
        return self.led_since == 0.0 or time.monotonic() - self.led_since >= grace

    def _should_stop_delivering(self) -> bool:
        return self.stopping.is_set() or not self.leading

    # Jobs.

    def cycle(self) -> None:
        if self.stopping.is_set() or not self.check_leadership():
            return
        with self.lock:
            began = self.progress_at = time.monotonic()
            self.in_cycle = True
            try:
                result = self.runtime.cycle(self.clock, should_stop=self._progress)
            except Exception as exc:  # noqa: BLE001 - one line per failure; the next cycle runs
                log_failure(log, "cycle failed", exc)
                sd_notify(f"STATUS=cycle failed: {describe_failure(exc).message[:200]}")
                self.on_cycle(time.monotonic() - began, exc)
                return
            finally:
                self.in_cycle = False
            self.on_cycle(time.monotonic() - began, None)
            summary = result.summary()
            if result.collection.interrupted:
                summary += " (stopped between chunks; the next run goes on)"
            log.info("%s", summary, extra={"fields": result.fields()})
            sd_notify(f"STATUS={summary[:200]}")
        if result.alerts and not self.stopping.is_set():
            # New alerts go out now, not at the next delivery tick. Delivered from this job's
            # own thread: a job that calls back into the scheduler (modify_job) can deadlock
            # with a shutdown that is waiting for it.
            self.deliver()

    def reconcile(self) -> None:
        """Compare finished days with the bill and book the differences (the leader only), when
        a day has passed since this instance last did, or it has just taken the lead."""
        if self.stopping.is_set() or not self.check_leadership():
            return
        last = self.reconciled_at
        if last is not None and time.monotonic() - last < RECONCILE_SECONDS:
            # Within the day, only when a reconciled day's charges changed since (its
            # adjustment would count the change twice until the next daily run).
            try:
                runtime = self.runtime
                due = reconcile_due(runtime.engine, runtime.settings.collection.bucket_width)
            except SQLAlchemyError as exc:
                log_failure(log, "checking for days to reconcile again failed", exc)
                return
            if not due:
                return
        with self.lock:
            try:
                result = self.runtime.reconcile(self.clock)
            except Exception as exc:  # noqa: BLE001 - one line per failure; the next hour retries
                log_failure(log, "reconcile failed", exc)
                return
            if not result.waiting:
                self.reconciled_at = time.monotonic()
            log.info("%s", result.summary(), extra={"fields": result.fields()})
        if result.alerts and not self.stopping.is_set():
            self.deliver()

    def deliver(self) -> None:
        if self.stopping.is_set() or not self._may_deliver():
            return
        with self.delivery_lock:
            try:
                report = self.runtime.deliver(self._should_stop_delivering)
            except Exception as exc:  # noqa: BLE001 - one line; the next tick tries again
                log_failure(log, "delivery failed", exc)
                return
            if report.sent or report.retried or report.failed:
                log.info("%s", report.summary())

    def schedule(self) -> None:
        settings = self.runtime.settings
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=settings.collection.poll_interval.total_seconds(),
            id=CYCLE_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            # A cycle late by up to a poll interval still runs; later than that, the next one
            # does the same work (collection resumes from the watermark).
            misfire_grace_time=max(1, int(settings.collection.poll_interval.total_seconds())),
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
        if self.scheduler.get_job(RECONCILE_JOB) is None:
            self.scheduler.add_job(
                self.reconcile,
                "interval",
                seconds=RECONCILE_CHECK_SECONDS,
                id=RECONCILE_JOB,
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
                # A day's late run still runs; the re-checked days make up for a missed one.
                misfire_grace_time=int(RECONCILE_CHECK_SECONDS),
            )
        every = leadership_seconds(settings)
        self.scheduler.add_job(
            self.check_leadership,
            "interval",
            seconds=every,
            id=LEADERSHIP_JOB,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(every)),
            replace_existing=True,
        )

    def schedule_watchdog(self) -> None:
        period = watchdog_period()
        if period is None:
            return
        self.scheduler.add_job(
            self.ping_watchdog,
            "interval",
            args=[2 * period],
            seconds=period,
            id=WATCHDOG_JOB,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    def ping_watchdog(self, timeout: float) -> None:
        """WATCHDOG=1, unless the running cycle has made no progress for ``timeout`` seconds.

        A cycle moves on at every chunk it books; one stuck for a whole watchdog period (a
        hung socket, a deadlock) stops the pings, and systemd kills and restarts the daemon.
        """
        if self.stalled(timeout):
            log.error(
                "the cycle has made no progress for %s: not telling systemd it is alive",
                format_duration(timedelta(seconds=time.monotonic() - self.progress_at)),
            )
            return
        sd_notify("WATCHDOG=1")

    def stalled(self, timeout: float) -> bool:
        return self.in_cycle and time.monotonic() - self.progress_at > timeout

    def _progress(self) -> bool:
        """The collector's question between chunks: stop? Answering it is progress. A leader
        that lost the lock stops too: its successor collects from here."""
        self.progress_at = time.monotonic()
        return self.stopping.is_set() or not self.leading

    def reload(self) -> None:
        """Apply the settings file again; one reload at a time, so the last SIGHUP's file wins."""
        with self.reload_lock:
            if not self.stopping.is_set():
                self._reload()

    def _reload(self) -> None:
        try:
            settings = self.reload_settings()
            runtime = self.make_runtime(settings)
        except Exception as exc:  # noqa: BLE001 - a refused reload keeps the daemon running
            log_failure(log, "reload refused, keeping the running settings", exc)
            self.runtime.config_refused = ConfigRefusal(self.clock(), describe_failure(exc).message)
            self.on_reload(False)
            # Said now, not at the next cycle: the operator is looking. Run by the scheduler
            # (this is a signal's thread, which a stop would not wait for).
            self.run_cycle_now()
            return
        self.watch_progress(runtime)
        with self.lock, self.delivery_lock:
            old, self.runtime = self.runtime, runtime
        old.close()
        if settings.ledger.database_url != old.settings.ledger.database_url:
            with self.leadership_lock:
                self.leadership.release()
                self.leadership = leadership_for(settings.ledger.database_url)
                if self.leading:
                    self.on_leadership(False)
                self.leading = False
        apply_logging(settings)
        for warning in settings.warnings:
            log.warning("%s", warning)
        self.schedule()
        log.info("settings reloaded", extra={"fields": {"event": "reload", "outcome": "applied"}})
        self.on_reload(True)

    def run_cycle_now(self) -> None:
        """Move the cycle job's next run to now (never called from a job: see ``cycle``)."""
        try:
            self.scheduler.modify_job(CYCLE_JOB, next_run_time=datetime.now(UTC))
        except (JobLookupError, SchedulerNotRunningError):  # stopping, or not yet scheduled
            return

    def watch_progress(self, runtime: Runtime) -> None:
        """Every API answer is progress for the watchdog: a cycle waiting out rate limits for
        minutes is alive; one whose requests get no answer at all is not."""
        http = getattr(runtime, "http", None)  # a stand-in runtime (tests) may have none
        if http is None:
            return
        hooks = http.event_hooks
        hooks.setdefault("response", []).append(lambda _response: self._progress())
        http.event_hooks = hooks

    def stop(self) -> None:
        """Ask the daemon to stop; any number of signals ask once (a second Ctrl-C)."""
        self.stopping.set()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT, then stop taking work, finish what is in flight (the
        chunk being booked, the row being sent) and return 0.

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
        # Before the first cycle, so /healthz answers during a long first backfill.
        endpoint = start_endpoint(self)
        self.check_leadership()
        # The sole instance (SQLite) delivers at once. On PostgreSQL even a fresh start waits
        # its two checks: the lock may have been freed by a cut connection whose old holder is
        # still alive and, until its next check, delivering.
        if self.leading and isinstance(self.leadership, SoleInstance):
            self.led_since = 0.0
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
        log.info("stopping: finishing what is in flight")
        sd_notify("STOPPING=1")
        self.scheduler.shutdown(wait=True)
        # The lead goes first: a follower takes over at once, whatever the rest of the stop does.
        with self.leadership_lock:
            self.leadership.release()
            self.leading = False
        if endpoint is not None:
            endpoint.stop()
        with self.reload_lock:  # a reload in progress finishes (or sees the stop) first
            self.runtime.close()
        log.info("stopped")
        return 0
