"""The price book: shipped rates, model matching, modifiers, estimates and the price file format."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from service.domain.money import usd_to_nanos
from service.domain.usage import TokenCounts, UsageKey
from service.errors import PriceBookError
from service.pricing import PriceBook
from service.pricing.rates import Rates

DATA = Path(__file__).resolve().parents[1] / "data"
AUG_2025 = datetime(2025, 8, 1, tzinfo=UTC)
JAN_2026 = datetime(2026, 1, 1, tzinfo=UTC)
ONE_MILLION_EACH = TokenCounts(1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 0)


@functools.cache
def shipped() -> PriceBook:
    return PriceBook.load()


def key(
    model: str | None,
    at: datetime = JAN_2026,
    *,
    tier: str | None = "standard",
    context_window: str | None = "0-200k",
    geo: str | None = None,
) -> UsageKey:
    return UsageKey(at, "1d", model, "apikey_01", "wrkspc_01", tier, context_window, geo)


def counts_from_result(result: dict[str, Any]) -> TokenCounts:
    """Map an Admin API usage result (as in Anthropic's reference) to TokenCounts."""
    return TokenCounts(
        uncached_input_tokens=result["uncached_input_tokens"],
        cache_creation_5m_tokens=result["cache_creation"]["ephemeral_5m_input_tokens"],
        cache_creation_1h_tokens=result["cache_creation"]["ephemeral_1h_input_tokens"],
        cache_read_tokens=result["cache_read_input_tokens"],
        output_tokens=result["output_tokens"],
        web_search_requests=result["server_tool_use"]["web_search_requests"],
    )


# The result rows of usage_report_messages.2025.json and .2026.json, verbatim.
EXAMPLE_2025: dict[str, Any] = {
    "uncached_input_tokens": 1500,
    "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
    "cache_read_input_tokens": 200,
    "output_tokens": 500,
    "server_tool_use": {"web_search_requests": 10},
    "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
    "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
    "model": "claude-sonnet-4-20250514",
    "service_tier": "standard",
    "context_window": "0-200k",
}
EXAMPLE_2026: dict[str, Any] = {
    **EXAMPLE_2025,
    "account_id": "user_01WCz1FkmYMm4gnmykNKUu3Q",
    "inference_geo": "global",
    "model": "claude-opus-4-6",
    "service_account_id": "svac_01Hk3R9TWxq7CfQak00OiVw4",
}


def test_anthropic_2025_example_prices_exactly() -> None:
    """Anthropic's documented Sonnet 4 row costs exactly $0.119935, with no estimate."""
    row = EXAMPLE_2025
    priced = shipped().price(
        key(str(row["model"]), AUG_2025, tier="standard", context_window="0-200k"),
        counts_from_result(row),
    )
    # (1500*3 + 500*3.75 + 1000*6 + 200*0.30 + 500*15) / 1e6 + 10 * 0.01
    assert priced.cost_usd == Decimal("0.119935")
    assert (priced.estimated, priced.unknown_model, priced.priced_as, priced.reasons) == (
        False,
        False,
        "claude-sonnet-4",
        (),
    )


@pytest.mark.parametrize(
    ("geo", "expected"),
    [
        # (1500*5 + 500*6.25 + 1000*10 + 200*0.50 + 500*25) / 1e6 + 10 * 0.01
        ("global", Decimal("0.133225")),
        # the same tokens x 1.1 for US-only inference; web search is not multiplied
        ("us", Decimal("0.1365475")),
    ],
)
def test_anthropic_2026_example_prices_exactly(geo: str, expected: Decimal) -> None:
    """Anthropic's 2026 Opus 4.6 row prices exactly, with the US-geo multiplier only when asked."""
    row = EXAMPLE_2026
    priced = shipped().price(key(str(row["model"]), AUG_2025, geo=geo), counts_from_result(row))
    assert priced.cost_usd == expected
    assert not priced.estimated
    assert priced.priced_as == "claude-opus-4-6"


@pytest.mark.parametrize(
    ("model", "rates"),
    [
        ("claude-opus-4-5", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-4-6", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-4-7", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-4-8", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-5", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-5-5", ("4", "20", "5", "8", "0.20")),
        ("claude-opus-4-1", ("15", "75", "18.75", "30", "1.50")),
        ("claude-opus-4", ("15", "75", "18.75", "30", "1.50")),
        ("claude-3-opus", ("15", "75", "18.75", "30", "1.50")),
        ("claude-sonnet-5", ("2", "10", "2.50", "4", "0.20")),
        ("claude-sonnet-5-5", ("2", "10", "2.50", "4", "0.20")),
        ("claude-sonnet-4-6", ("3", "15", "3.75", "6", "0.30")),
        ("claude-sonnet-4-5", ("3", "15", "3.75", "6", "0.30")),
        ("claude-sonnet-4", ("3", "15", "3.75", "6", "0.30")),
        ("claude-3-7-sonnet", ("3", "15", "3.75", "6", "0.30")),
        ("claude-haiku-4-5", ("1", "5", "1.25", "2", "0.10")),
        ("claude-3-5-haiku", ("0.80", "4", "1", "1.60", "0.08")),
        ("claude-3-haiku", ("0.25", "1.25", "0.30", "0.50", "0.03")),
        ("claude-fable-5", ("10", "50", "12.50", "20", "1")),
        ("claude-mythos-5", ("10", "50", "12.50", "20", "1")),
        ("claude-mythos-5-1", ("10", "50", "12.50", "20", "0.25")),
        ("claude-3-5-sonnet", ("3", "15", "3.75", "6", "0.30")),
        ("claude-haiku-5-5", ("0.10", "0.50", "0.125", "0.20", "0.01")),
    ],
)
def test_shipped_book_has_every_listed_rate(model: str, rates: tuple[str, ...]) -> None:
    """Each model of DESIGN §1's table carries its list rates (input, output, 5m, 1h, read)."""
    found = shipped().rates_for(model, JAN_2026, service_tier="standard")
    got = (found.input, found.output, found.cache_write_5m, found.cache_write_1h, found.cache_read)
    assert got == tuple(Decimal(r) for r in rates)
    assert found.priced_as == model
    assert not found.unknown_model
    assert found.web_search_per_1000 == Decimal(10)


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-5-5", "claude-sonnet-5-5"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-mythos-5-1", "claude-mythos-5-1"),
        ("claude-mythos-5-20260101", "claude-mythos-5"),
    ],
)
def test_longest_prefix_on_dash_boundary(model: str, priced_as: str) -> None:
    """Dated and aliased ids match the longest known prefix, and are not unknown."""
    rates = shipped().rates_for(model, JAN_2026)
    assert (rates.priced_as, rates.unknown_model, rates.estimated) == (priced_as, False, False)


