"""Fixed-mix accounting against a slow, explicit day-by-day loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mcalloc.portfolio import Band, FeeModel, FixedMixBook, RebalancePolicy, Schedule, TradingCosts
from mcalloc.portfolio.accounting import DRAWDOWN_BINS
from mcalloc.portfolio.flows import DEPLETION_FLOOR


def explicit_loop(growth: np.ndarray, weights: np.ndarray, rebalance_steps: set[int], daily: bool) -> dict:
    """One path, one portfolio, one day at a time: the obvious implementation."""
    n_steps, _ = growth.shape
    holdings = weights.astype(float).copy()
    values = [1.0]
    for step in range(n_steps):
        if step in rebalance_steps:
            holdings = holdings.sum() * weights
        holdings = holdings * growth[step]
        if daily:
            holdings = holdings.sum() * weights
        values.append(holdings.sum())
    values = np.array(values)
    peaks = np.maximum.accumulate(values)
    return {"terminal": values[-1], "max_drawdown": np.max(1 - values / peaks), "values": values}


@pytest.mark.parametrize("rebalance", ["monthly", "quarterly", "annual", "never", "daily"])
def test_book_matches_explicit_loop(rebalance: str) -> None:
    rng = np.random.default_rng(7)
    schedule = Schedule(horizon_years=2, steps_per_year=24, rebalance=rebalance)
    n_paths, n_assets = 5, 3
    growth = np.exp(rng.normal(0.002, 0.04, size=(n_paths, schedule.n_steps, n_assets)))
    weights = np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]])
    book = FixedMixBook(weights, n_paths)
    bounds = schedule.month_bounds
    rebalance_steps = {int(bounds[m]) for m in range(len(bounds) - 1) if schedule.rebalance_at(m)}
    year_ends = []
    for month in range(len(bounds) - 1):
        if schedule.rebalance_at(month):
            book.rebalance()
        book.advance(growth[:, bounds[month] : bounds[month + 1]], daily_rebalance=rebalance == "daily")
        if schedule.is_year_end(month):
            book.mark_year_end()
            year_ends.append(int(bounds[month + 1]))
    summary = book.summary()
    assert summary.year_end_values.dtype == np.float32  # the largest per-path result, kept at half the memory
    for path in range(n_paths):
        for portfolio in range(len(weights)):
            expected = explicit_loop(growth[path], weights[portfolio], rebalance_steps, rebalance == "daily")
            assert summary.terminal_value[path, portfolio] == pytest.approx(expected["terminal"], rel=1e-12)
            assert summary.max_drawdown[path, portfolio] == pytest.approx(expected["max_drawdown"], abs=1e-12)
            # kept in float32: rounded to the nearest, within half a unit in its last place (2**-24 relative)
            assert summary.year_end_values[path, :, portfolio] == pytest.approx(
                expected["values"][year_ends], rel=2.0**-24
            )


def test_ter_costs_exactly_its_rate_per_year() -> None:
    # a flat market: after one year of daily fee deductions the fund keeps 1 - TER
    fees = FeeModel(ter=np.array([0.0009, 0.0019, 0.02]), steps_per_year=252)
    growth = fees.net_growth(np.zeros((1, 252, 3)))
    assert growth.prod(axis=1)[0] == pytest.approx(1.0 - fees.ter, rel=1e-12)


def test_a_fee_already_in_the_model_is_not_charged_again() -> None:
    # model fitted to ETF closes net of TER c0; holding that ETF costs nothing more, a cheaper
    # fund (c) earns (1 - c) / (1 - c0) a year, a dearer one loses the difference
    held = np.array([0.0019, 0.0007, 0.0050])
    in_model = np.array([0.0019, 0.0032, 0.0032])
    fees = FeeModel(ter=held, steps_per_year=252, ter_in_model=in_model)
    year = fees.net_growth(np.zeros((1, 252, 3))).prod(axis=1)[0]
    assert year[0] == 1.0
    assert year == pytest.approx((1.0 - held) / (1.0 - in_model), rel=1e-12)


def test_month_bounds_cover_horizon() -> None:
    schedule = Schedule(horizon_years=3, steps_per_year=252, rebalance="monthly")
    bounds = schedule.month_bounds
    assert bounds[0] == 0 and bounds[-1] == 756 and len(bounds) == 37
    assert set(np.diff(bounds)) == {21}


@settings(max_examples=60, deadline=None)
@given(
    growth=arrays(np.float64, (3, 24, 3), elements=st.floats(0.5, 1.5)),
    raw_weights=arrays(np.float64, (2, 3), elements=st.floats(0.0, 1.0)),
)
def test_monthly_rebalanced_value_is_product_of_weighted_month_growth(
    growth: np.ndarray, raw_weights: np.ndarray
) -> None:
    # identity: rebalanced at each month start, a fixed mix grows by w . (month's growth) per month
    weights = (raw_weights + 1e-3) / (raw_weights + 1e-3).sum(axis=1, keepdims=True)
    schedule = Schedule(horizon_years=1, steps_per_year=24, rebalance="monthly")
    book = FixedMixBook(weights, n_paths=3)
    bounds = schedule.month_bounds
    expected = np.ones((3, 2))
    month_ends = []
    for month in range(12):
        if schedule.rebalance_at(month):
            book.rebalance()
        block = growth[:, bounds[month] : bounds[month + 1]]
        book.advance(block)
        expected *= block.prod(axis=1) @ weights.T
        month_ends.append(expected.copy())
    summary = book.summary()
    np.testing.assert_allclose(summary.terminal_value, expected, rtol=1e-11)
    assert np.all((summary.max_drawdown >= 0) & (summary.max_drawdown < 1))
    # month-end drawdowns from month-end peaks (the start's 1 among them), as the optimiser's scenarios define them
    wealth = np.stack(month_ends, axis=1)  # (paths, months, portfolios)
    drawdowns = 1.0 - wealth / np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0)
    assert summary.month_end_max_drawdown is not None and summary.drawdown_histogram is not None
    np.testing.assert_allclose(summary.month_end_max_drawdown, drawdowns.max(axis=1), rtol=1e-6, atol=1e-7)
    assert np.all(summary.month_end_max_drawdown <= summary.max_drawdown + 1e-7)
    for portfolio in range(2):
        counted = summary.drawdown_histogram[portfolio, 1]
        assert counted.sum() == drawdowns[:, :, portfolio].size
        deepest_bin = int(np.flatnonzero(counted)[-1])
        # a drawdown on a bin's edge may fall either side of it by rounding
        assert abs(deepest_bin - min(int(drawdowns[:, :, portfolio].max() * DRAWDOWN_BINS), DRAWDOWN_BINS - 1)) <= 1


def one_path_book(policy: RebalancePolicy, first_growth: float) -> FixedMixBook:
    """A 50/50 book on one path whose first asset grows by ``first_growth`` over one month."""
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, policy)
    growth = np.ones((1, 21, 2))
    growth[0, 0, 0] = first_growth
    book.advance(growth)
    return book


def test_trading_costs_are_bps_of_traded_value_plus_courtage_by_hand() -> None:
    # holdings 0.6 / 0.5 after asset one gains 20%: value 1.1, targets 0.55 / 0.55, each trade 0.05;
    # cost = 0.05 x 10 bp + 0.05 x 20 bp + 2 trades x 0.001 = 0.00215
    policy = RebalancePolicy(costs=TradingCosts(bps=np.array([10.0, 20.0]), fixed=0.001))
    book = one_path_book(policy, 1.2)
    book.rebalance()
    assert book.costs_paid[0, 0] == pytest.approx(0.00215, rel=1e-12)
    assert book.value[0, 0] == pytest.approx(1.1 - 0.00215, rel=1e-12)
    np.testing.assert_allclose(book.holdings[0, :, 0], (1.1 - 0.00215) / 2, rtol=1e-12)
    # the next month's return is measured from the value before the costs
    book.advance(np.ones((1, 21, 2)))
    assert book.log_return_sum[0, 0] == pytest.approx(math.log(1.1) + math.log((1.1 - 0.00215) / 1.1), rel=1e-12)


@given(
    holdings=arrays(float, (2, 3, 4), elements=st.floats(0.01, 2.0)),
    bps=arrays(float, 3, elements=st.floats(0.0, 50.0)),
    fixed=st.floats(0.0, 0.01),
)
@settings(max_examples=50, deadline=None)
def test_trading_cost_equals_bps_times_traded_value(holdings: np.ndarray, bps: np.ndarray, fixed: float) -> None:
    weights = np.array([[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    book = FixedMixBook(weights, 4, RebalancePolicy(costs=TradingCosts(bps=bps, fixed=fixed)))
    book.holdings = holdings.copy()
    book.value = holdings.sum(axis=1)
    traded = np.abs(book.value[:, None, :] * weights[:, :, None] - holdings)
    expected = np.einsum("a,kap->kp", bps / 1e4, traded) + fixed * (traded > 1e-12).sum(axis=1)
    # a courtage larger than the book takes all but the depletion floor, never more
    expected = np.minimum(expected, book.value - np.minimum(book.value, DEPLETION_FLOOR))
    before = book.value.copy()
    book.rebalance()
    np.testing.assert_allclose(book.costs_paid, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(book.value, before - expected, rtol=1e-12)
    np.testing.assert_allclose(book.holdings.sum(axis=1), book.value, rtol=1e-12)


@pytest.mark.parametrize(("growth", "trades"), [(1.2, False), (2.0, True)])
def test_a_relative_band_trades_only_outside_it(growth: float, trades: bool) -> None:
    # target 50%; a relative band of 0.25 allows 37.5%..62.5%: +20% on one half gives 54.5%
    # (stay), doubling gives 66.7% (trade)
    policy = RebalancePolicy(band=Band("relative", 0.25))
    book = one_path_book(policy, growth)
    before = book.holdings.copy()
    book.rebalance()
    assert book.rebalances[0, 0] == float(trades)
    if trades:
        np.testing.assert_allclose(book.holdings[0, :, 0], book.value[0, 0] / 2)
    else:
        np.testing.assert_array_equal(book.holdings, before)


@pytest.mark.parametrize(("short", "breached"), [(-0.3, False), (-0.32, False), (-0.4, True), (-0.2, True)])
def test_a_relative_band_holds_a_short_weight_as_it_holds_a_long_one(short: float, breached: bool) -> None:
    # target 130/-30, a relative band of 0.25: the short may drift between -37.5% and -22.5%. The allowance was
    # width x target, negative for a short, so a book exactly on target traded at every check
    band = Band("relative", 0.25)
    target = np.array([[1.3, -0.3]])
    current = np.array([[[1.0 - short], [short]]])
    assert band.breached(current, target)[0, 0] == breached


@pytest.mark.parametrize(("cash", "expected"), [(0.3, [1.0, 0.8]), (-0.2, [0.8, 0.5]), (1.5, [1.5, 1.5])])
def test_directed_flows_steer_towards_the_targets(cash: float, expected: list[float]) -> None:
    # 50/50 after A doubled: 1.0 / 0.5. A contribution of 0.3 goes all to B (short 0.4 of its
    # target at the new value 1.8); a withdrawal of 0.2 comes all from A (0.35 over target at 1.3);
    # a contribution of 1.5 fills both shortfalls at the new value 3.0 exactly (0.5 and 1.0)
    book = one_path_book(RebalancePolicy(direct_flows=True), 2.0)
    book.apply_flow(cash, 0.0, 1 / 12)
    np.testing.assert_allclose(book.holdings[0, :, 0], expected, rtol=1e-12)
    assert book.value[0, 0] == pytest.approx(1.5 + cash)


@given(steps=arrays(float, (3, 63), elements=st.floats(0.9, 1.1)))
@settings(max_examples=40, deadline=None)
def test_time_under_water_matches_a_slow_count(steps: np.ndarray) -> None:
    # one asset on three paths, three months: the longest run of days below the running peak
    book = FixedMixBook(np.array([[1.0]]), 3)
    for month in range(3):
        book.advance(steps[:, month * 21 : (month + 1) * 21, None])
    for path in range(3):
        value, peak, run, longest = 1.0, 1.0, 0, 0
        for growth in steps[path]:
            value *= growth
            peak = max(peak, value)
            run = run + 1 if value < peak else 0
            longest = max(longest, run)
        assert book.longest_underwater[0, path] == longest
        assert book.underwater[0, path] == run
