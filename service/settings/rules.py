"""The alert rules from the environment: budgets, balance, runway, spike and the health rules.

Grammars (DESIGN §3):
- ``CREDITWATCH_MONTHLY_BUDGET=500`` with ``CREDITWATCH_ALERT_THRESHOLDS=50,80,100``: the common
  case, one org-wide monthly budget named ``monthly``;
- ``CREDITWATCH_BUDGET_<NAME>=limit=200 period=week thresholds=50,90,100 amounts=150
  forecast=100 tz=Europe/Paris workspace=… api_key=… model=… channels=ops``: more budgets;
  ``thresholds`` and ``forecast`` are percentages of the limit, ``amounts`` absolute USD;
  ``workspace`` and ``api_key`` take an id or a name, quoted when it has spaces
  (``workspace="Claude Code"``); with ``CREDITWATCH_USAGE_SOURCE=analytics`` also ``actor=`` (a
  user's e-mail address, name or id, a service account or API key id) and ``product=``
  (``claude_code``, ``messages_api``, ``message_batches_api``, …), with ``model=`` but not with
  ``workspace=`` or ``api_key=`` (the Analytics API groups by at most 5 dimensions);
- ``CREDITWATCH_LOW_BALANCE=25``, ``CREDITWATCH_RUNWAY_ALERT=3d``,
  ``CREDITWATCH_SPIKE=factor=4 min=20`` (optionally ``days=7``, the baseline's length);
- ``CREDITWATCH_REPEAT_INTERVAL`` (default ``24h``, ``0`` never), ``CREDITWATCH_COLLECTION_ALERT``
  (``30m``), ``CREDITWATCH_EXPIRY_WARNING`` (``14d``), ``CREDITWATCH_DRIFT_ALERT`` (``5``, the
  billed-vs-estimated difference in percent of a day): the health rules are on by default.
Every mistake is a ConfigError naming the variable, the problem and an example.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.domain.money import percent_text
from service.domain.periods import PeriodKind
from service.domain.timefmt import format_duration
from service.errors import ConfigError
from service.settings.grammar import parse_duration, parse_money

ScopeKey = Literal["workspace", "api_key", "model", "actor", "product"]
BUDGET_PREFIX = "CREDITWATCH_BUDGET_"
DEFAULT_THRESHOLDS = (Decimal(50), Decimal(80), Decimal(100))
MAX_PERCENT = Decimal(1000)
DEFAULT_DRIFT_PERCENT = Decimal(5)
_BUDGET_KEYS = {
    "limit",
    "period",
    "tz",
    "thresholds",
    "amounts",
    "forecast",
    "workspace",
    "api_key",
    "model",
    "actor",
    "product",
    "channels",
}
_SCOPE_KEYS: tuple[ScopeKey, ...] = ("workspace", "api_key", "model", "actor", "product")
ATTRIBUTION_SCOPES = ("actor", "product")
"""Scope keys only the Analytics API's attribution answers (``attributed_usage``)."""
_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]*")
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_-]*")
BUDGET_EXAMPLE = "limit=200 period=month thresholds=50,80,100"
SPIKE_EXAMPLE = "factor=4 min=20"


@dataclass(frozen=True)
class BudgetRule:
    """A spend limit per period, in a scope, with the thresholds that alert."""

    name: str
    variable: str
    limit: Decimal
    period: PeriodKind = "month"
    tz: str = "UTC"
    percents: tuple[Decimal, ...] = DEFAULT_THRESHOLDS
    amounts: tuple[Decimal, ...] = ()
    forecast_percents: tuple[Decimal, ...] = ()
    scope: tuple[tuple[ScopeKey, str], ...] = ()
    channels: tuple[str, ...] = ()

    @property
    def attributed(self) -> bool:
        """Scoped by who or what is behind the spend (read from ``attributed_usage``)."""
        return any(key in ATTRIBUTION_SCOPES for key, _ in self.scope)

    @property
    def scope_text(self) -> str:
        """``org``, or ``workspace=Production,model=claude-sonnet-4-5``: part of the identity."""
        return ",".join(f"{key}={value}" for key, value in self.scope) or "org"

    def describe(self) -> str:
        where = "the whole organization" if not self.scope else self.scope_text
        zone = "" if self.tz == "UTC" else f" ({self.tz})"
        parts = [f"{self.limit} USD per {self.period}{zone} for {where}"]
        parts.append("alerts at " + ", ".join(percent_text(p) for p in self.percents))
        if self.amounts:
            parts.append("and at " + ", ".join(f"{a} USD" for a in self.amounts))
        if self.forecast_percents:
            shown = ", ".join(percent_text(p) for p in self.forecast_percents)
            parts.append(f"when the projected {self.period} reaches {shown}")
        if self.channels:
            parts.append("to " + ", ".join(self.channels))
        return "; ".join(parts)


