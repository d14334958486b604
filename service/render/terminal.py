"""Terminal rendering: the status summary and aligned tables. Pure: strings in, lines out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from service.domain.money import usd_text, usd_to_nanos

Money = Callable[[str | None], str]


def status_lines(status: dict[str, Any], unit: Decimal) -> list[str]:
    """`status` for people: :func:`service.runtime.status.build_status`'s object, as lines."""

    def money(text: str | None) -> str:
        return "unknown" if text is None else usd_text(usd_to_nanos(Decimal(text)), unit)

    return [
        *_balance_lines(status, money),
        *_spend_lines(status, money),
        *_budget_lines(status, money),
        *_reconciliation_lines(status, money),
        *_collection_lines(status),
    ]


def _reconciliation_lines(status: dict[str, Any], money: Money) -> list[str]:
    """The newest day reconciled with Anthropic's bill (`creditwatch reconcile`), if any."""
    found = status.get("reconciliation")
    if not found or found["last_reconciled_day"] is None:
        return []
    return [
        f"Billed             {found['last_reconciled_day']}: {money(found['last_day_billed_usd'])}"
        f" billed, {money(found['last_day_estimated_usd'])} estimated; adjustments so far "
        f"{money(found['adjustments_usd'])}"
    ]


def _budget_lines(status: dict[str, Any], money: Money) -> list[str]:
    lines = []
    for budget in status["budgets"]:
        crossed = budget["thresholds_crossed"]
        line = (
            f"Budget {budget['name']:11} {money(budget['spent_usd'])} of "
            f"{money(budget['limit_usd'])} ({budget['percent_of_limit']}%) in "
            f"{budget['period_label']}"
        )
        if budget["scope"] != "org":
            line += f", {budget['scope']}"
        if crossed:
            line += f"; crossed {', '.join(crossed)}"
        lines.append(line)
        lines += [
            f"  {scope} matches no known id or name: no usage counts (renamed upstream?)"
            for scope in budget.get("scope_unknown", [])
        ]
        if budget["forecast_usd"] is not None:
            lines.append(f"  projected {money(budget['forecast_usd'])} by {budget['period_end']}")
    return lines


def _balance_lines(status: dict[str, Any], money: Money) -> list[str]:
    if status["balance_known"]:
        lines = [f"Balance            {money(status['balance_usd'])}"]
    else:
        lines = ["Balance            unknown: set CREDITWATCH_STARTING_BALANCE and _AT, run `once`"]
    credits = status["credits"]
    lines += [
        f"  {lot['kind']:9} {lot['at'][:10]}  {money(lot['remaining_usd'])} left of "
        f"{money(lot['amount_usd'])}, expires {lot['expires_at'][:10]}"
        for lot in credits["lots"]
    ]
    if credits["lots_used_up"]:
        lines.append(f"  ({credits['lots_used_up']} older lot(s) used up)")
    reload = credits["auto_reload"]
    if credits.get("settings_note"):
        lines.append(f"  note: {credits['settings_note']}")
    if reload is None:
        return lines
    limit = reload["monthly_limit_usd"]
    allowance = (
        f", {money(credits['reload_allowance_left_usd'])} of {money(limit)} allowance left"
        if limit is not None
        else ""
    )
    lines.append(
        f"Auto-reload        below {money(reload['threshold_usd'])} to "
        f"{money(reload['to_usd'])}: {credits['reloads_this_month']} this month "
        f"({money(credits['reloaded_this_month_usd'])}){allowance}"
    )
    if credits["blocked_reloads_this_month"]:
        lines.append(
            f"  BLOCKED by the monthly limit {credits['blocked_reloads_this_month']} time(s)"
        )
    return lines


