"""`creditwatch demo`: the whole service on this machine, with no Anthropic account.

The story, the same whatever today's date: a simulated organization with three days of history
(backfilled by the first cycle, which crosses a budget threshold), then a usage spike that
drains the credit balance below the low-balance level and then below the auto-reload threshold;
the simulated auto-reload tops it up and the low-balance alert resolves. Every alert reaches a
local Slack-style sink, a signed-webhook sink and an SMTP sink, which print a line each; at the
end the demo prints what `creditwatch status` would.

How it runs: the real daemon (:class:`service.runtime.daemon.Daemon`: the APScheduler jobs, the
cycle, the outbox worker, the SIGINT/SIGTERM stop) against the built-in Admin API simulator,
with SQLite in a temporary folder. Only time is simulated. The daemon already takes its clock as
a parameter and the scheduler fires on real seconds, so no loop of our own is needed: a
:class:`ManualClock` shared by the simulator and the daemon moves one simulated hour on at the
start of each cycle (the runtime the daemon is given does that, and narrates the cycle), and
the demo stops the daemon once the last cycle's alerts have been delivered. A day of usage
plays out in well under a minute.

The story starts at 06:00 UTC on a recent Wednesday whose three days of history and the day
after lie in one calendar month and before now: the synthetic workload follows a weekday rhythm,
and the monthly budget would start again at a month's first hour.

The demo reads its usage from the source ``CREDITWATCH_USAGE_SOURCE`` names in the environment or
the env file (``messages`` unless set), as the daemon would; every other setting is the demo's
own. On ``analytics`` the simulated bill of an hour comes an hour after it ends, so each cycle
shows the newest hour estimated and the one before it billed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import httpx
from apscheduler.jobstores.base import JobLookupError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.admin_api.retry import RetryPolicy
from service.commands.args import positive_int_arg, seconds_arg
from service.commands.context import CommandContext, say
from service.commands.registry import Command
from service.domain.money import usd_text, usd_to_nanos
from service.domain.periods import month_of
from service.domain.timefmt import rfc3339
from service.domain.usage import BucketWidth, UsageSourceName
from service.render.terminal import status_lines
from service.runtime.cycle import CycleResult, Runtime
from service.runtime.daemon import CYCLE_JOB, Daemon
from service.runtime.logs import configure_logging, fields_of
from service.runtime.status import build_status
from service.settings import Settings, load_settings
from service.settings.environment import read_env_file
from service.simulator import ManualClock, SimulatorServer, Spike, Workload, WorkloadSpec
from service.simulator.sinks import SlackSink, SmtpSink, WebhookSink
from service.store.credit_sync import current_walk
from service.store.engine import make_engine, read_transaction
from service.store.outbox import outbox_counts
from service.store.tables import USAGE

DEMO_KEY = "sk-ant-admin01-demo-not-a-real-key"
DEMO_SECRET = "whsec_ZGVtby13ZWJob29rLXNpZ25pbmcta2V5LTAwMQ=="  # noqa: S105 - the demo sink's own
HISTORY = timedelta(days=3)
STEP = timedelta(hours=1)
# The default cycles and some room: the story must have ended by now (and stay in one month).
STORY = timedelta(hours=24)
SPIKE_AFTER, SPIKE_HOURS, SPIKE_TIMES = timedelta(hours=3), 4, 8
STARTING_BALANCE = Decimal(650)
RELOAD_BELOW, RELOAD_TO, RELOAD_LIMIT = Decimal(100), Decimal(500), Decimal(1000)
# Between the reload threshold and its target, and farther from the threshold than a spike
# hour costs: it alerts as the balance falls, a cycle before the reload, and clears after it.
LOW_BALANCE = Decimal(250)
MONTHLY_BUDGET, BUDGET_THRESHOLDS = Decimal(600), "50,100"
RUNWAY_ALERT = "2d"
SPIKE_RULE = "factor=3 min=10 days=3"
DEFAULT_CYCLES, DEFAULT_INTERVAL = 10, 2.0
# After the last cycle, how long its alerts may take to reach the sinks before the demo ends.
DRAIN_SECONDS = 15.0
# The variables the demo takes from the environment and the env file: the contract's names.
FROM_THE_USER = ("CREDITWATCH_USAGE_SOURCE",)
# The Analytics API's hourly cost rows lag the usage: an hour is estimated, then billed.
COST_DELAY = timedelta(hours=1)
BILL_HOURS_TOLD = 2  # each cycle tells the hour just billed and the one still estimated


def interval_arg(raw: str) -> float:
    """Seconds between cycles, from 1 (the shortest poll interval the settings take)."""
    value = seconds_arg(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is shorter than 1 second")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cycles",
        type=positive_int_arg,
        default=DEFAULT_CYCLES,
        help=f"cycles to run, one simulated hour each (default {DEFAULT_CYCLES}; 0: until Ctrl-C)",
    )
    parser.add_argument(
        "--interval",
        type=interval_arg,
        default=DEFAULT_INTERVAL,
        help=f"real seconds between cycles (default {DEFAULT_INTERVAL:g})",
    )


def story_start(now: datetime) -> datetime:
    """06:00 UTC on the latest Wednesday whose history (``HISTORY`` before it) and story
    (``STORY`` after it) lie in one calendar month and have ended by ``now``."""
    day = now.astimezone(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    start = day - timedelta(days=(day.weekday() - 2) % 7)
    while start + STORY > now or month_of(start - HISTORY) != month_of(start + STORY):
        start -= timedelta(weeks=1)
    return start


def demo_workload(start: datetime) -> Workload:
    spike = Spike(start + SPIKE_AFTER, start + SPIKE_AFTER + SPIKE_HOURS * STEP, SPIKE_TIMES)
    # The cost delay is read only by the Analytics API's cost endpoint: the legacy story is
    # the same with or without it.
    return Workload(WorkloadSpec(seed=7, start=start - HISTORY, spike=spike, cost_delay=COST_DELAY))


def user_choices(ctx: CommandContext) -> dict[str, str]:
    """``FROM_THE_USER`` as ``--env-file`` (default ``./.env``) and the environment state them,
    the environment winning. Raises ConfigError when an explicit env file cannot be read."""
    explicit = ctx.args.env_file is not None
    env = read_env_file(ctx.args.env_file if explicit else Path(".env"), explicit=explicit)
    env.update(os.environ if ctx.environ is None else ctx.environ)
    return {name: env[name] for name in FROM_THE_USER if name in env}


def demo_environment(
    start: datetime,
    interval: float,
    *,
    folder: Path,
    simulator: SimulatorServer,
    slack: SlackSink,
    webhook: WebhookSink,
    mailbox: SmtpSink,
    chosen: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The demo's settings, as an env file would state them, with ``chosen`` (the user's
    ``FROM_THE_USER`` values, see :func:`user_choices`) on top."""
    opening = rfc3339(start - HISTORY)
    return {
        "ANTHROPIC_ADMIN_KEY": DEMO_KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": f"sqlite:///{folder / 'creditwatch.db'}",
        "CREDITWATCH_POLL_INTERVAL": f"{round(interval * 1000)}ms",
        "CREDITWATCH_BACKFILL_FROM": opening,
        "CREDITWATCH_STARTING_BALANCE": str(STARTING_BALANCE),
        "CREDITWATCH_STARTING_BALANCE_AT": opening,
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD": str(RELOAD_BELOW),
        "CREDITWATCH_AUTO_RELOAD_TO": str(RELOAD_TO),
        "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": str(RELOAD_LIMIT),
        "CREDITWATCH_MONTHLY_BUDGET": str(MONTHLY_BUDGET),
        "CREDITWATCH_ALERT_THRESHOLDS": BUDGET_THRESHOLDS,
        "CREDITWATCH_LOW_BALANCE": str(LOW_BALANCE),
        "CREDITWATCH_RUNWAY_ALERT": RUNWAY_ALERT,
        "CREDITWATCH_SPIKE": SPIKE_RULE,
        "CREDITWATCH_SLACK_WEBHOOK_URL": slack.url,
        "CREDITWATCH_WEBHOOK_URL": webhook.url,
        "CREDITWATCH_WEBHOOK_SECRET": DEMO_SECRET,
        "CREDITWATCH_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}?tls=off",
        "CREDITWATCH_EMAIL_FROM": "creditwatch-demo@localhost.localdomain",
        "CREDITWATCH_EMAIL_TO": "you@localhost.localdomain",
        **{name: value for name, value in (chosen or {}).items() if name in FROM_THE_USER},
    }