@pytest.mark.parametrize(
    ("at", "cache_read"),
    [
        (datetime(2026, 10, 6, tzinfo=UTC), Decimal("0.20")),
        (datetime(2026, 10, 6, 23, 59, tzinfo=UTC), Decimal("0.20")),
        (datetime(2026, 10, 7, 1, 0, tzinfo=timezone(timedelta(hours=2))), Decimal("0.20")),
        (datetime(2026, 10, 7, tzinfo=UTC), Decimal("0.10")),
        (datetime(2027, 3, 1, tzinfo=UTC), Decimal("0.10")),
    ],
)
def test_sonnet_5_5_cache_read_changes_on_its_effective_date(
    at: datetime, cache_read: Decimal
) -> None:
    """The entry in effect on the bucket's UTC date wins: 0.20 until 2026-10-06, 0.10 after."""
    priced = shipped().price(key("claude-sonnet-5-5", at), TokenCounts(cache_read_tokens=1_000_000))
    assert priced.cost_usd == cache_read


def test_bucket_before_every_entry_uses_the_oldest() -> None:
    """Usage older than a model's first price entry is priced by that entry, not left at zero."""
    rates = shipped().rates_for("claude-3-opus", datetime(2020, 1, 1, tzinfo=UTC))
    assert rates.output == Decimal(75)


