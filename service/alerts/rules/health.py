"""Health rules, on by default (silence is the failure users fear most):

- collection failing (API or database) for longer than ``CREDITWATCH_COLLECTION_ALERT``;
- data stale: the newest bucket the API returned (empty buckets count: a quiet night is not
  staleness) lags now by more than the bucket width plus the API's usual delay;
- an unknown model price, one condition per model, resolved when the price book learns it;
- a reload blocked or cut by the monthly limit: one event per month, keyed by the month (the
  walk's reload rows are re-derived every cycle, so their ids are not stable);
- credits expiring within ``CREDITWATCH_EXPIRY_WARNING``: one event per lot;
- a channel failing permanently (its last delivery refused for good): one condition per channel,
  sent to the other channels, resolved when a delivery to it succeeds again.
"""

from __future__ import annotations

from datetime import timedelta

from service.alerts.facts import Facts
from service.alerts.model import Content, Finding, Identity
from service.domain.money import usd_text
from service.domain.timefmt import format_duration, rfc3339
from service.settings.rules import RuleSettings

COLLECTION = "health:collection_failing"
STALE = "health:data_stale"
UNKNOWN_MODEL = "health:unknown_model"
RELOAD_BLOCKED = "health:reload_blocked"
CREDITS_EXPIRING = "health:credits_expiring"
CHANNEL_FAILING = "health:channel_failing"
CONFIG_REFUSED = "health:config_refused"
# Anthropic: usage appears about five minutes after a request, sometimes later.
API_DELAY = timedelta(minutes=15)
# Rules that report only what holds: a condition they stop reporting has cleared.
ENUMERATING = frozenset({UNKNOWN_MODEL, CHANNEL_FAILING})


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    return [
        *_collection(rules, facts),
        *_stale(facts),
        *_unknown_models(facts),
        *_reload_blocked(facts),
        *_credits_expiring(facts),
        *_channels_failing(facts),
        *_config_refused(facts),
    ]


_CHANNEL_TROUBLE = {
    "refused": "refused an alert for good",
    "expired": "failed to take an alert for 24 hours (given up)",
    "retrying": "has been failing to take an alert for over an hour (still retrying)",
}


def _channels_failing(facts: Facts) -> list[Finding]:
    found = []
    for failure in facts.failing_channels:
        name = failure.name
        if name not in facts.channels:
            continue
        trouble = _CHANNEL_TROUBLE.get(failure.reason, "is failing")
        since = f" since {rfc3339(failure.since)}" if failure.since else ""
        reason = f" Last error: {failure.error}" if failure.error else ""
        found.append(
            Finding(
                Identity(CHANNEL_FAILING, f"channel={name}", "", ""),
                Content(
                    severity="critical",
                    title=f"Alerts are not reaching channel {name}: it {trouble}",
                    summary=(
                        f"Channel {name} {trouble}{since}; alerts for it are not arriving "
                        f"(`creditwatch alerts` lists them).{reason} Fix its settings and run "
                        f"`creditwatch test-alert --channel {name}`."
                    ),
                    rule_name="channel failing",
                    exclude_channels=(name,),
                ),
                persistent=True,
            )
        )
    return found


def _config_refused(facts: Facts) -> list[Finding]:
    refusal = facts.config_refused
    identity = Identity(CONFIG_REFUSED, "org", "", "")
    if refusal is None:
        content = Content(
            severity="info",
            title="The settings were reloaded",
            summary="The edited settings were valid and are the running ones now.",
            rule_name="settings refused",
        )
        return [Finding(identity, content, persistent=True, holds=False)]
    content = Content(
        severity="warning",
        title=f"Edited settings refused: {refusal.reason}",
        summary=(
            f"The settings re-read at {rfc3339(refusal.at)} were refused, so creditwatch runs "
            f"on the ones it had: {refusal.reason}. Fix the file, then `creditwatch "
            "check-config` and `systemctl reload creditwatch`."
        ),
        rule_name="settings refused",
    )
    return [Finding(identity, content, persistent=True)]