class HourCost(NamedTuple):
    cost_nanos: int
    billed: bool


def hour_costs(session: Session, width: BucketWidth, since: datetime) -> dict[datetime, HourCost]:
    """Each bucket from ``since``: its cost, and whether the Analytics API's hourly bill for it
    has been booked. Priority-tier rows never get a bill (no public price), so a bucket counts
    as billed when any of its rows is."""
    rows = session.execute(
        select(USAGE.c.bucket_start, func.sum(USAGE.c.cost_nanos), func.count(USAGE.c.billed_nanos))
        .where(USAGE.c.bucket_width == width, USAGE.c.bucket_start >= since)
        .group_by(USAGE.c.bucket_start)
    )
    return {start: HourCost(int(cost), bool(billed)) for start, cost, billed in rows}


def _billing(hours: dict[datetime, HourCost]) -> str:
    """The newest hours, each billed or estimated so far (the bill comes ``COST_DELAY`` after
    the hour ends; until then the hour is priced from its usage, still growing)."""
    return "; ".join(
        f"{hour:%H:%M} billed {usd_text(cost.cost_nanos)}"
        if cost.billed
        else f"{hour:%H:%M} estimated {usd_text(cost.cost_nanos)} so far"
        for hour, cost in sorted(hours.items())
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _hours(span: timedelta) -> str:
    return _count(int(span / timedelta(hours=1)), "hour")


def _usd(amount: Decimal) -> str:
    return usd_text(usd_to_nanos(amount))


class _Narrator:
    """Prints for every thread (the cycles, the sinks): whole lines, and the real seconds from
    the start to the first alert that reaches a sink. ``gone`` is set when the reader has left
    (``creditwatch demo | head``); nothing is printed after that."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.gone = threading.Event()
        self._lock = threading.Lock()
        self._first_alert: float | None = None

    def say(self, line: str = "") -> None:
        with self._lock:
            self._print(line)

    def sink(self, line: str) -> None:
        with self._lock:
            self._print(f"    {line}")
            if self._first_alert is None:
                self._first_alert = seconds = time.monotonic() - self.started
                self._print(
                    f"    (the first alert reached a sink {seconds:.1f} s after the demo started)"
                )

    def _print(self, line: str) -> None:
        if self.gone.is_set():
            return
        try:
            say(line)
        except BrokenPipeError:
            # A sink's thread would print a traceback: stdout goes nowhere from now on, as
            # main() does, and the demo stops (it ends with the BrokenPipeError main() maps).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            self.gone.set()


class _Story:
    """Simulated time and what each cycle did; ``finished`` is set after the last cycle."""

    def __init__(self, clock: ManualClock, cycles: int, narrator: _Narrator) -> None:
        self.clock = clock
        self.cycles = cycles
        self.narrator = narrator
        self.finished = threading.Event()
        self.done = 0
        self._reloads_told: set[datetime] = set()

    def begin(self) -> int:
        """The number of the cycle about to run; from the second on, an hour has passed."""
        if self.done:
            self.clock.advance(STEP)
        self.done += 1
        return self.done

    def end(self, number: int) -> None:
        if self.cycles and number >= self.cycles:
            self.finished.set()

    def tell(self, number: int, result: CycleResult, runtime: Runtime) -> None:
        c, now = result.collection, self.clock()
        balance = usd_text(result.balance_nanos) if result.balance_nanos is not None else "unknown"
        if number == 1:
            what = (
                f"backfilled {c.window_start:%a %Y-%m-%d %H:%M} .. {c.window_end:%a %H:%M}: "
                f"{c.rows_fetched:,} usage rows, {usd_text(c.booking.spend_nanos)}"
            )
        else:
            b = c.booking
            what = (
                f"{c.rows_fetched:,} rows ({b.new_rows} new, {b.changed_rows} grew), "
                f"+{usd_text(b.spend_nanos)}"
            )
        self.narrator.say(f"[cycle {number:2}] {now:%a %H:%M} UTC  {what}; balance {balance}")
        settings = runtime.settings
        width = settings.collection.bucket_width
        with read_transaction(runtime.engine) as session:
            walked = current_walk(session, width, settings.ledger.credit_terms(), now)
            hours = (
                hour_costs(session, width, now - BILL_HOURS_TOLD * STEP)
                if settings.collection.usage_source == "analytics"
                else {}
            )
        if hours:
            self.narrator.say(f"    hourly cost (Analytics API): {_billing(hours)}")
        for reload in walked.reloads if walked is not None else []:
            # A reload is re-derived as its bucket grows: told once, when it first appears.
            if reload.at not in self._reloads_told:
                self._reloads_told.add(reload.at)
                self.narrator.say(
                    f"    auto-reload (simulated) at {reload.at:%H:%M} UTC: the balance fell "
                    f"below {_usd(RELOAD_BELOW)}, reloaded to {_usd(RELOAD_TO)}"
                )


class _StoryRuntime(Runtime):
    """The daemon's runtime, with each cycle an hour of simulated time, told as it ends."""

    def __init__(
        self,
        settings: Settings,
        story: _Story,
        *,
        transport: httpx.BaseTransport | None,
        retry: RetryPolicy,
    ) -> None:
        super().__init__(settings, transport=transport, retry=retry, clock=story.clock)
        self.story = story

    def cycle(
        self, clock: Callable[[], datetime], should_stop: Callable[[], bool] = lambda: False
    ) -> CycleResult:
        number = self.story.begin()
        try:
            result = super().cycle(clock, should_stop)
            self.story.tell(number, result, self)
            return result
        finally:
            self.story.end(number)


def _stop_after_the_story(daemon: Daemon, story: _Story) -> None:
    """Once the last cycle is told and its alerts delivered, stop the daemon (as SIGTERM
    would); at once when nobody reads the story any more; returns at once if something else
    stops it first."""
    while not story.finished.wait(0.1):
        if daemon.stopping.is_set():
            return
        if story.narrator.gone.is_set():
            daemon.stop()
            return
    try:
        daemon.scheduler.pause_job(CYCLE_JOB)
    except JobLookupError:  # the scheduler shut down meanwhile (a Ctrl-C at the very end)
        return
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline and not daemon.stopping.is_set():
        with read_transaction(daemon.runtime.engine) as session:
            counts = outbox_counts(session)
        if counts["pending"] + counts["sending"] == 0:
            break
        time.sleep(0.1)
    daemon.stop()


def _run_daemon(daemon: Daemon) -> None:
    """``daemon.run()``, then the signal handlers it replaced are back (a Ctrl-C afterwards
    interrupts the demo as usual)."""
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.getsignal(number) for number in handled}
    try:
        daemon.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _configure_logging(settings: Settings) -> None:
    """Warnings and errors only, secrets masked, and no line for a delivery that succeeded (a
    partial one, such as mail some recipients refused, is a warning): the sinks print each one
    already."""
    configure_logging("WARNING", "text", settings.secrets)

    def worth_a_line(record: logging.LogRecord) -> bool:
        # A cycle longer than a short --interval on a busy machine makes APScheduler skip a
        # tick with a warning; the next tick runs the next simulated hour: the same story.
        if record.name.startswith("apscheduler.") and record.levelno < logging.ERROR:
            return False
        return fields_of(record).get("outcome") != "sent"

    for handler in logging.getLogger().handlers:
        handler.addFilter(worth_a_line)