def test_batch_halves_every_token_price_but_not_web_search() -> None:
    """Batch is 50% off input, output and cache rates; web search still costs $10 per 1,000."""
    book = shipped()
    standard = book.price(key("claude-sonnet-4"), ONE_MILLION_EACH)
    batch = book.price(key("claude-sonnet-4", tier="batch"), ONE_MILLION_EACH)
    assert standard.cost_usd == Decimal("3") + Decimal("3.75") + 6 + Decimal("0.30") + 15
    assert batch.cost_usd == standard.cost_usd / 2
    assert not batch.estimated
    searches = TokenCounts(web_search_requests=1000)
    assert book.price(key("claude-sonnet-4", tier="batch"), searches).cost_usd == 10


def test_batch_stacks_with_us_geo_and_long_context() -> None:
    """Modifiers multiply: batch x US geo on Opus 4.6, batch on Sonnet 4.5's long-context rates."""
    book = shipped()
    opus = book.rates_for("claude-opus-4-6", JAN_2026, service_tier="batch", inference_geo="us")
    assert (opus.input, opus.output, opus.cache_read) == (
        Decimal("2.75"),
        Decimal("13.75"),
        Decimal("0.275"),
    )
    sonnet = book.rates_for(
        "claude-sonnet-4-5", JAN_2026, service_tier="batch", context_window="200k-1M"
    )
    assert (sonnet.input, sonnet.output, sonnet.cache_write_1h) == (
        Decimal(3),
        Decimal("11.25"),
        Decimal(6),
    )


@pytest.mark.parametrize(
    ("model", "multiplied"),
    [
        ("claude-opus-4-6", True),
        ("claude-opus-4-7", True),
        ("claude-opus-4-8", True),
        ("claude-opus-5", True),
        ("claude-opus-5-5", True),
        ("claude-sonnet-4-6", True),
        ("claude-sonnet-5", True),
        ("claude-sonnet-5-5", True),
        ("claude-haiku-5-5", True),
        ("claude-fable-5", True),
        ("claude-mythos-5", True),
        ("claude-mythos-5-1", True),
        ("claude-opus-4-5", False),
        ("claude-opus-4-1", False),
        ("claude-sonnet-4-5-20250929", False),
        ("claude-sonnet-4", False),
        ("claude-haiku-4-5", False),
        ("claude-3-5-sonnet", False),
    ],
)
def test_us_geo_multiplier_only_on_claude_4_6_and_later(model: str, multiplied: bool) -> None:
    """`inference_geo: us` costs 1.1x on Claude 4.6 and later models, and nothing extra before."""
    book = shipped()
    base = book.price(key(model, geo="global"), ONE_MILLION_EACH).cost_usd
    us = book.price(key(model, geo="us"), ONE_MILLION_EACH).cost_usd
    assert us == (base * Decimal("1.1") if multiplied else base)


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"])
def test_long_context_sonnet_4_and_4_5(model: str) -> None:
    """Sonnet 4 and 4.5 rows with context_window 200k-1M charge 6/22.50 and their cache rates."""
    rates = shipped().rates_for(model, JAN_2026, context_window="200k-1M")
    assert (
        rates.input,
        rates.output,
        rates.cache_write_5m,
        rates.cache_write_1h,
        rates.cache_read,
    ) == (Decimal(6), Decimal("22.50"), Decimal("7.50"), Decimal(12), Decimal("0.60"))
    assert not rates.estimated


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-6", "claude-sonnet-5"])
def test_long_context_rows_of_other_models_pay_standard_rates(model: str) -> None:
    """Only Sonnet 4 and 4.5 have a long-context price; other 200k-1M rows price as usual."""
    book = shipped()
    assert book.rates_for(model, JAN_2026, context_window="200k-1M") == book.rates_for(
        model, JAN_2026, context_window="0-200k"
    )


