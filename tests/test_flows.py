"""Contributions and withdrawals: exact sums, the unit value, the money-weighted return, and the compiled books."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.config.schema import FlowConfig, IskConfig
from engine.portfolio import FeeModel, FixedMixBook, Schedule
from engine.portfolio.flows import CashFlowSchedule, money_weighted_return
from engine.portfolio.taxes import IskTax
from engine.simulation import SimulationPlan, run_simulation

from .test_kernels import WEIGHTS, assert_same_chunk, mixed_model

SAVINGS = [
    FlowConfig(kind="contribution", amount=2000.0, frequency="monthly", indexation=0.02),
    FlowConfig(kind="withdrawal", percent=0.04, frequency="annual", start_year=1.0),
]


def run_flat_book(flows: CashFlowSchedule, growth_per_day: float, years: int) -> FixedMixBook:
    """Two assets that grow by the same factor every day, a 50/50 book, monthly rebalancing, these flows."""
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    schedule = Schedule(years, 252, "monthly")
    bounds = schedule.month_bounds
    for month in range(bounds.size - 1):
        fixed, rate = flows.at(month)
        if fixed or rate:
            book.apply_flow(fixed, rate, month / 12.0)
        if schedule.rebalance_at(month):
            book.rebalance()
        book.advance(np.full((1, int(bounds[month + 1] - bounds[month]), 2), growth_per_day))
        if schedule.is_year_end(month):
            book.mark_year_end()
    return book


def test_contributions_sum_exactly_in_a_zero_return_world() -> None:
    # SEK 2,000 a month for 20 years on top of 100,000, indexed 2% a year: wealth is the sum of the flows
    flows = CashFlowSchedule.from_config([SAVINGS[0]], 20, 100_000.0)
    book = run_flat_book(flows, 1.0, 20)
    expected = 1.0 + sum(2000.0 * 1.02 ** (m / 12) for m in range(240)) / 100_000.0
    summary = book.summary(20)
    assert summary.terminal_value[0, 0] == pytest.approx(expected, rel=1e-12)
    assert summary.invested[0, 0] == pytest.approx(expected, rel=1e-12)
    # the unit value does not move, so every time-weighted figure is flat
    assert summary.terminal_nav[0, 0] == pytest.approx(1.0, rel=1e-12)
    assert summary.max_drawdown[0, 0] == 0.0
    assert summary.money_weighted[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_money_weighted_return_equals_the_constant_rate_whatever_the_flows() -> None:
    # every asset grows at the same constant rate, so every euro earns it: the internal rate of return
    # of any flow plan (contributions and share-of-wealth withdrawals) is that rate, as is the CAGR of the NAV
    daily = 1.07 ** (1 / 252)
    flows = CashFlowSchedule.from_config(SAVINGS, 10, 50_000.0)
    summary = run_flat_book(flows, daily, 10).summary(10)
    assert summary.money_weighted[0, 0] == pytest.approx(0.07, abs=1e-9)
    assert summary.terminal_nav[0, 0] == pytest.approx(1.07**10, rel=1e-9)
    assert summary.terminal_value[0, 0] != pytest.approx(1.07**10, rel=1e-3)


def test_internal_rate_of_return_by_hand() -> None:
    # 1 at t=0 and 1 at t=1 grown at 10% to t=2: 1.21 + 1.10 = 2.31; a second path at 0%
    flows = np.array([[1.0, 1.0], [1.0, 1.0]])
    rates = money_weighted_return(flows, np.array([0.0, 1.0]), np.array([2.31, 2.0]), 2.0)
    np.testing.assert_allclose(rates, [0.10, 0.0], atol=1e-12)


def test_withdrawals_beyond_the_wealth_deplete_the_path() -> None:
    plan = [FlowConfig(kind="withdrawal", amount=30_000.0, frequency="annual", start_year=1.0)]
    summary = run_flat_book(CashFlowSchedule.from_config(plan, 5, 100_000.0), 1.0, 5).summary(5)
    assert summary.depleted[0, 0] == 1.0
    assert 0.0 < summary.terminal_value[0, 0] < 1e-8
    assert np.isfinite(summary.terminal_nav[0, 0])


def test_compiled_books_with_flows_match_the_reference() -> None:
    plan = SimulationPlan(
        model=mixed_model("gaussian"),
        fees=FeeModel(np.full(5, 0.002), 252),
        schedule=Schedule(3, 252, "quarterly"),
        weights=WEIGHTS,
        flows=CashFlowSchedule.from_config(SAVINGS, 3, 100_000.0),
        tax=IskTax.from_config(IskConfig(), 100_000.0),
    )
    compiled = run_simulation(plan, 90, 30, seed=8)
    reference = run_simulation(dataclasses.replace(plan, compiled=False), 90, 30, seed=8)
    assert_same_chunk(compiled, reference)
    for name in ("terminal_nav", "invested", "money_weighted", "depleted", "taxes_paid"):
        np.testing.assert_allclose(getattr(compiled.book, name), getattr(reference.book, name), rtol=1e-11)
    # money goes in each month, so wealth and the unit value part ways; the ISK tax is paid on the
    # paths and in the years where the capital base passes the SEK 150,000 allowance
    assert not np.allclose(compiled.book.terminal_value, compiled.book.terminal_nav)
    assert 0.0 < (compiled.book.taxes_paid > 0).mean() < 1.0


def test_isk_tax_matches_a_hand_calculation_by_skatteverkets_method() -> None:
    # SEK 1,000,000 at the start of the year, SEK 10,000 deposited at the start of each month from
    # February, no returns. Quarter-start values (before that month's deposit): 1,000,000 (Jan),
    # 1,020,000 (Apr), 1,050,000 (Jul), 1,080,000 (Oct); deposits 110,000. Capital base
    # (4,150,000 + 110,000) / 4 = 1,065,000, less SEK 150,000 tax-free = 915,000; standard income at
    # 1.96% + 1 pp = 2.96%: 27,084; tax 30%: SEK 8,125.20
    wealth = 1_000_000.0
    flows = CashFlowSchedule.from_config(
        [FlowConfig(kind="contribution", amount=10_000.0, start_year=1 / 12)], 1, wealth
    )
    tax = IskTax.from_config(IskConfig(), wealth)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    schedule = Schedule(1, 252, "monthly")
    bounds = schedule.month_bounds
    for month in range(12):
        tax.on_month_start(book, month)
        fixed, rate = flows.at(month)
        if fixed:
            book.apply_flow(fixed, rate, month / 12)
        book.advance(np.ones((1, int(bounds[month + 1] - bounds[month]), 2)))
    tax.on_year_end(book)
    assert book.taxes_paid[0, 0] * wealth == pytest.approx(8125.20, abs=0.005)
    assert book.value[0, 0] * wealth == pytest.approx(1_110_000 - 8125.20, abs=0.005)
    # a capital base under the allowance pays nothing
    assert tax.due(np.array([0.1]), np.array([0.0]))[0] == 0.0