@dataclass(frozen=True)
class SpikeRule:
    """The last hour's spend is at least ``factor`` × the same hour's trailing median."""

    factor: Decimal
    min_usd: Decimal
    days: int = 7

    def describe(self) -> str:
        return (
            f"an hour costing at least {self.factor}× the median of the same hour over the "
            f"last {self.days} days, and at least {self.min_usd} USD"
        )


@dataclass(frozen=True)
class RuleSettings:
    budgets: tuple[BudgetRule, ...] = ()
    low_balance: Decimal | None = None
    runway: timedelta | None = None
    spike: SpikeRule | None = None
    repeat_interval: timedelta | None = timedelta(hours=24)
    collection_alert: timedelta = timedelta(minutes=30)
    expiry_warning: timedelta = timedelta(days=14)
    drift_percent: Decimal = DEFAULT_DRIFT_PERCENT
    known_channels: tuple[str, ...] = field(default=())


Getter = Callable[[str], str | None]


def parse_rules(get: Getter, env: Mapping[str, str], channels: tuple[str, ...]) -> RuleSettings:
    """Every rule the environment configures; ConfigError for the first bad one.

    ``channels`` are the configured channels' names, which budgets may route to.
    """
    budgets = list(_named_budgets(env, channels, get))
    monthly = _monthly_budget(get)
    if monthly is not None:
        if any(b.name == monthly.name for b in budgets):
            raise ConfigError(
                "CREDITWATCH_BUDGET_MONTHLY",
                "names the same budget as CREDITWATCH_MONTHLY_BUDGET; keep one",
                BUDGET_EXAMPLE,
            )
        budgets.insert(0, monthly)
    low = get("CREDITWATCH_LOW_BALANCE")
    runway = get("CREDITWATCH_RUNWAY_ALERT")
    spike = get("CREDITWATCH_SPIKE")
    return RuleSettings(
        budgets=tuple(budgets),
        low_balance=_positive_money("CREDITWATCH_LOW_BALANCE", low, "25") if low else None,
        runway=(
            parse_duration(
                "CREDITWATCH_RUNWAY_ALERT",
                runway,
                "3d",
                minimum=timedelta(hours=1),
                maximum=timedelta(days=90),
            )
            if runway
            else None
        ),
        spike=_parse_spike(spike) if spike else None,
        repeat_interval=_repeat_interval(get("CREDITWATCH_REPEAT_INTERVAL")),
        collection_alert=parse_duration(
            "CREDITWATCH_COLLECTION_ALERT",
            get("CREDITWATCH_COLLECTION_ALERT") or "30m",
            "30m",
            minimum=timedelta(minutes=1),
            maximum=timedelta(days=7),
        ),
        expiry_warning=parse_duration(
            "CREDITWATCH_EXPIRY_WARNING",
            get("CREDITWATCH_EXPIRY_WARNING") or "14d",
            "14d",
            minimum=timedelta(hours=1),
            maximum=timedelta(days=365),
        ),
        drift_percent=_drift_percent(get("CREDITWATCH_DRIFT_ALERT")),
        known_channels=channels,
    )


def describe_rules(rules: RuleSettings) -> list[str]:
    """The effective rules in words, for `check-config`."""
    lines = [f"budget {b.name}: {b.describe()}" for b in rules.budgets]
    if rules.low_balance is not None:
        lines.append(f"low balance: the balance is below {rules.low_balance} USD")
    if rules.runway is not None:
        lines.append(f"runway: the balance reaches zero within {format_duration(rules.runway)}")
    if rules.spike is not None:
        lines.append(f"spike: {rules.spike.describe()}")
    lines.append(
        "health: collection failing for "
        f"{format_duration(rules.collection_alert)}, data stale, an unknown model price, a reload "
        f"blocked or cut by the monthly limit, credits expiring within "
        f"{format_duration(rules.expiry_warning)}, a day's bill differing from the estimate by "
        f"more than {percent_text(rules.drift_percent)}"
    )
    repeat = rules.repeat_interval
    lines.append(
        "conditions that persist repeat every " + format_duration(repeat)
        if repeat
        else "conditions that persist are not repeated"
    )
    return lines