def test_haiku_5_5_is_priced_at_the_lower_tier_and_estimated() -> None:
    """claude-haiku-5-5 uses the up-to-100k rates and says the bill may be higher."""
    priced = shipped().price(
        key("claude-haiku-5-5-20260301"),
        TokenCounts(uncached_input_tokens=2_000_000, output_tokens=1_000_000),
    )
    assert priced.cost_usd == Decimal("0.70")
    assert priced.estimated
    assert not priced.unknown_model
    assert len(priced.reasons) == 1
    assert "100000 prompt tokens" in priced.reasons[0]
    assert "0.50/2.50" in priced.reasons[0]


@pytest.mark.parametrize("tier", ["priority", "flex"])
def test_tier_without_public_price_uses_standard_rates_and_is_estimated(tier: str) -> None:
    """Priority (or any other tier) is priced at standard rates with a reason naming the tier."""
    book = shipped()
    standard = book.price(key("claude-opus-4-6"), ONE_MILLION_EACH)
    other = book.price(key("claude-opus-4-6", tier=tier), ONE_MILLION_EACH)
    assert other.cost_usd == standard.cost_usd
    assert other.estimated
    assert not other.unknown_model
    assert other.reasons == (
        f"service tier {tier!r} has no public price: priced at standard rates",
    )


@pytest.mark.parametrize("tier", [None, "standard"])
def test_standard_or_ungrouped_tier_is_exact(tier: str | None) -> None:
    """A row not grouped by tier, or on the standard tier, is a list-price fact."""
    assert not shipped().price(key("claude-opus-4-6", tier=tier), ONE_MILLION_EACH).estimated


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("claude-opus-6", "claude-opus-5-5"),
        ("claude-opus-4-9", "claude-opus-5-5"),
        ("claude-sonnet-6-20270101", "claude-sonnet-5-5"),
        ("claude-3-9-sonnet", "claude-sonnet-5-5"),
        ("claude-haiku-4-6", "claude-haiku-5-5"),
        ("claude-mythos-7", "claude-mythos-5-1"),
        ("claude-fable-5-5", "claude-fable-5"),
    ],
)
def test_unknown_model_in_a_family_uses_the_family_newest(model: str, priced_as: str) -> None:
    """An unknown id with a family word is priced as that family's newest model and flagged."""
    priced = shipped().price(key(model), ONE_MILLION_EACH)
    assert (priced.priced_as, priced.unknown_model, priced.estimated) == (priced_as, True, True)
    assert priced.cost_usd > 0
    assert f"unknown model {model!r}: priced as {priced_as}" in priced.reasons[0]


@pytest.mark.parametrize("model", [None, "gpt-4o", "claude-instant-1", "claude"])
def test_unknown_model_without_family_uses_the_highest_rates(model: str | None) -> None:
    """No family: the book's most expensive model prices it, never zero, and the reason says so."""
    priced = shipped().price(key(model), TokenCounts(output_tokens=1_000_000))
    assert priced.cost_usd == Decimal(75)
    assert priced.priced_as in {"claude-opus-4", "claude-opus-4-1", "claude-3-opus"}
    assert (priced.unknown_model, priced.estimated) == (True, True)
    assert "the highest-priced model" in priced.reasons[0]
    assert (repr(model) if model else "usage without a model") in priced.reasons[0]


def test_unknown_model_keeps_the_other_reasons() -> None:
    """An unknown model on the priority tier carries both reasons."""
    priced = shipped().price(key("claude-opus-6", tier="priority"), ONE_MILLION_EACH)
    assert len(priced.reasons) == 2


def test_resolved_rates_are_cached() -> None:
    """Repeated look-ups of one (model, day, tier, window, geo) reuse the resolved rates."""
    book = PriceBook.load()
    first = book.rates_for("claude-sonnet-4-20250514", datetime(2026, 2, 1, 5, tzinfo=UTC))
    again = book.rates_for("claude-sonnet-4-20250514", datetime(2026, 2, 1, 17, tzinfo=UTC))
    assert first is again


