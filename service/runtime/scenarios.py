"""What-if scenarios for `creditwatch simulate`, from its repeatable flags. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from service.domain.credit_walk import ReloadPolicy
from service.domain.money import usd_text, usd_to_nanos
from service.errors import ConfigError, ScenarioError
from service.settings.grammar import parse_money

OFF = ("off", "none", "no")


@dataclass(frozen=True)
class Scenario:
    name: str
    starting_nanos: int | None
    policy: ReloadPolicy | None

    def describe(self) -> str:
        if self.policy is None:
            reload = "no auto-reload"
        else:
            reload = (
                f"reload below {usd_text(self.policy.threshold_nanos)} "
                f"to {usd_text(self.policy.target_nanos)}"
            )
            if self.policy.monthly_limit_nanos is not None:
                reload += f", at most {usd_text(self.policy.monthly_limit_nanos)}/month"
        return reload


def _amount(flag: str, raw: str) -> Decimal | None:
    if raw.lower() in OFF:
        return None
    try:
        return parse_money(flag, raw, "100")
    except ConfigError as exc:
        raise ScenarioError(f"{flag} {exc.problem}; give an amount in USD, or 'off'") from None


def _spread(flag: str, values: Sequence[str] | None, count: int) -> list[str | None]:
    if not values:
        return [None] * count
    if len(values) == 1:
        return [values[0]] * count
    if len(values) != count:
        raise ScenarioError(
            f"{flag} is given {len(values)} times; give it once or once per scenario ({count})"
        )
    return list(values)


_OFF = object()


def _setting(flag: str, raw: str | None, inherited: int | None) -> int | object | None:
    """A flag's value in nano-USD, the inherited one when absent, or _OFF for 'off'."""
    if raw is None:
        return inherited
    value = _amount(flag, raw)
    return _OFF if value is None else usd_to_nanos(value)


def scenarios_from_flags(
    base: ReloadPolicy | None,
    *,
    thresholds: Sequence[str] | None,
    targets: Sequence[str] | None,
    limits: Sequence[str] | None,
    balances: Sequence[str] | None,
) -> list[Scenario]:
    """``base`` (the ledger's current policy) first, then one scenario per flag position.

    A flag not given in a scenario keeps ``base``'s value; 'off' turns auto-reload (threshold
    or target) or the monthly limit off. A flag given once applies to every column, the
    current one included: ``--starting-balance B`` starts the current settings from B too.
    """
    shared = balances[0] if balances is not None and len(balances) == 1 else None
    shared_balance = _amount("--starting-balance", shared) if shared else None
    current = Scenario(
        "current", usd_to_nanos(shared_balance) if shared_balance is not None else None, base
    )
    count = max(len(thresholds or ()), len(targets or ()), len(limits or ()), len(balances or ()))
    out = [current]
    rows = zip(
        _spread("--reload-threshold", thresholds, count),
        _spread("--reload-to", targets, count),
        _spread("--monthly-limit", limits, count),
        _spread("--starting-balance", balances, count),
        strict=True,
    )
    for index, (threshold_raw, target_raw, limit_raw, balance_raw) in enumerate(rows, start=1):
        threshold = _setting(
            "--reload-threshold", threshold_raw, base.threshold_nanos if base else None
        )
        target = _setting("--reload-to", target_raw, base.target_nanos if base else None)
        limit = _setting("--monthly-limit", limit_raw, base.monthly_limit_nanos if base else None)
        balance = _amount("--starting-balance", balance_raw) if balance_raw else None
        policy = None
        if threshold is not _OFF and target is not _OFF and (threshold, target) != (None, None):
            if not isinstance(threshold, int) or not isinstance(target, int):
                raise ScenarioError(
                    f"scenario {index}: give both --reload-threshold and --reload-to "
                    "(no auto-reload is configured to take the other from)"
                )
            if target <= threshold:
                raise ScenarioError(
                    f"scenario {index}: --reload-to must be above --reload-threshold"
                )
            policy = ReloadPolicy(threshold, target, limit if isinstance(limit, int) else None)
        out.append(
            Scenario(
                f"scenario {index}",
                usd_to_nanos(balance) if balance is not None else None,
                policy,
            )
        )
    return out