def _monthly_budget(get: Getter) -> BudgetRule | None:
    limit_raw = get("CREDITWATCH_MONTHLY_BUDGET")
    thresholds_raw = get("CREDITWATCH_ALERT_THRESHOLDS")
    if limit_raw is None:
        if thresholds_raw is not None:
            raise ConfigError(
                "CREDITWATCH_ALERT_THRESHOLDS",
                "needs CREDITWATCH_MONTHLY_BUDGET (the limit the percentages are of)",
                "50,80,100",
            )
        return None
    limit = _positive_money("CREDITWATCH_MONTHLY_BUDGET", limit_raw, "500")
    percents = (
        _percents("CREDITWATCH_ALERT_THRESHOLDS", thresholds_raw, "50,80,100")
        if thresholds_raw is not None
        else DEFAULT_THRESHOLDS
    )
    return BudgetRule(
        name="monthly", variable="CREDITWATCH_MONTHLY_BUDGET", limit=limit, percents=percents
    )


def _named_budgets(
    env: Mapping[str, str], channels: tuple[str, ...], get: Getter
) -> list[BudgetRule]:
    default_raw = get("CREDITWATCH_ALERT_THRESHOLDS")
    default = (
        _percents("CREDITWATCH_ALERT_THRESHOLDS", default_raw, "50,80,100")
        if default_raw
        else DEFAULT_THRESHOLDS
    )
    budgets = []
    for variable in sorted(env):
        if not variable.startswith(BUDGET_PREFIX) or not env[variable]:
            continue
        suffix = variable.removeprefix(BUDGET_PREFIX)
        if not _NAME.fullmatch(suffix):
            raise ConfigError(
                variable,
                "the budget's name (after CREDITWATCH_BUDGET_) takes letters, digits and _",
                BUDGET_EXAMPLE,
            )
        budgets.append(parse_budget(variable, suffix.lower(), env[variable], channels, default))
    return budgets


def parse_budget(
    variable: str,
    name: str,
    raw: str,
    channels: tuple[str, ...],
    default_percents: tuple[Decimal, ...],
) -> BudgetRule:
    fields = _fields(variable, raw, _BUDGET_KEYS, BUDGET_EXAMPLE)
    if "limit" not in fields:
        raise ConfigError(variable, "has no limit=", BUDGET_EXAMPLE)
    limit = _positive_money(variable, fields["limit"], BUDGET_EXAMPLE, label="limit")
    period = fields.get("period", "month")
    if period not in get_args(PeriodKind):
        raise ConfigError(variable, f"period={period!r} is not day, week or month", "period=week")
    tz = fields.get("tz", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            variable, f"tz={tz!r} is not an IANA time zone", "tz=America/Los_Angeles"
        ) from None
    percents = (
        _percents(variable, fields["thresholds"], "thresholds=50,80,100", label="thresholds")
        if "thresholds" in fields
        else default_percents
    )
    amounts = (
        tuple(
            _positive_money(variable, item, "amounts=250,400", label="amounts")
            for item in _items(variable, fields["amounts"], "amounts=250,400")
        )
        if "amounts" in fields
        else ()
    )
    forecast = (
        _percents(variable, fields["forecast"], "forecast=100", label="forecast")
        if "forecast" in fields
        else ()
    )
    scope = tuple((key, fields[key]) for key in _SCOPE_KEYS if key in fields)
    attributed = [key for key in ATTRIBUTION_SCOPES if key in fields]
    placed = [key for key in ("workspace", "api_key") if key in fields]
    if attributed and placed:
        raise ConfigError(
            variable,
            f"{attributed[0]}= cannot be combined with {placed[0]}=: the Analytics API "
            "attributes spend to actors and products with at most 5 dimensions, and "
            "workspace and API key do not fit beside them (model= does)",
            f"limit=100 period=month {attributed[0]}=… model=claude-sonnet-4-5",
        )
    routed = (
        tuple(_items(variable, fields["channels"], "channels=ops")) if "channels" in fields else ()
    )
    for channel in routed:
        if not _CHANNEL.fullmatch(channel) or channel not in channels:
            known = ", ".join(channels) or "none"
            raise ConfigError(
                variable,
                f"channels={channel!r} is not a configured channel (configured: {known})",
                "channels=ops  (with CREDITWATCH_CHANNEL_OPS=slack:https://hooks.slack.com/…)",
            )
    return BudgetRule(
        name=name,
        variable=variable,
        limit=limit,
        period=period,  # type: ignore[arg-type]  # checked against PeriodKind above
        tz=tz,
        percents=percents,
        amounts=tuple(sorted(set(amounts))),
        forecast_percents=forecast,
        scope=scope,
        channels=routed,
    )