def test_naive_datetime_is_refused() -> None:
    """Effective dates are UTC dates, so a naive time is a caller bug, not a guess."""
    with pytest.raises(ValueError, match="naive"):
        shipped().rates_for("claude-opus-4-6", datetime(2026, 1, 1))  # noqa: DTZ001


def test_override_adds_a_model_and_changes_rates() -> None:
    """An operator file extends the book: new model, dated price change, replaced entry."""
    book = PriceBook.load(DATA / "prices_override.toml")
    nov = datetime(2026, 11, 1, tzinfo=UTC)
    opus6 = book.rates_for("claude-opus-6-20261101", nov, inference_geo="us")
    assert (opus6.priced_as, opus6.unknown_model, opus6.estimated) == (
        "claude-opus-6",
        False,
        False,
    )
    assert (opus6.input, opus6.output, opus6.cache_write_5m, opus6.cache_read) == (
        Decimal("8.8"),
        Decimal("44"),
        Decimal("11"),
        Decimal("0.88"),
    )
    assert book.rates_for("claude-opus-next", nov).priced_as == "claude-opus-6"
    assert book.rates_for("claude-opus-7", nov).priced_as == "claude-opus-6"
    assert book.rates_for("claude-opus-5-5", nov).output == 20
    sonnet4 = "claude-sonnet-4-20250514"
    assert book.rates_for(sonnet4, datetime(2026, 11, 30, tzinfo=UTC)).input == 3
    cut = book.rates_for(sonnet4, datetime(2026, 12, 1, tzinfo=UTC))
    assert (cut.input, cut.cache_write_1h, cut.web_search_per_1000) == (
        Decimal("2.40"),
        Decimal("4.80"),
        Decimal(12),
    )
    haiku = book.rates_for("claude-3-haiku-20240307", AUG_2025)
    assert (haiku.input, haiku.cache_write_5m) == (Decimal("0.20"), Decimal("0.25"))
    assert book.rates_for(sonnet4, JAN_2026, context_window="200k-1M").input == 6


def test_override_of_a_shipped_model_keeps_its_attributes() -> None:
    """Restating only a price keeps the shipped model's family, version and geo multiplier."""
    book = PriceBook.load(DATA / "prices_override.toml")
    assert set(book.model_ids) == set(shipped().model_ids) | {"claude-opus-6"}
    assert book.rates_for("claude-3-haiku", JAN_2026, inference_geo="us").input == Decimal("0.20")


