"""Who uses the simulated organization: workspaces, API keys and their (key, model) usage streams.

Everything is derived from the seed. IDs depend only on (seed, index), so a test can read a key's
id from one workload and use it in the spike of another with the same seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from service.simulator.prices import cents_per_unit

M64 = (1 << 64) - 1
_ID_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_WORKSPACE_NAMES = (
    "Production",
    "Staging",
    "Research",
    "Support Bot",
    "Data Science",
    "Internal Tools",
    "Marketing",
    "Evaluations",
)
_KEY_ROLES = ("backend", "batch-jobs", "chat-frontend", "etl", "agent", "ci", "notebook", "search")
CONSOLE_SHARE = Fraction(1, 20)
"""Share of spend that comes from the Console playground (``api_key_id: null``)."""


def mix64(value: int) -> int:
    """SplitMix64's finaliser: a cheap, well-spread 64-bit hash of an integer."""
    value &= M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & M64
    return value ^ (value >> 31)


def make_id(prefix: str, seed: int, kind: int, index: int) -> str:
    """A stable Anthropic-looking id such as ``apikey_01Rj2N8SVvo6BePZj99NhmiT``."""
    value = mix64(seed * 0x9E3779B97F4A7C15 + kind * 0x632BE59BD9B4E019 + index)
    chars = []
    for _ in range(22):
        value, digit = divmod(value, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[digit])
        if value < len(_ID_ALPHABET):
            value = mix64(value + index + 1)
    return f"{prefix}_01{''.join(chars)}"


@dataclass(frozen=True)
class Workspace:
    """A workspace as ``/v1/organizations/workspaces`` lists it (the default one is not listed)."""

    id: str
    name: str
    created_at: datetime
    display_color: str


@dataclass(frozen=True)
class ApiKey:
    """An API key; ``workspace_id`` is None for a key in the default workspace."""

    id: str
    name: str
    workspace_id: str | None
    created_at: datetime
    partial_key_hint: str
    created_by: str
    service_account_id: str | None


@dataclass(frozen=True)
class Stream:
    """One (API key or Console, model) pair with its fixed tier, context window and geography.

    ``base`` is the hourly count of each usage counter at full daytime activity, before noise;
    the counters are in ``prices`` order (uncached, 5m write, 1h write, read, output, web search).
    """

    index: int
    api_key_id: str | None
    workspace_id: str | None
    model: str
    service_tier: str
    context_window: str
    inference_geo: str
    account_id: str | None
    service_account_id: str | None
    seed: int
    base: tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Catalog:
    """The organization's workspaces, keys and usage streams."""

    workspaces: tuple[Workspace, ...]
    api_keys: tuple[ApiKey, ...]
    streams: tuple[Stream, ...]


def build_catalog(
    *,
    seed: int,
    start: datetime,
    n_workspaces: int,
    n_keys: int,
    models: tuple[str, ...],
    hourly_spend_usd: Fraction,
) -> Catalog:
    """Lay out the organization and size every stream so a busy hour costs ``hourly_spend_usd``."""
    rng = random.Random(seed)
    workspaces = tuple(
        Workspace(
            id=make_id("wrkspc", seed, 1, i),
            name=_WORKSPACE_NAMES[i % len(_WORKSPACE_NAMES)]
            + (f" {i // len(_WORKSPACE_NAMES) + 1}" if i >= len(_WORKSPACE_NAMES) else ""),
            created_at=start - timedelta(days=90 - i),
            display_color=f"#{mix64(seed + i) & 0xFFFFFF:06x}",
        )
        for i in range(n_workspaces)
    )
    owner = make_id("user", seed, 3, 0)
    keys: list[ApiKey] = []
    for i in range(n_keys):
        # The first keys go to the default workspace, then one to each named workspace, so
        # every workspace has usage whatever the seed (when there are enough keys).
        slot = i if i <= n_workspaces else rng.randrange(n_workspaces + 1)
        key_id = make_id("apikey", seed, 2, i)
        keys.append(
            ApiKey(
                id=key_id,
                name=f"{_KEY_ROLES[i % len(_KEY_ROLES)]}-{i}",
                workspace_id=workspaces[slot - 1].id if slot else None,
                created_at=start - timedelta(days=60, hours=i),
                partial_key_hint=f"sk-ant-api03-{key_id[9:12]}...{key_id[-4:]}AA",
                created_by=owner,
                service_account_id=make_id("svac", seed, 4, i) if i % 3 == 2 else None,
            )
        )
    return Catalog(
        tuple(workspaces),
        tuple(keys),
        _build_streams(
            rng,
            seed=seed,
            keys=keys,
            models=models,
            console_user=owner,
            hourly_spend_usd=hourly_spend_usd,
        ),
    )