def _fields(variable: str, raw: str, allowed: set[str], example: str) -> dict[str, str]:
    """``key=value`` tokens separated by white space, a value quoted like a shell word when it
    has spaces (``workspace="Claude Code"``); each key once, every key known."""
    fields: dict[str, str] = {}
    try:
        tokens = shlex.split(raw)
    except ValueError as exc:  # an unclosed quote
        raise ConfigError(variable, f"cannot be read: {exc}", example) from None
    for token in tokens:
        key, equals, value = token.partition("=")
        if not equals or not value:
            raise ConfigError(variable, f"{token!r} is not key=value", example)
        if key not in allowed:
            raise ConfigError(
                variable,
                f"{key!r} is not a known key (use {', '.join(sorted(allowed))})",
                example,
            )
        if key in fields:
            raise ConfigError(variable, f"{key}= is given twice", example)
        fields[key] = value
    return fields


def _items(variable: str, raw: str, example: str) -> list[str]:
    items = raw.split(",")
    if any(not item.strip() for item in items):
        raise ConfigError(variable, f"{raw!r} has an empty item", example)
    return [item.strip() for item in items]


def _percents(
    variable: str, raw: str, example: str, *, label: str | None = None
) -> tuple[Decimal, ...]:
    """Comma-separated percentages, each more than 0 and at most 1000, sorted, unique."""
    prefix = f"{label}=" if label else ""
    values = set()
    for item in _items(variable, raw, example):
        try:
            value = Decimal(item.removesuffix("%"))
        except InvalidOperation:
            raise ConfigError(
                variable, f"{prefix}{raw!r}: {item!r} is not a percentage", example
            ) from None
        if not value.is_finite() or value <= 0 or value > MAX_PERCENT:
            raise ConfigError(
                variable,
                f"{prefix}{raw!r}: {item!r} is not a percentage above 0 and at most 1000",
                example,
            )
        values.add(value.normalize())
    return tuple(sorted(values))


def _positive_money(variable: str, raw: str, example: str, *, label: str | None = None) -> Decimal:
    prefix = f"{label}=" if label else ""
    try:
        value = parse_money(variable, raw, example)
    except ConfigError as exc:
        raise ConfigError(variable, f"{prefix}{exc.problem}", example) from None
    if value == 0:
        raise ConfigError(variable, f"{prefix}{raw!r} must be more than 0", example)
    return value


def _parse_spike(raw: str) -> SpikeRule:
    variable = "CREDITWATCH_SPIKE"
    fields = _fields(variable, raw, {"factor", "min", "days"}, SPIKE_EXAMPLE)
    if "factor" not in fields:
        raise ConfigError(variable, "has no factor=", SPIKE_EXAMPLE)
    try:
        factor = Decimal(fields["factor"])
    except InvalidOperation:
        factor = Decimal("NaN")
    if not factor.is_finite() or not Decimal(1) < factor <= MAX_PERCENT:
        raise ConfigError(
            variable, f"factor={fields['factor']!r} is not a number above 1", SPIKE_EXAMPLE
        )
    minimum = Decimal(0)
    if "min" in fields:
        minimum = parse_money(variable, fields["min"], SPIKE_EXAMPLE)
    days = fields.get("days", "7")
    # The forecast keeps 15 days of hourly history; the baseline fits inside it.
    if not days.isdigit() or not 2 <= int(days) <= 14:
        raise ConfigError(variable, f"days={days!r} is not a whole number from 2 to 14", "days=7")
    return SpikeRule(factor=factor, min_usd=minimum, days=int(days))


def _drift_percent(raw: str | None) -> Decimal:
    """A percentage above 0 and at most 100 (``5`` or ``5%``); the default when unset."""
    if raw is None or not raw.strip():
        return DEFAULT_DRIFT_PERCENT
    variable, example = "CREDITWATCH_DRIFT_ALERT", "5  (percent of the day's bill)"
    try:
        value = Decimal(raw.strip().removesuffix("%"))
    except InvalidOperation:
        raise ConfigError(variable, f"{raw!r} is not a percentage", example) from None
    if not value.is_finite() or not Decimal(0) < value <= Decimal(100):
        raise ConfigError(variable, f"{raw!r} is not a percentage above 0 and at most 100", example)
    return value.normalize()


def _repeat_interval(raw: str | None) -> timedelta | None:
    if raw is None:
        return timedelta(hours=24)
    if raw.strip() == "0":
        return None
    return parse_duration(
        "CREDITWATCH_REPEAT_INTERVAL",
        raw,
        "24h  (or 0: never repeat)",
        minimum=timedelta(minutes=1),
        maximum=timedelta(days=90),
    )