def test_missing_override_file_names_the_path(tmp_path: Path) -> None:
    """A CREDITWATCH_PRICES_FILE that does not exist is a PriceBookError naming the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(PriceBookError, match=r"nope\.toml"):
        PriceBook.load(missing)


NEW_MODEL = """
[[model]]
id = "claude-test-1"
family = "test"
version = "1"
[[model.prices]]
effective_from = 2026-01-01
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[model]\nid = ", "not valid TOML"),
        (NEW_MODEL + 'input = "1"\n', "model 'claude-test-1'.*missing required rate 'output'"),
        (NEW_MODEL + 'input = 1.5\noutput = "2"\n', "'claude-test-1'.*'input'.*float 1.5"),
        (NEW_MODEL + 'input = 2\noutput = "2"\n', "'claude-test-1'.*'input'.*int 2"),
        (NEW_MODEL + 'input = "-1"\noutput = "2"\n', "'claude-test-1'.*non-negative.*'-1'"),
        (NEW_MODEL + 'input = "NaN"\noutput = "2"\n', "non-negative decimal, got 'NaN'"),
        (NEW_MODEL + 'input = "cheap"\noutput = "2"\n', "non-negative decimal, got 'cheap'"),
        (NEW_MODEL + 'input = "1"\noutput = "2"\ndiscount = "1"\n', "unknown key.*'discount'"),
        (
            NEW_MODEL + 'input = "1"\noutput = "2"\n[model.prices.context_window."x"]\n'
            'input = "1"\n',
            "context_window 'x'.*missing required rate 'output'",
        ),
        (
            NEW_MODEL + 'input = "1"\noutput = "2"\n[[model.prices.prompt_tiers]]\n'
            'input = "1"\noutput = "2"\n',
            "'above_prompt_tokens' must be a positive integer",
        ),
        (
            NEW_MODEL.replace('family = "test"\n', "") + 'input = "1"\noutput = "2"\n',
            "model 'claude-test-1': missing required field 'family'",
        ),
        (
            NEW_MODEL.replace('version = "1"', "version = 1.0") + 'input = "1"\noutput = "2"\n',
            "'version' must be a string",
        ),
        (
            NEW_MODEL.replace("2026-01-01", "2026-01-01T00:00:00Z") + 'input = "1"\noutput = "2"\n',
            "'effective_from' must be a TOML date",
        ),
        (
            NEW_MODEL.replace('version = "1"', 'version = "1"\ncolour = "red"'),
            "model 'claude-test-1': unknown key.*'colour'",
        ),
        (
            '[[model]]\nid = "claude-test-1"\nfamily = "test"\nversion = "1"\n',
            "'claude-test-1': no \\[\\[model.prices\\]\\] entry",
        ),
        (
            '[[model]]\nid = "claude-opus-4-6"\n[[model.prices]]\neffective_from = 2026-01-01\n'
            'input = "1"\noutput = "2"\n[[model.prices]]\neffective_from = 2026-01-01\n'
            'input = "1"\noutput = "2"\n',
            "second entry effective from 2026-01-01",
        ),
        (
            NEW_MODEL + 'input = "1"\noutput = "2"\n' + NEW_MODEL + 'input = "1"\noutput = "2"\n',
            "'claude-test-1' appears twice",
        ),
        (
            NEW_MODEL.replace('version = "1"', 'version = "1"\naliases = ["claude-opus-4"]')
            + 'input = "1"\noutput = "2"\n',
            "prefix 'claude-opus-4' already belongs",
        ),
        ("[modifiers]\nbatch = 0.5\n", "\\[modifiers\\]: 'batch' must be a decimal string"),
        ('[modifiers]\nbulk = "0.5"\n', "\\[modifiers\\]: unknown key.*'bulk'"),
        ('pricing = "cheap"\n', "the file: unknown key.*'pricing'"),
        ('model = "claude"\n', "'model' must be an array of tables"),
        ('model = ["claude"]\n', "\\[\\[model\\]\\] #1: expected a table, got str"),
        ('[[model]]\nfamily = "opus"\n', "\\[\\[model\\]\\] #1: 'id' must be"),
        ('[[model]]\nid = "claude-opus-4-6"\nfamily = "Opus 4"\n', "'family' must be one word"),
        ('[[model]]\nid = "claude-opus-4-6"\nus_geo_multiplier = "yes"\n', "true or false"),
        ('[[model]]\nid = "claude-opus-4-6"\naliases = "claude-o"\n', "'aliases' must be a list"),
        ('[[model]]\nid = "claude-opus-4-6"\nprices = "5"\n', "'prices' must be an array"),
        (
            NEW_MODEL + 'input = "1"\noutput = "2"\nprompt_tiers = "x"\n',
            "'prompt_tiers' must be an array",
        ),
    ],
)
def test_malformed_price_file_is_a_named_error(tmp_path: Path, text: str, message: str) -> None:
    """Every defect in an operator's price file raises PriceBookError naming the file and entry."""
    path = tmp_path / "operator-prices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PriceBookError, match=message) as raised:
        PriceBook.load(path)
    assert str(path) in str(raised.value)


def test_cache_rates_default_from_input() -> None:
    """A price entry without cache rates gets 1.25x, 2x and 0.1x its input rate."""
    rates = shipped().rates_for("claude-haiku-5-5", JAN_2026)
    assert (rates.cache_write_5m, rates.cache_write_1h, rates.cache_read) == (
        Decimal("0.125"),
        Decimal("0.2"),
        Decimal("0.01"),
    )