def _build_streams(
    rng: random.Random,
    *,
    seed: int,
    keys: list[ApiKey],
    models: tuple[str, ...],
    console_user: str,
    hourly_spend_usd: Fraction,
) -> tuple[Stream, ...]:
    owners: list[ApiKey | None] = [*keys, None]
    key_weights = [Fraction(min(rng.paretovariate(1.3), 40.0)) for _ in keys]
    total_key_weight = sum(key_weights, Fraction(0))
    layouts: list[tuple[ApiKey | None, str, str, str, str, Fraction]] = []
    for owner, weight in zip(owners, [*key_weights, Fraction(0)], strict=True):
        prefs = [Fraction(rng.randint(20, 100)) for _ in models]
        for model, pref in zip(models, prefs, strict=True):
            if owner is None:
                share = CONSOLE_SHARE / len(models) if keys else Fraction(1, len(models))
                tier, window, geo = "standard", "0-200k", "global"
            else:
                share = (1 - CONSOLE_SHARE) * weight / total_key_weight * pref / sum(prefs)
                tier, window, geo = _fixed_dimensions(rng, model)
            layouts.append((owner, model, tier, window, geo, share))
    streams = []
    for index, (owner, model, tier, window, geo, share) in enumerate(layouts):
        streams.append(
            Stream(
                index=index,
                api_key_id=owner.id if owner else None,
                workspace_id=owner.workspace_id if owner else None,
                model=model,
                service_tier=tier,
                context_window=window,
                inference_geo=geo,
                account_id=None if owner else console_user,
                service_account_id=owner.service_account_id if owner else None,
                seed=mix64(seed ^ (index + 1) * 0xD1B54A32D192ED03),
                base=_size_stream(rng, hourly_spend_usd * share, (model, tier, window, geo)),
            )
        )
    return tuple(streams)


def _fixed_dimensions(rng: random.Random, model: str) -> tuple[str, str, str]:
    roll = rng.random()
    tier = "priority" if roll < 0.04 else ("batch" if roll < 0.2 else "standard")
    long_capable = model.startswith(("claude-sonnet-4-5", "claude-sonnet-4-2"))
    window = "200k-1M" if long_capable and rng.random() < 0.3 else "0-200k"
    geo = "us" if rng.random() < 0.2 else "global"
    return tier, window, geo


def _size_stream(
    rng: random.Random, spend_usd: Fraction, price_class: tuple[str, str, str, str]
) -> tuple[int, int, int, int, int, int]:
    """Hourly counters whose list price is about ``spend_usd``, with a per-stream token mix."""
    caching = rng.random() < 0.7
    ratios = (
        Fraction(rng.randint(150, 800), 100),
        Fraction(rng.randint(5, 100), 100) if caching else Fraction(0),
        Fraction(rng.randint(5, 50), 100) if caching and rng.random() < 0.3 else Fraction(0),
        Fraction(rng.randint(200, 2000), 100) if caching else Fraction(0),
        Fraction(1),
        Fraction(1, rng.randint(2000, 20000)) if rng.random() < 0.2 else Fraction(0),
    )
    cents = cents_per_unit(*price_class)
    cost_per_output_token = sum(
        (r * Fraction(c) / 100 for r, c in zip(ratios, cents, strict=True)), Fraction(0)
    )
    output = max(int(spend_usd / cost_per_output_token), 40)
    counts = [int(output * r) for r in ratios]
    counts[0] = max(counts[0], 80)
    return (counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