def _introduce(
    narrator: _Narrator,
    start: datetime,
    args: argparse.Namespace,
    *,
    simulator: SimulatorServer,
    folder: Path,
    ports: tuple[int, int, int],
    source: UsageSourceName,
) -> None:
    cycles = f"{args.cycles} cycles" if args.cycles else "until Ctrl-C"
    spike = start + SPIKE_AFTER
    thresholds = ", ".join(f"{p}%" for p in BUDGET_THRESHOLDS.split(","))
    lines = [
        "creditwatch demo: the daemon against a simulated organization, all on this machine",
        f"  Admin API simulator  {simulator.base_url} (ledger: {folder / 'creditwatch.db'})",
        *(
            [
                "  usage source         analytics: the Usage and Cost Analytics API (beta); each "
                f"hour's bill comes {_hours(COST_DELAY)} after it ends"
            ]
            if source == "analytics"
            else []
        ),
        f"  alert sinks          Slack-style 127.0.0.1:{ports[0]}, signed webhook "
        f"127.0.0.1:{ports[1]}, SMTP 127.0.0.1:{ports[2]}",
        f"  credit balance       {_usd(STARTING_BALANCE)} on {start - HISTORY:%a %Y-%m-%d %H:%M} "
        f"UTC; auto-reload below {_usd(RELOAD_BELOW)} to {_usd(RELOAD_TO)} (at most "
        f"{_usd(RELOAD_LIMIT)} a month)",
        f"  rules                monthly budget {_usd(MONTHLY_BUDGET)} ({thresholds}), balance "
        f"below {_usd(LOW_BALANCE)}, runway under {RUNWAY_ALERT}, an hour at 3x its usual",
        f"  simulated time       3 days of history to {start:%a %Y-%m-%d %H:%M} UTC, then one hour "
        f"per cycle, a cycle every {args.interval:g} s ({cycles})",
        f"  the script           usage spikes {SPIKE_TIMES}x from {spike:%H:%M} to "
        f"{spike + SPIKE_HOURS * STEP:%H:%M} UTC",
        "",
    ]
    for line in lines:
        narrator.say(line)