def _spend_lines(status: dict[str, Any], money: Money) -> list[str]:
    spend = status["spend"]
    forecast = status["forecast"]
    lines = [
        f"Spend today        {money(spend['today_usd'])} (UTC)",
        f"Spend this month   {money(spend['month_to_date_usd'])}",
    ]
    if spend["month_to_date_estimated_usd"] != "0.00":
        lines.append(f"  of which estimated {money(spend['month_to_date_estimated_usd'])}")
    if forecast["month_projected_usd"] is not None:
        lines.append(f"Month projected    {money(forecast['month_projected_usd'])}")
    lines.append(f"Last 24 hours      {money(forecast['spend_last_24h_usd'])}")
    if forecast["burn_rate_usd_per_hour"] is not None:
        rate = money(forecast["burn_rate_usd_per_hour"])
        lines.append(f"Burn rate          {rate}/hour (next 24h)")
    if forecast["runway_until"] is not None:
        if forecast["at_zero_now"]:
            lines.append("Runway             NONE: the balance is at zero, API calls would fail")
        else:
            hours = forecast["runway_hours"]
            lines.append(f"Runway             {hours} hours, to {forecast['runway_until']}")
    if forecast["note"]:
        lines.append(f"Forecast           {forecast['note']}")
    return lines


def _collection_lines(status: dict[str, Any]) -> list[str]:
    lines = [
        f"Last collected     {status['last_collected_at'] or 'never'}",
        f"Data until         {status['data_until'] or 'no usage yet'}",
        *_usage_source_lines(status),
    ]
    if status["collection_failing_since"]:
        lines.append(f"Collection FAILING since {status['collection_failing_since']}")
        lines.append(f"  last error: {status['last_error']}")
    lines += [
        f"Unknown model      {u['model']} (priced as {u['priced_as']})"
        for u in status["unknown_models"]
    ]
    outbox = ", ".join(f"{k} {v}" for k, v in status["outbox"].items())
    lines.append(f"Alerts             {outbox}")
    if "leader" in status:
        leader = status["leader"]
        if leader is None:
            lines.append("Leader             none: no instance is running")
        else:
            since = f" (connected {leader['since']})" if leader.get("since") else ""
            lines.append(f"Leader             {leader['instance']}{since}")
    for channel in status.get("channels", []):
        state = (
            f"FAILING since {channel['failing_since']}: "
            + _CHANNEL_TROUBLE.get(channel["failing_reason"], "failing")
            if channel["failing"]
            else (f"last delivery {channel['last_delivery']}")
        )
        lines.append(f"Channel {channel['name']:10} {channel['kind']}, {state}")
    if status.get("channels") and status["outbox"].get("unrouted"):
        lines.append(
            f"  {status['outbox']['unrouted']} alert(s) have no working channel to go to "
            "(creditwatch alerts lists them)"
        )
    if not status.get("channels"):
        lines.append(
            "Channels           none configured: alerts are only listed (creditwatch alerts)"
        )
    return lines


_SOURCE_NAMES = {
    "messages": "usage report",
    "analytics": "Usage and Cost Analytics API, beta",
}


def _usage_source_lines(status: dict[str, Any]) -> list[str]:
    """The source usage is read from, since when after a switch, and (analytics) how fresh the
    API says its data is; a second line when these settings name another source."""
    source = status["usage_source"]
    line = f"Usage source       {source} ({_SOURCE_NAMES.get(source, 'unknown source')})"
    if status["usage_source_since"]:
        line += f" since {status['usage_source_since']}"
    if source == "analytics":
        line += f"; data refreshed {status['data_refreshed_at'] or 'not reported yet'}"
    lines = [line]
    configured = status["usage_source_configured"]
    if configured != source:
        lines.append(
            f"  CREDITWATCH_USAGE_SOURCE={configured} here: the next cycle with these settings "
            f"reads {configured} from the first bucket not yet collected"
        )
    return lines


_CHANNEL_TROUBLE = {
    "refused": "an alert was refused for good",
    "expired": "an alert was given up after 24 h of retries",
    "retrying": "retrying an alert for over an hour",
}


def table_lines(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: Sequence[int] = (0,)
) -> list[str]:
    """``text_columns`` (the first, by default) left-aligned, the others (numbers) right-aligned,
    two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(widths[i]) if i in text_columns else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