MODELS = st.sampled_from(
    [
        None,
        "claude-sonnet-4-20250514",
        "claude-opus-4-6",
        "claude-haiku-5-5",
        "claude-3-haiku-20240307",
        "claude-opus-6",
        "claude-3-9-sonnet",
        "mystery-model",
    ]
)
COUNTS = st.builds(
    TokenCounts,
    *(st.integers(min_value=0, max_value=10**12) for _ in range(6)),
)
KEYS = st.builds(
    key,
    MODELS,
    st.dates(date(2023, 1, 1), date(2028, 12, 31)).map(
        lambda d: datetime(d.year, d.month, d.day, tzinfo=UTC)
    ),
    tier=st.sampled_from([None, "standard", "batch", "priority"]),
    context_window=st.sampled_from([None, "0-200k", "200k-1M"]),
    geo=st.sampled_from([None, "global", "us"]),
)


@given(KEYS, COUNTS, COUNTS)
def test_cost_is_linear_and_non_negative(row: UsageKey, a: TokenCounts, b: TokenCounts) -> None:
    """Pricing two rows' counts together costs exactly their sum, and never less than zero."""
    book = shipped()
    total = TokenCounts(
        *(
            getattr(a, name) + getattr(b, name)
            for name in (
                "uncached_input_tokens",
                "cache_creation_5m_tokens",
                "cache_creation_1h_tokens",
                "cache_read_tokens",
                "output_tokens",
                "web_search_requests",
            )
        )
    )
    cost_a = book.price(row, a).cost_usd
    assert cost_a >= 0
    assert book.price(row, total).cost_usd == cost_a + book.price(row, b).cost_usd


@given(KEYS, COUNTS)
def test_unknown_models_never_cost_zero(row: UsageKey, counts: TokenCounts) -> None:
    """An unknown model with any token or search is priced above zero and flagged."""
    unknown = replace(row, model="claude-nova-9")
    priced = shipped().price(unknown, counts)
    assert priced.unknown_model
    assert priced.estimated
    assert (priced.cost_usd > 0) == any(getattr(counts, f) for f in TokenCounts.__struct_fields__)


SMALL_COUNTS = st.builds(
    TokenCounts, *(st.integers(min_value=0, max_value=10**4) for _ in range(6))
)


@given(KEYS, st.one_of(COUNTS, SMALL_COUNTS))
def test_cost_in_nanos_is_the_exact_cost_rounded_half_to_even(
    row: UsageKey, counts: TokenCounts
) -> None:
    """Booking's integer path gives what rounding the exact Decimal cost gives."""
    rates = shipped().rates_of(row)
    assert rates.cost_nanos(counts) == usd_to_nanos(rates.cost(counts))
    assert rates.cost(counts) == shipped().price(row, counts).cost_usd


@given(
    st.lists(
        st.decimals(min_value=0, max_value=100, places=12, allow_nan=False, allow_infinity=False),
        min_size=6,
        max_size=6,
    ),
    SMALL_COUNTS,
)
def test_cost_in_nanos_rounds_every_fraction_of_a_nano_half_to_even(
    values: list[Decimal], counts: TokenCounts
) -> None:
    """Rates finer than a nano-dollar per token: sub-nano remainders, exact halves included."""
    a, b, c, d, e, f = values
    rates = Rates(
        a, b, c, d, e, f, priced_as=None, estimated=False, unknown_model=False, reasons=()
    )
    assert rates.cost_nanos(counts) == usd_to_nanos(rates.cost(counts))


def test_cost_in_nanos_of_an_exact_half_goes_to_the_even_nano() -> None:
    # 0.5 nano-dollar a token: one token is half a nano (to 0), three are 1.5 (to 2).
    half = Decimal("0.0005")  # USD per million tokens
    zero = Decimal(0)
    rates = Rates(half, zero, zero, zero, zero, zero, None, False, False, ())
    assert [rates.cost_nanos(TokenCounts(n)) for n in (1, 3, 5)] == [0, 2, 2]