def demo(ctx: CommandContext) -> int:
    """Run the story for ``--cycles`` cycles ``--interval`` seconds apart, then show status."""
    narrator = _Narrator()
    configure_logging("WARNING", "text", [DEMO_KEY, DEMO_SECRET])
    chosen = user_choices(ctx)
    start = story_start(ctx.now())
    clock = ManualClock(start)
    with (
        tempfile.TemporaryDirectory(prefix="creditwatch-demo-") as tmp,
        SimulatorServer(demo_workload(start), admin_key=DEMO_KEY, clock=clock) as simulator,
        SlackSink(narrator.sink) as slack,
        WebhookSink(DEMO_SECRET, narrator.sink) as webhook,
        SmtpSink(narrator.sink) as mailbox,
    ):
        folder = Path(tmp)
        environment = demo_environment(
            start,
            ctx.args.interval,
            folder=folder,
            simulator=simulator,
            slack=slack,
            webhook=webhook,
            mailbox=mailbox,
            chosen=chosen,
        )
        settings = load_settings(environment, None, demo=True, now=start)
        _configure_logging(settings)
        _introduce(
            narrator,
            start,
            ctx.args,
            simulator=simulator,
            folder=folder,
            ports=(slack.port, webhook.port, mailbox.port),
            source=settings.collection.usage_source,
        )
        story = _Story(clock, ctx.args.cycles, narrator)

        def make_runtime(settings: Settings) -> Runtime:
            return _StoryRuntime(settings, story, transport=ctx.transport, retry=ctx.retry)

        daemon = Daemon(settings, lambda: settings, make_runtime=make_runtime, clock=clock)
        threading.Thread(target=_stop_after_the_story, args=(daemon, story), daemon=True).start()
        _run_daemon(daemon)
        seconds = time.monotonic() - narrator.started
        ran = f"{_count(story.done, 'cycle')} in {seconds:.0f} s"
        narrator.say()
        narrator.say(
            (f"{ran}." if story.finished.is_set() else f"Stopped after {ran}.")
            + f" `creditwatch status` at {clock():%a %Y-%m-%d %H:%M} UTC (simulated):"
        )
        engine = make_engine(settings.ledger.database_url)
        try:
            with read_transaction(engine) as session:
                shown = build_status(session, settings, clock())
        finally:
            engine.dispose()
        for line in status_lines(shown, settings.ledger.credit_unit_usd):
            narrator.say(f"  {line}")
    if narrator.gone.is_set():
        raise BrokenPipeError("the demo's reader left")
    return 0


COMMAND = Command(
    "demo",
    configure,
    demo,
    description=(
        "A day of a simulated organization in under a minute: backfill, a budget alert, a "
        "spike, a low balance, the simulated auto-reload and the alert resolving, delivered "
        "to local Slack-style, webhook and SMTP sinks; then the status."
    ),
)
