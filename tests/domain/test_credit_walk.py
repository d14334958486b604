"""The balance walk, by hand-computed cases: reloads, monthly limits, expiry, time at zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain.credit_walk import Charge, Expiry, Lot, Reload, ReloadPolicy, walk

T0 = datetime(2026, 11, 30, 18, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9
FAR = T0 + timedelta(days=365)


def lot(usd: int, at: datetime = T0, key: str = "opening", expires: datetime = FAR) -> Lot:
    return Lot(key, "opening" if key == "opening" else "purchase", at, usd * USD, expires)


def charges(*usd: int) -> list[Charge]:
    return [Charge(T0 + i * H, T0 + (i + 1) * H, amount * USD) for i, amount in enumerate(usd)]


POLICY = ReloadPolicy(threshold_nanos=50 * USD, target_nanos=200 * USD)


def test_reload_tops_up_to_exactly_the_target_at_the_end_of_the_crossing_bucket() -> None:
    """100 → 70 → 40 (below 50): one reload of 160 at the end of that hour, then 190."""
    result = walk([lot(100)], charges(30, 30, 10), start=T0, until=T0 + 3 * H, policy=POLICY)
    assert result.reloads == [Reload(T0 + 2 * H, 160 * USD, 160 * USD)]
    assert result.balance_nanos == 190 * USD
    assert result.blocked == []
    assert result.lowest_nanos == 40 * USD
    assert result.lowest_at == T0 + H


def test_no_reload_at_exactly_the_threshold() -> None:
    """The Console reloads when the balance is strictly below the minimum."""
    result = walk([lot(100)], charges(50), start=T0, until=T0 + 2 * H, policy=POLICY)
    assert result.reloads == []
    assert result.balance_nanos == 50 * USD


def test_monthly_limit_cuts_a_reload_then_blocks_the_next_one() -> None:
    """Limit 100: the first reload gets 100 of 160 (partial), the next gets nothing (blocked)."""
    policy = ReloadPolicy(50 * USD, 200 * USD, monthly_limit_nanos=100 * USD)
    result = walk(
        [lot(100)], charges(30, 30, 100, 20, 20), start=T0, until=T0 + 5 * H, policy=policy
    )
    assert result.reloads == [Reload(T0 + 2 * H, 160 * USD, 100 * USD)]
    assert result.blocked == [
        Reload(T0 + 2 * H, 160 * USD, 100 * USD),
        Reload(T0 + 3 * H, 160 * USD, 0),
    ]
    assert result.balance_nanos == 0
    assert result.reloaded_by_month == {(2026, 11): 100 * USD}


def test_new_month_renews_the_allowance_and_reloads() -> None:
    """Blocked on 30 November; at midnight UTC the December allowance reloads to the target."""
    policy = ReloadPolicy(50 * USD, 200 * USD, monthly_limit_nanos=100 * USD)
    result = walk([lot(100)], charges(30, 30, 100, 20), start=T0, until=T0 + 8 * H, policy=policy)
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert result.reloads[-1].at == december
    assert result.reloads[-1].granted_nanos == 100 * USD
    assert result.reloaded_by_month[(2026, 12)] == 100 * USD


def test_blocked_hours_count_as_time_at_zero() -> None:
    """Without reloads, from the hour the balance hits zero until the end, the API refuses calls."""
    result = walk([lot(50)], charges(30, 30), start=T0, until=T0 + 5 * H)
    assert result.first_zero_at == T0 + H
    assert result.zero_seconds == 4 * 3600
    assert result.lowest_nanos == -10 * USD
    assert result.balance_nanos == -10 * USD


def test_a_lot_expires_while_usage_continues() -> None:
    """Oldest lot first; at its expiry what is left of it is removed, and usage moves on."""
    lots = [lot(50, key="a", expires=T0 + 2 * H), lot(100, at=T0 + H, key="b")]
    result = walk(lots, charges(20, 10, 10), start=T0, until=T0 + 3 * H)
    assert result.expiries == [Expiry(T0 + 2 * H, "a", 20 * USD)]
    assert result.remaining == {"a": 0, "b": 90 * USD}
    assert result.balance_nanos == 90 * USD


def test_an_expiry_can_trigger_a_reload() -> None:
    """An expiry that drops the balance below the threshold reloads like usage does."""
    lots = [lot(100, key="a", expires=T0 + H), lot(20, at=T0, key="b")]
    result = walk(lots, [], start=T0, until=T0 + 2 * H, policy=POLICY)
    assert result.expiries == [Expiry(T0 + H, "a", 100 * USD)]
    assert result.reloads == [Reload(T0 + H, 180 * USD, 180 * USD)]
    assert result.balance_nanos == 200 * USD


def test_a_bucket_that_grows_late_moves_the_reload_instead_of_adding_one() -> None:
    """If hour 0 grows so the crossing happens an hour earlier, there is still one reload."""
    before = walk([lot(100)], charges(30, 30, 0), start=T0, until=T0 + 3 * H, policy=POLICY)
    after = walk([lot(100)], charges(60, 30, 0), start=T0, until=T0 + 3 * H, policy=POLICY)
    assert before.reloads == [Reload(T0 + 2 * H, 160 * USD, 160 * USD)]
    assert after.reloads == [Reload(T0 + H, 160 * USD, 160 * USD)]
    assert after.balance_nanos == 170 * USD


def test_reload_in_the_current_bucket_lands_at_its_end() -> None:
    """Usage that crosses in the hour now in progress reloads at that hour's end, not later."""
    result = walk([lot(100)], charges(60), start=T0, until=T0 + H / 2, policy=POLICY)
    assert result.reloads == [Reload(T0 + H, 160 * USD, 160 * USD)]
    assert result.balance_nanos == 200 * USD