def _collection(rules: RuleSettings, facts: Facts) -> list[Finding]:
    state = facts.collection
    if state is None:
        return []
    since = state.failing_since
    holds = since is not None and facts.now - since >= rules.collection_alert
    identity = Identity(COLLECTION, "org", "", format_duration(rules.collection_alert))
    if holds and since is not None:
        content = Content(
            severity="critical",
            title=(
                f"Collection failing for {format_duration(facts.now - since)}: {state.last_error}"
            ),
            summary=(
                f"No usage has been collected since {rfc3339(since)}; the balance and budgets "
                f"are only as current as the last success. Last error: {state.last_error}"
            ),
            rule_name="collection failing",
        )
    else:
        last = rfc3339(state.last_success_at) if state.last_success_at else "never"
        content = Content(
            severity="info",
            title="Collection works again",
            summary=f"Usage was collected at {last}.",
            rule_name="collection failing",
        )
    return [Finding(identity, content, persistent=True, holds=holds)]


def _stale(facts: Facts) -> list[Finding]:
    state = facts.collection
    if state is None or state.failing_since is not None or state.newest_bucket_start is None:
        return []
    newest_end = state.newest_bucket_start + state.bucket
    lag = facts.now - newest_end
    allowed = state.bucket + API_DELAY
    holds = lag > allowed
    identity = Identity(STALE, "org", "", "")
    if holds:
        content = Content(
            severity="warning",
            title=f"Usage data is stale: the newest bucket ended {format_duration(lag)} ago",
            summary=(
                f"The Admin API answers, but its newest bucket ended at {rfc3339(newest_end)}, "
                f"{format_duration(lag)} ago (more than {format_duration(allowed)}); spend after "
                "it is not seen yet."
            ),
            rule_name="data stale",
        )
    else:
        content = Content(
            severity="info",
            title="Usage data is current again",
            summary=f"The newest bucket ended at {rfc3339(newest_end)}.",
            rule_name="data stale",
        )
    return [Finding(identity, content, persistent=True, holds=holds)]


def _unknown_models(facts: Facts) -> list[Finding]:
    return [
        Finding(
            Identity(UNKNOWN_MODEL, f"model={model}", "", ""),
            Content(
                severity="warning",
                title=f"Unknown model price: {model} (priced as {priced_as})",
                summary=(
                    f"The price book does not know {model}; its usage is priced as {priced_as} "
                    "and marked estimated. Add it to CREDITWATCH_PRICES_FILE, or upgrade."
                ),
                rule_name="unknown model",
            ),
            persistent=True,
        )
        for model, priced_as in facts.unknown_models
    ]


def _reload_blocked(facts: Facts) -> list[Finding]:
    if not facts.reload_blocks:
        return []
    first = facts.reload_blocks[0]
    wanted = sum(b.wanted_nanos for b in facts.reload_blocks)
    granted = sum(b.granted_nanos for b in facts.reload_blocks)
    cut = "blocked" if first.granted_nanos == 0 else "cut"
    return [
        Finding(
            Identity(RELOAD_BLOCKED, "org", facts.month_label, ""),
            Content(
                severity="critical",
                title=(
                    f"Auto-reload {cut} by the monthly limit at {rfc3339(first.at)}: "
                    f"{usd_text(first.granted_nanos)} of {usd_text(first.wanted_nanos)}"
                ),
                summary=(
                    f"The monthly auto-reload limit {cut} a reload at {rfc3339(first.at)}; in "
                    f"{facts.month_label} reloads wanted {usd_text(wanted)} and got "
                    f"{usd_text(granted)}. The balance can reach zero before the 1st."
                ),
                rule_name="reload blocked",
                value_nanos=first.granted_nanos,
                threshold_nanos=first.wanted_nanos,
                period_label=facts.month_label,
            ),
        )
    ]


def _credits_expiring(facts: Facts) -> list[Finding]:
    return [
        Finding(
            Identity(CREDITS_EXPIRING, f"lot={lot.key}", "", ""),
            Content(
                severity="warning",
                title=(
                    f"{usd_text(lot.remaining_nanos)} of credits expire at "
                    f"{rfc3339(lot.expires_at)}"
                ),
                summary=(
                    f"The {lot.kind} lot bought at {rfc3339(lot.bought_at)} still holds "
                    f"{usd_text(lot.remaining_nanos)}, which expires at "
                    f"{rfc3339(lot.expires_at)} (in {format_duration(lot.expires_at - facts.now)})."
                ),
                rule_name="credits expiring",
                value_nanos=lot.remaining_nanos,
            ),
        )
        for lot in facts.expiring_lots
    ]
