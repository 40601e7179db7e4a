"""Contributions and withdrawals: exact sums, the unit value, the money-weighted return, and the compiled books."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mcalloc
import numpy as np
import pytest
from mcalloc.config.sections import DepotConfig, FlowConfig, IskConfig
from mcalloc.models import GaussianCopula, JointModel
from mcalloc.portfolio import FeeModel, FixedMixBook, Schedule
from mcalloc.portfolio.costs import RebalancePolicy, TradingCosts
from mcalloc.portfolio.flows import CashFlowSchedule, money_weighted_return
from mcalloc.portfolio.taxes import DepotTax, IskTax
from mcalloc.simulation import SimulationPlan, run_simulation

from .test_kernels import WEIGHTS, assert_same_chunk, mixed_model
from .test_models_recursions import mixed_marginals

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


def test_money_lost_faster_than_the_bracket_allows_is_a_rate_of_minus_one() -> None:
    # 1 in, 1 out at half a year, then 0.05 in each month that costs take whole, ending with a billionth: more
    # is put in than taken out and left even grown at -99.3% a year. Such paths were left out of the median, and
    # when every path was one, the run failed on a NaN mwr_median (a stop-53 hunt)
    times = np.concatenate([[0.0, 0.5], np.arange(12, 36) / 12])
    flows = np.concatenate([[1.0, -0.99], np.full(24, 0.05)])[:, None]
    lost = money_weighted_return(flows, times, np.array([1e-9]), 3.0)
    np.testing.assert_array_equal(lost, [-1.0])
    # f(x) = sum flows e^(x (3 - t)) - terminal is positive on all of [-5, 5]: no rate in the bracket
    x = np.linspace(-5.0, 5.0, 201)
    f = (flows[:, 0] * np.exp(np.outer(x, 3.0 - times))).sum(axis=1) - 1e-9
    assert (f > 0.0).all()
    # gains beyond the bracket (more than 147-fold a year) stay unknown: NaN, not -1
    assert np.isnan(money_weighted_return(np.array([[1.0]]), np.array([0.0]), np.array([1e9]), 1.0)).all()


def test_withdrawals_beyond_the_wealth_deplete_the_path() -> None:
    # no returns: 0.3 out at years 1, 2 and 3, then the last 0.1 but a billionth at year 4, nothing at year 5;
    # all the money put in came out, so the money-weighted return is 0
    plan = [FlowConfig(kind="withdrawal", amount=30_000.0, frequency="annual", start_year=1.0)]
    summary = run_flat_book(CashFlowSchedule.from_config(plan, 5, 100_000.0), 1.0, 5).summary(5)
    assert summary.depleted[0, 0] == 1.0
    assert summary.terminal_value[0, 0] == pytest.approx(1e-9, rel=1e-6)
    assert summary.terminal_nav[0, 0] == pytest.approx(1.0, rel=1e-6)
    assert summary.money_weighted[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_a_withdrawal_from_a_book_worth_next_to_nothing_marks_it_depleted() -> None:
    # a book left at half a millionth of the initial wealth, not by a depleting withdrawal: the next withdrawal
    # went unpaid without the path counting as depleted (docs/results.md: prob_depleted counts the paths where a
    # withdrawal could not be paid in full)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    book.apply_flow(-(1.0 - 5e-7), 0.0, 1 / 12)
    assert not book.depleted[0, 0] and book.value[0, 0] == pytest.approx(5e-7, rel=1e-6)
    book.apply_flow(-0.1, 0.0, 2 / 12)
    assert book.depleted[0, 0] and book.value[0, 0] == pytest.approx(5e-7, rel=1e-6)


def test_a_path_depleted_early_stays_finite_through_decades_of_withdrawals() -> None:
    # 1% of the initial wealth a month empties a flat book in 100 months; 380 more withdrawals follow. Taking
    # all but a share of what was left each month used to drive value and units to 0 and the NAV to 0 / 0
    plan = [FlowConfig(kind="withdrawal", amount=1000.0, frequency="monthly", start_year=1 / 12)]
    summary = run_flat_book(CashFlowSchedule.from_config(plan, 40, 100_000.0), 1.0, 40).summary(40)
    assert summary.depleted[0, 0] == 1.0
    assert summary.terminal_value[0, 0] == pytest.approx(1e-9, rel=1e-6)
    assert summary.terminal_nav[0, 0] == pytest.approx(1.0, rel=1e-6)
    assert np.isfinite(summary.year_end_values).all()
    assert summary.money_weighted[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_money_weighted_return_of_a_withdrawal_plan_matches_the_annuity_closed_form() -> None:
    # 1 in, then 0.005 out at the end of each of 479 months and nothing left: the rate r at which 1 buys that
    # annuity, 1 = 0.005 v (1 - v^479) / (1 - v) with v = (1 + r)^(-1/12), found here by scipy's brentq. From
    # 0 the function falls (its slope is -7.9 there), where plain Newton steps away from the root.
    from scipy import optimize

    times = np.arange(480) / 12.0
    flows = np.concatenate([[1.0], np.full(479, -0.005)])

    def price(rate: float) -> float:
        v = (1.0 + rate) ** (-1 / 12)
        return 0.005 * v * (1.0 - v**479) / (1.0 - v) - 1.0

    expected = optimize.brentq(price, 0.001, 0.5, xtol=1e-14)
    got = money_weighted_return(flows[:, None], times, np.zeros(1), 40.0)
    assert got[0] == pytest.approx(expected, abs=1e-10)
    assert expected == pytest.approx(0.0539106, abs=1e-7)
    # the same plan ending with wealth left: a higher rate, and where both are known the one root of
    # a plan with one change of sign; every terminal in a wide range is solved
    terminals = np.geomspace(1e-6, 1e4, 200)
    rates = money_weighted_return(np.repeat(flows[:, None], 200, axis=1), times, terminals, 40.0)
    assert np.isfinite(rates).all() and np.all(np.diff(rates) > 0)
    growth = np.exp(np.log1p(rates)[None, :] * (40.0 - times)[:, None])
    np.testing.assert_allclose((flows[:, None] * growth).sum(axis=0), terminals, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # income year 2026, the defaults: government bond rate 2.55% on 30 November 2025 (Riksgälden, as
        # reported by Carnegie and Avanza, 27 November 2025: an ISK tax of 1.065%), SEK 300,000 tax-free
        (IskConfig(), 8147.25),
        # income year 2025: 1.96% on 30 November 2024, SEK 150,000 tax-free
        (IskConfig(government_bond_rate=0.0196, allowance=150_000.0), 8125.20),
    ],
    ids=["2026", "2025"],
)
def test_isk_tax_matches_a_hand_calculation_by_skatteverkets_method(rules: IskConfig, expected: float) -> None:
    # SEK 1,000,000 at the start of the year, SEK 10,000 deposited at the start of each month from
    # February, no returns. Quarter-start values (before that month's deposit): 1,000,000 (Jan),
    # 1,020,000 (Apr), 1,050,000 (Jul), 1,080,000 (Oct); deposits 110,000. Capital base
    # (4,150,000 + 110,000) / 4 = 1,065,000. 2026: less SEK 300,000 tax-free = 765,000; standard income at
    # 2.55% + 1 pp = 3.55%: 27,157.50; tax 30%: SEK 8,147.25. 2025: less 150,000 = 915,000; at
    # 1.96% + 1 pp = 2.96%: 27,084; tax 30%: SEK 8,125.20
    wealth = 1_000_000.0
    flows = CashFlowSchedule.from_config(
        [FlowConfig(kind="contribution", amount=10_000.0, start_year=1 / 12)], 1, wealth
    )
    tax = IskTax.from_config(rules, wealth)
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
    assert book.taxes_paid[0, 0] * wealth == pytest.approx(expected, abs=0.005)
    assert book.value[0, 0] * wealth == pytest.approx(1_110_000 - expected, abs=0.005)
    # a capital base under the allowance pays nothing
    assert tax.due(np.array([0.1]), np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize(
    ("withdrawal", "expected"),
    [
        # 10% of the wealth out: a net withdrawal of 90,000. Quarter starts 1,000,000 (Jan, Apr: before the
        # flows), 910,000 (Jul, Oct); base (3,820,000 + 10,000) / 4 = 957,500, less 300,000 = 657,500;
        # at 3.55% x 30%: SEK 7,002.375 (netting the deposit away would give 6,975.75)
        ({"percent": 0.1}, 7002.375),
        # SEK 10,000 out: the flows cancel. Quarter starts 1,000,000 each; base (4,000,000 + 10,000) / 4
        # = 1,002,500, less 300,000 = 702,500: SEK 7,481.625 (no deposit at all would give 7,455.00)
        ({"amount": 10_000.0}, 7481.625),
    ],
    ids=["net-withdrawal", "cancelling"],
)
def test_isk_counts_deposits_gross_when_a_withdrawal_falls_in_the_same_month(
    withdrawal: dict[str, float], expected: float
) -> None:
    # SEK 1,000,000, no returns; in April SEK 10,000 goes in and a withdrawal comes out, through the
    # simulation's own month start (tax tally, flows, rebalancing)
    from mcalloc.simulation.paths import _start_month

    wealth = 1_000_000.0
    plan = [
        FlowConfig(kind="contribution", amount=10_000.0, frequency="annual", start_year=0.25),
        FlowConfig(kind="withdrawal", frequency="annual", start_year=0.25, **withdrawal),
    ]
    tax = IskTax.from_config(IskConfig(), wealth)
    flows = CashFlowSchedule.from_config(plan, 1, wealth)
    # the model is never drawn from here: the month start reads the plan's tax, flows and schedule
    model = JointModel(mixed_marginals()[:1], GaussianCopula(np.eye(1)))
    simulation = SimulationPlan(
        model, FeeModel(np.zeros(1), 252), Schedule(1, 252, "monthly"), np.array([[1.0]]), flows=flows, tax=tax
    )
    book = FixedMixBook(np.array([[1.0]]), 1)
    for month in range(12):
        _start_month(simulation, book, month)
        book.advance(np.ones((1, 21, 1)))
    tax.on_year_end(book)
    assert book.taxes_paid[0, 0] * wealth == pytest.approx(expected, abs=0.005)


def test_depot_tax_follows_the_average_cost_method_by_hand() -> None:
    # 50/50 at 1.0 (basis 0.5 / 0.5). A doubles: 1.0 / 0.5; rebalancing to 0.75 / 0.75 sells a quarter
    # of A, realising 0.25 x (1.0 - 0.5) = 0.125 and leaving basis 0.375; B's basis becomes 0.75.
    # B then halves: 0.75 / 0.375; rebalancing to 0.5625 each sells a quarter of A again, realising
    # 0.25 x (0.75 - 0.375) = 0.09375. Net 0.21875, tax 30%: 0.065625
    tax = DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), 100_000.0)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    tax.prepare(book)
    for first, second in [(2.0, 1.0), (1.0, 0.5)]:
        growth = np.ones((1, 21, 2))
        growth[0, 0] = [first, second]
        book.advance(growth)
        book.rebalance()
    assert book.basis is not None
    np.testing.assert_allclose(book.basis[0, :, 0], [0.28125, 0.9375], rtol=1e-12)
    tax.on_year_end(book)
    assert book.taxes_paid[0, 0] == pytest.approx(0.065625, rel=1e-12)
    # paying the tax sold a share of each holding: those gains are next year's
    assert book.close_realised()[0, 0] == pytest.approx((0.065625 / 1.125) * (1.125 - 0.28125 - 0.9375), rel=1e-12)


def test_a_net_loss_earns_back_30_percent_of_70_percent_and_liquidation_taxes_the_rest() -> None:
    tax = DepotTax.from_config(DepotConfig(), 100_000.0)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    tax.prepare(book)
    growth = np.ones((1, 21, 2))
    growth[0, 0] = [0.5, 1.0]  # A halves: 0.25 / 0.5, value 0.75
    book.advance(growth)
    book.rebalance()  # to 0.375 each: sells a third of B at no gain, buys A; no loss realised
    assert book.close_realised()[0, 0] == pytest.approx(0.0, abs=1e-15)
    # by hand: B sold a quarter (0.5 -> 0.375) at its basis, keeping basis 0.375; A bought 0.125 on top of
    # its 0.5 basis. Selling everything at the horizon: A 0.375 against 0.625, B 0.375 against 0.375
    assert book.basis is not None
    np.testing.assert_allclose(book.basis[0, :, 0], [0.625, 0.375], rtol=1e-12)
    tax.on_year_end(book, last=True)
    assert book.taxes_paid[0, 0] == pytest.approx(0.3 * 0.7 * -0.25, rel=1e-12)  # a credit, negative


def test_trading_costs_lower_the_gains_a_depot_is_taxed_on() -> None:
    # a sale's costs come off what it realises and a purchase's go into its basis, so realised plus
    # unrealised gains are exactly the value gained after costs (here with no flows and no tax paid yet)
    policy = RebalancePolicy(costs=TradingCosts(np.array([50.0, 50.0]), fixed=0.001))
    book = FixedMixBook(np.array([[0.5, 0.5], [0.8, 0.2]]), 3, policy)
    book.track_cost_basis()
    rng = np.random.default_rng(5)
    realised = np.zeros((2, 3))
    for _ in range(6):
        book.advance(np.exp(rng.normal(0.0, 0.02, (3, 21, 2))))
        book.rebalance()
        realised += book.close_realised()
    assert book.basis is not None and book.costs_paid.min() > 0.005
    unrealised = np.sum(book.holdings - book.basis, axis=1)
    np.testing.assert_allclose(realised + unrealised, book.value - 1.0, rtol=0, atol=1e-14)


def test_a_depot_of_funds_pays_30_percent_of_a_standard_income_of_0_4_percent_of_the_year_start_value() -> None:
    # schablonintäkt på fondandelar: 0.4% of the funds' value on 1 January, taxed as capital income (30%),
    # with the year's gains and losses; a flat year realises nothing, so the tax is 0.12% of the start value
    tax = DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), 100_000.0)
    book = FixedMixBook(np.array([[1.0]]), 1)
    tax.prepare(book)
    for year, growth in enumerate((1.0, 1.1)):
        start = float(book.value[0, 0])
        paid = float(book.taxes_paid[0, 0])
        for month in range(12 * year, 12 * year + 12):
            tax.on_month_start(book, month)
            book.advance(np.full((1, 21, 1), growth ** (1 / 21)))
            tax.on_month_end(book)
        tax.on_year_end(book)
        assert book.taxes_paid[0, 0] - paid == pytest.approx(0.3 * 0.004 * start, rel=1e-12)
    # a net loss's deductible 70% offsets the standard income too
    assert tax.due(np.array([-0.1]), np.array([2.0]))[0] == pytest.approx(0.3 * (0.004 * 2.0 - 0.7 * 0.1), rel=1e-12)


def test_a_loss_credit_paid_into_an_emptied_depot_moves_a_unit_by_its_share_of_the_years_capital() -> None:
    # the fund halves, then a withdrawal of more than is left sells everything at a loss of 0.5: 30% of 70% of
    # it, 0.105, comes back at the year end into the remnant left at the floor. It is 21% of the 0.5 the
    # account held, so a unit gains 21%: 0.5 x 1.21 (after tax the fund lost 79% of half). Added to the value
    # of a unit whole, it multiplied it (the time-weighted return) by about 1e8
    tax = DepotTax.from_config(DepotConfig(fund_standard_income=0.0), 100_000.0)
    book = FixedMixBook(np.array([[1.0]]), 1)
    tax.prepare(book)
    book.advance(np.full((1, 1, 1), 0.5))
    book.apply_flow(-1.0, 0.0, 1 / 12)
    assert book.depleted[0, 0] and book.value[0, 0] / book.units[0, 0] == pytest.approx(0.5, rel=1e-12)
    tax.on_year_end(book)
    assert book.taxes_paid[0, 0] == pytest.approx(-0.3 * 0.7 * 0.5, rel=1e-6)
    assert book.value[0, 0] == pytest.approx(0.105, rel=1e-6)
    assert book.value[0, 0] / book.units[0, 0] == pytest.approx(0.5 * 1.21, rel=1e-6)


@pytest.mark.parametrize("withdrawn", [0.5, 1.0, 1.5, 1.739, 1.7391, 1.74, 1.95])
def test_the_tax_on_what_a_withdrawal_realised_moves_a_unit_by_its_share_of_the_years_capital(
    withdrawn: float,
) -> None:
    # the fund doubles (1.0 to 2.0), then ``withdrawn`` is taken out: it sells that share of the holding,
    # realising withdrawn / 2 of gains, and the year's tax is 30% of it, 0.15 x withdrawn. As a share of the
    # 2.0 the account held, a unit loses 0.075 x withdrawn of its value: 2 - 0.15 x withdrawn. Past 1.7391
    # the tax exceeds what is left (2 - withdrawn) and only that is paid: 2 - (2 - withdrawn) = withdrawn.
    # Taken from what was left, it made the unit worth 0.00027 at 1.7391 and, by a cut-off, 2.0 at 1.74
    tax = DepotTax.from_config(DepotConfig(fund_standard_income=0.0), 100_000.0)
    book = FixedMixBook(np.array([[1.0]]), 1)
    tax.prepare(book)
    book.advance(np.full((1, 1, 1), 2.0))
    book.apply_flow(-withdrawn, 0.0, 1 / 12)
    tax.on_year_end(book)
    due, left = 0.15 * withdrawn, 2.0 - withdrawn
    assert book.taxes_paid[0, 0] == pytest.approx(min(due, left - 1e-9), rel=1e-9)
    expected = 2.0 - due if due <= left else withdrawn + 1e-9
    assert book.value[0, 0] / book.units[0, 0] == pytest.approx(expected, rel=1e-9)
    assert book.value[0, 0] == pytest.approx(max(left - due, 1e-9), rel=1e-6)


def test_next_years_credit_for_the_loss_a_tax_sale_realised_is_a_share_of_the_units_it_was_sold_from() -> None:
    # the fund doubles and 1.8 of the 2.0 comes out (0.1 of the 1 unit left), realising 0.9 of gains; then it
    # falls to a quarter, a unit worth 0.5. The year's tax, 0.27, exceeds the 0.05 left: the year-end sale
    # takes all but the floor, a unit losing 0.05 / 0.5 (the one unit the year held) to 0.45, and realises a
    # loss of 0.05 against a basis of 0.1 for the next year's tally. That year the account is a remnant
    # throughout; its credit, 30% of 70% of the loss, is a share of the 0.1 units the sale was made from, at
    # the unit's 0.45: a unit gains 0.0105 / 0.045. Of the billionth left, it multiplied a unit's value some
    # ten-million times
    tax = DepotTax.from_config(DepotConfig(fund_standard_income=0.0), 100_000.0)
    book = FixedMixBook(np.array([[1.0]]), 1)
    tax.prepare(book)
    tax.on_month_start(book, 0)
    book.advance(np.full((1, 1, 1), 2.0))
    book.apply_flow(-1.8, 0.0, 1 / 12)
    book.advance(np.full((1, 1, 1), 0.25))
    tax.on_year_end(book)
    assert book.value[0, 0] == pytest.approx(1e-9, rel=1e-6)
    before = book.value[0, 0] / book.units[0, 0]
    assert before == pytest.approx(0.5 * (1.0 - 0.05 / 0.5), rel=1e-6)
    tax.on_month_start(book, 12)
    book.advance(np.full((1, 1, 1), 1.0))
    paid = book.taxes_paid[0, 0]
    tax.on_year_end(book)
    assert book.taxes_paid[0, 0] - paid == pytest.approx(-0.3 * 0.7 * 0.05, rel=1e-6)
    assert book.value[0, 0] / book.units[0, 0] / before == pytest.approx(1.0 + 0.0105 / (0.45 * 0.1), rel=1e-6)


@pytest.mark.parametrize("account", ["isk", "depot"])
def test_without_flows_a_tax_in_a_falling_year_leaves_the_units_and_a_small_flow_moves_a_unit_as_little(
    account: str,
) -> None:
    # the fund falls by half in the year: the account ends it below what it held, yet held no more units, so
    # the tax comes out of a unit's value whole, as the wealth's (the compiled books divide by the units).
    # A flow of a billionth of the wealth changes the units by as little, and a unit's value with them
    def run(flow: float) -> FixedMixBook:
        tax = (
            IskTax.from_config(IskConfig(allowance=0.0), 100_000.0)
            if account == "isk"
            else DepotTax.from_config(DepotConfig(), 100_000.0)
        )
        book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
        tax.prepare(book)
        for month in range(12):
            tax.on_month_start(book, month)
            if flow and month == 6:
                book.apply_flow(flow, 0.0, month / 12)
            if month == 0:
                book.rebalance()
            growth = np.ones((1, 21, 2))
            growth[0, 0] = [0.5 ** (1 / 12), 0.6 ** (1 / 12)]
            book.advance(growth)
            tax.on_month_end(book)
        tax.on_year_end(book)
        return book

    still = run(0.0)
    assert still.taxes_paid[0, 0] != 0.0 and np.array_equal(still.units, np.ones((1, 1)))
    nudged = run(-1e-9)
    assert nudged.value[0, 0] / nudged.units[0, 0] == pytest.approx(still.value[0, 0], rel=1e-8)


def test_a_year_end_tax_of_an_account_that_grew_takes_its_share_of_the_value_as_before() -> None:
    # a savings plan in a rising year ends the year above every value it held: the tax comes out of the value
    # of a unit in full, as it always did (the share of the year's capital applies only below its most)
    tax = DepotTax.from_config(DepotConfig(fund_standard_income=0.0), 100_000.0)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1)
    tax.prepare(book)
    book.record_quarter_start()
    book.apply_flow(0.5, 0.0, 1 / 12)
    growth = np.ones((1, 1, 2))
    growth[0, 0] = [1.6, 1.0]
    book.advance(growth)
    book.rebalance()
    units, value = book.units.copy(), book.value.copy()
    tax.on_year_end(book)
    paid = book.taxes_paid[0, 0]
    assert paid > 0.0 and np.array_equal(book.units, units)
    assert book.value[0, 0] / book.units[0, 0] == pytest.approx((value[0, 0] - paid) / units[0, 0], rel=1e-12)


def test_a_deficit_beyond_sek_100000_earns_21_percent_not_30() -> None:
    # Skatteverket (IL 67 kap. 10 §): a deficit of capital income reduces tax by 30% of it up to SEK 100,000
    # and by 21% of the rest. SEK 2,000,000 of funds realise a SEK 500,000 loss: 70% is deductible,
    # less the standard income of 0.4% of 2,000,000 (8,000): a deficit of 342,000, a credit of
    # 0.30 x 100,000 + 0.21 x 242,000 = 80,820 (not 0.3 x 342,000 = 102,600), in units of the initial wealth
    tax = DepotTax.from_config(DepotConfig(), 2_000_000.0)
    due = tax.due(np.array([-0.25]), np.array([1.0]))[0] * 2_000_000.0
    assert due == pytest.approx(-80_820.0, rel=1e-12)
    # under the limit the whole deficit earns 30%; no limit set, the whole of it
    small = DepotTax.from_config(DepotConfig(), 2_000_000.0).due(np.array([-0.05]), np.array([1.0]))[0]
    assert small * 2_000_000.0 == pytest.approx(-0.3 * (0.7 * 100_000.0 - 8_000.0), rel=1e-12)
    unlimited = DepotTax.from_config(DepotConfig(deficit_limit=None), 2_000_000.0)
    assert unlimited.due(np.array([-0.25]), np.array([1.0]))[0] * 2_000_000.0 == pytest.approx(-102_600.0, rel=1e-12)
    # a gain is taxed as before, whatever the limit
    assert tax.due(np.array([0.25]), np.array([1.0]))[0] == pytest.approx(0.3 * (0.25 + 0.004), rel=1e-12)


def test_a_years_dividends_count_in_its_deficit() -> None:
    # dividends are capital income like gains: SEK 5,000,000 of funds, a 30% loss realised (70% deductible:
    # 1,050,000), standard income 20,000 and dividends 100,000 (2%): a deficit of 930,000, a credit of
    # 0.30 x 100,000 + 0.21 x 830,000 = 204,300 for the year. The dividends' 30% (30,000) was paid as they came,
    # so the settlement is -234,300; leaving the dividends out gave a year's total of -195,300
    wealth = 5_000_000.0
    tax = DepotTax.from_config(DepotConfig(), wealth)
    settlement = tax.due(np.array([-0.3]), np.array([1.0]), np.array([0.02]))[0] * wealth
    assert settlement == pytest.approx(-234_300.0, rel=1e-12)
    assert settlement + 0.3 * 0.02 * wealth == pytest.approx(-204_300.0, rel=1e-12)
    # with a net gain the dividends' tax is the 30% already paid: the settlement is the gains' alone
    assert tax.due(np.array([0.1]), np.array([1.0]), np.array([0.02]))[0] == pytest.approx(0.3 * 0.104, rel=1e-12)


def test_a_depot_book_settles_its_dividends_with_the_year() -> None:
    # the book keeps the year's gross dividends for the settlement, and starts the next year at zero
    tax = DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), 100_000.0, np.array([0.024]))
    book = FixedMixBook(np.array([[1.0]]), 1)
    tax.prepare(book)
    for _ in range(12):
        book.advance(np.ones((1, 21, 1)))
        tax.on_month_end(book)
    dividends = book.close_dividends()[0, 0]
    assert dividends == pytest.approx(sum(0.002 * (1 - 0.3 * 0.002) ** k for k in range(12)), rel=1e-12)
    assert book.close_dividends()[0, 0] == 0.0


def test_dividends_are_taxed_as_paid_and_the_net_reinvested_into_the_basis() -> None:
    tax = DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), 100_000.0, np.array([0.024, 0.0]))
    book = FixedMixBook(np.array([[1.0, 0.0]]), 1)
    tax.prepare(book)
    book.advance(np.ones((1, 21, 2)))
    tax.on_month_end(book)
    # one month of a 2.4% yield: 0.2% paid, 30% of it in tax
    assert book.taxes_paid[0, 0] == pytest.approx(0.3 * 0.002, rel=1e-12)
    assert book.value[0, 0] == pytest.approx(1.0 - 0.3 * 0.002, rel=1e-12)
    assert book.basis is not None and book.basis[0, 0, 0] == pytest.approx(1.0 + 0.7 * 0.002, rel=1e-12)


def test_dividends_not_taxed_as_they_come_are_taxed_with_the_year() -> None:
    # dividend_tax_rate is a prepayment: at 0 the year's settlement still counts the dividends. SEK 100,000 in
    # a fund yielding 3% whose total return is flat (its price falls by the dividends), sold at the end: 3,000
    # of dividends (30%: 900) and, as the basis took the reinvested dividends, a realised loss of 3,000 of
    # which 70% is deductible: 900 - 0.3 x 0.7 x 3,000 = 270 (no standard income on fund units here)
    wealth = 100_000.0
    taxes = []
    for rate in (0.0, 0.3):
        config = DepotConfig(dividend_tax_rate=rate, fund_standard_income=0.0)
        tax = DepotTax.from_config(config, wealth, np.array([0.03]))
        book = FixedMixBook(np.array([[1.0]]), 1)
        tax.prepare(book)
        for _ in range(12):
            book.advance(np.ones((1, 21, 1)))
            tax.on_month_end(book)
        tax.on_year_end(book, last=True)
        taxes.append(book.taxes_paid[0, 0] * wealth)
    # a month's dividends are 0.25% of the holding, which the prepayment shrinks a little: 270 at rate 0,
    # 268.89 with the 30% prepayment (the dividends of months after a payment are on a smaller holding)
    assert taxes[0] == pytest.approx(270.0, rel=1e-12)
    assert taxes[1] == pytest.approx(268.89, abs=0.01)


def test_isk_credits_foreign_withholding_against_its_tax() -> None:
    tax = IskTax(
        standard_rate=0.0296, tax_rate=0.3, allowance=0.0, monthly_yield=np.array([0.02 / 12]), withholding=0.15
    )
    book = FixedMixBook(np.array([[1.0]]), 1)
    for month in range(12):
        tax.on_month_start(book, month)
        book.advance(np.ones((1, 21, 1)))
        tax.on_month_end(book)
    # each month 15% of a 2%/12 dividend is withheld: value after k months (1 - 0.00025) ** k
    kept = 1.0 - 0.15 * 0.02 / 12
    withheld = 1.0 - kept**12
    assert book.taxes_paid[0, 0] == pytest.approx(withheld, rel=1e-12)
    tax.on_year_end(book)
    # ISK tax on the quarter-start values, less what was withheld (credited, never refunded)
    due = sum(kept**month for month in (0, 3, 6, 9)) / 4 * 0.0296 * 0.3
    assert book.taxes_paid[0, 0] == pytest.approx(withheld + max(due - withheld, 0.0), rel=1e-12)
    assert due > withheld


@pytest.mark.parametrize("with_flows", [True, False])
@pytest.mark.parametrize("account", ["isk", "depot"])
def test_compiled_books_with_flows_and_taxes_match_the_reference(account: str, with_flows: bool) -> None:
    dividend_yield = np.array([0.015, 0.01, 0.03, 0.0, 0.02])
    tax = (
        IskTax.from_config(IskConfig(), 100_000.0, dividend_yield)
        if account == "isk"
        else DepotTax.from_config(DepotConfig(), 100_000.0, dividend_yield)
    )
    plan = SimulationPlan(
        model=mixed_model("t" if account == "depot" else "gaussian"),
        fees=FeeModel(np.full(5, 0.002), 252),
        schedule=Schedule(3, 252, "quarterly"),
        weights=WEIGHTS,
        flows=CashFlowSchedule.from_config(SAVINGS, 3, 100_000.0) if with_flows else None,
        tax=tax,
    )
    compiled = run_simulation(plan, 90, 30, seed=8)
    reference = run_simulation(dataclasses.replace(plan, compiled=False), 90, 30, seed=8)
    # without flows too: a year's tax there must leave the units alone, which the compiled books divide by
    assert_same_chunk(compiled, reference)
    names = ("terminal_nav", "invested", "money_weighted", "depleted", "taxes_paid") if with_flows else ("taxes_paid",)
    for name in names:
        np.testing.assert_allclose(
            getattr(compiled.book, name), getattr(reference.book, name), rtol=1e-10, atol=1e-15, err_msg=name
        )
    # money goes in each month, so wealth and the unit value part ways; every path is taxed (a depot's
    # losing paths net a credit: their loss deductions exceed their dividend taxes)
    if with_flows:
        assert not np.allclose(compiled.book.terminal_value, compiled.book.terminal_nav)
    assert (compiled.book.taxes_paid != 0).all()
    if account == "isk":
        assert (compiled.book.taxes_paid > 0).all()


def test_a_retirement_plan_that_runs_out_for_some_paths_runs_to_the_end(tmp_path: Path) -> None:
    # 7.2% of the initial wealth a year for 30 years: a share of the paths run dry. The run used to stop with
    # "the simulation overflowed" once a depleted path's NAV became 0 / 0, and the money-weighted return
    # was NaN on every path (Newton from 0 went the wrong way)
    from mcalloc.config import load_scenario
    from mcalloc.pipeline import run_scenario

    from .conftest import DEFAULT_CONFIG

    overrides = [
        "simulation.n_paths=300",
        "simulation.horizon_years=30",
        "simulation.n_jobs=1",
        "portfolio.flows=[{kind: withdrawal, amount: 600, frequency: monthly}]",
        "optimize.objectives=[{kind: min_variance}]",
        "optimize.frontier.points=0",
        "output.report=false",
        "output.paths=false",
    ]
    outcome = run_scenario(load_scenario(DEFAULT_CONFIG, overrides), out=tmp_path / "retire")
    metrics = outcome.metrics.set_index("portfolio")
    assert (metrics.prob_depleted > 0.05).all() and (metrics.prob_depleted < 0.6).all()
    # the median path is not depleted: its money-weighted return is near the market's growth, not NaN
    assert metrics.mwr_median.between(0.03, 0.15).all(), metrics.mwr_median
    # frontier.points: 0 writes no frontier (frontier.csv was its header alone; a stop-54 hunt)
    assert not (tmp_path / "retire" / "frontier.csv").exists()
    assert mcalloc.load(tmp_path / "retire").frontier is None
    assert np.isfinite(metrics.select_dtypes("number").drop(columns=["mwr_median"], errors="ignore")).all().all()


def test_money_weighted_return_is_the_same_bit_for_bit_however_paths_are_grouped() -> None:
    # a path's rate may not depend on the paths or portfolios solved beside it (booking each distinct mix
    # once, chunks, blocks of 256): its sums run along its own row
    rng = np.random.default_rng(5)
    times = np.arange(480) / 12.0
    flows = np.concatenate([np.ones((1, 2, 300)), -rng.uniform(0.0, 0.01, (479, 2, 300))])
    terminal = rng.lognormal(0.5, 1.0, (2, 300))
    together = money_weighted_return(flows, times, terminal, 40.0)
    assert np.isfinite(together).all()
    alone = [
        money_weighted_return(flows[:, p, i : i + 1], times, terminal[p, i : i + 1], 40.0)[0]
        for p, i in [(0, 7), (1, 299)]
    ]
    assert alone == [together[0, 7], together[1, 299]]
    per_portfolio = money_weighted_return(flows[:, 1], times, terminal[1], 40.0)
    assert np.array_equal(per_portfolio, together[1])
    reversed_order = money_weighted_return(flows[:, :, ::-1], times, terminal[:, ::-1], 40.0)
    assert np.array_equal(reversed_order[:, ::-1], together)


def test_of_several_rates_the_one_nearest_zero_is_returned() -> None:
    # 1 in, 5.1 out after a year, 4.7 in after two, 1.2 left after three: (1 + r)^3 - 5.1 (1 + r)^2 + 4.7 (1 + r)
    # - 1.2 = (1 + r - 0.5)(1 + r - 0.6)(1 + r - 4), so r is -50%, -40% or +300%; -40% is nearest 0
    rate = money_weighted_return(np.array([[1.0], [-5.1], [4.7]]), np.array([0.0, 1.0, 2.0]), np.array([1.2]), 3.0)
    assert rate[0] == pytest.approx(-0.4, abs=1e-12)