def test_a_closed_window_leaves_a_reload_due_at_its_end_to_the_next_window() -> None:
    """Replaying up to the end of the crossing bucket books no reload for the next window."""
    result = walk(
        [lot(100)],
        charges(60),
        start=T0,
        until=T0 + H,
        policy=POLICY,
        finish_pending_reload=False,
    )
    assert result.reloads == []
    assert result.balance_nanos == 40 * USD


def test_a_purchase_first_pays_what_was_overdrawn() -> None:
    """Usage past the last lot is owed; a later purchase covers it before it can be spent."""
    lots = [lot(10), lot(100, at=T0 + 2 * H, key="p")]
    result = walk(lots, charges(30), start=T0, until=T0 + 3 * H)
    assert result.remaining == {"opening": 0, "p": 80 * USD}
    assert result.balance_nanos == 80 * USD


def test_a_negative_charge_is_a_credit_back_to_the_lot_last_consumed() -> None:
    """A bill below the estimate gives back: the newest consumed lot refills first."""
    lots = [lot(50), lot(100, at=T0 + H, key="p")]
    # 50 spent from the opening, then 60 from p (the opening is empty): p holds 40.
    spent = [Charge(T0 + 2 * H, T0 + 3 * H, 110 * USD), Charge(T0 + 3 * H, T0 + 4 * H, -70 * USD)]
    result = walk(lots, spent, start=T0, until=T0 + 4 * H)
    assert result.remaining == {"opening": 10 * USD, "p": 100 * USD}
    assert result.balance_nanos == 110 * USD


def test_a_credit_back_pays_the_overdraft_first() -> None:
    """Usage past the last lot is owed; a credit settles that before it refills a lot."""
    spent = [Charge(T0, T0 + H, 30 * USD), Charge(T0 + H, T0 + 2 * H, -25 * USD)]
    result = walk([lot(10)], spent, start=T0, until=T0 + 2 * H)
    assert result.remaining == {"opening": 5 * USD}
    assert result.balance_nanos == 5 * USD
    assert result.first_zero_at == T0


def test_a_credit_back_never_triggers_a_reload_and_lifts_a_low_balance() -> None:
    """Only a debit can bring the balance under the threshold; a credit makes no reload."""
    spent = [Charge(T0, T0 + H, 45 * USD), Charge(T0 + H, T0 + 2 * H, -5 * USD)]
    result = walk([lot(100)], spent, start=T0, until=T0 + 2 * H, policy=POLICY)
    assert result.reloads == []
    assert result.balance_nanos == 60 * USD


def test_a_credit_back_larger_than_what_was_spent_stays_with_the_newest_lot() -> None:
    """More back than was consumed (a bill credit): the surplus is kept, nothing is lost."""
    spent = [Charge(T0, T0 + H, 5 * USD), Charge(T0 + H, T0 + 2 * H, -8 * USD)]
    result = walk([lot(10)], spent, start=T0, until=T0 + 2 * H)
    assert result.balance_nanos == 13 * USD


def test_an_expiry_at_the_moment_a_reload_is_due_makes_one_reload() -> None:
    """Usage crossing and a lot expiring at the same hour's end: one reload covers both."""
    lots = [lot(100, key="a", expires=T0 + 2 * H), lot(50, at=T0, key="b")]
    result = walk(lots, charges(0, 120), start=T0, until=T0 + 3 * H, policy=POLICY)
    # At T0+2h: usage left 30 (all of b, 70 of a); a expires with 0 left, so one reload of 170.
    assert result.reloads == [Reload(T0 + 2 * H, 170 * USD, 170 * USD)]
    assert result.balance_nanos == 200 * USD


def test_two_reloads_at_one_instant_keep_both_lots() -> None:
    """An expiry right after a reload at the same instant reloads again into a lot of its own."""
    lifetime = 10 * H
    policy = ReloadPolicy(threshold_nanos=50 * USD, target_nanos=80 * USD)
    result = walk(
        [lot(100, expires=T0 + lifetime)],
        [Charge(T0 + 9 * H, T0 + 10 * H, 60 * USD)],
        start=T0,
        until=T0 + 11 * H,
        policy=policy,
        lot_lifetime=lifetime,
    )
    assert result.balance_nanos == 80 * USD
    assert sum(result.remaining.values()) == 80 * USD
    assert len(set(result.remaining)) == len(result.lots)


def test_an_expiry_due_with_a_reload_is_applied_before_it() -> None:
    """Expiry first, then the reload: one reload tops up to the target after the expiry."""
    lots = [lot(100, key="a", expires=T0 + 2 * H), lot(50, at=T0 + timedelta(minutes=1), key="b")]
    policy = ReloadPolicy(threshold_nanos=100 * USD, target_nanos=200 * USD)
    result = walk(
        lots, [Charge(T0 + H, T0 + 2 * H, 60 * USD)], start=T0, until=T0 + 3 * H, policy=policy
    )
    # 150 - 60 = 90 (a: 40 left); at 02:00 a expires (-40) → 50, then one reload of 150.
    assert result.reloads == [Reload(T0 + 2 * H, 150 * USD, 150 * USD)]
    assert result.balance_nanos == 200 * USD


def test_lots_bought_before_a_later_start_do_not_count_as_lows() -> None:
    """Replaying from a later moment: the lowest balance is inside the window, not before it."""
    lots = [lot(100), lot(50, at=T0 + H, key="p")]
    result = walk(lots, charges(0, 0, 0, 10, 10), start=T0 + 3 * H, until=T0 + 5 * H)
    assert (result.lowest_at, result.lowest_nanos) == (T0 + 4 * H, 130 * USD)
