"""Contributions and withdrawals pay trading costs as rebalancing trades do: by hand, in a depot, compiled."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mcalloc
import numpy as np
import pytest
from mcalloc.config.sections import DepotConfig, FlowConfig
from mcalloc.portfolio import FeeModel, FixedMixBook, Schedule
from mcalloc.portfolio.costs import RebalancePolicy, TradingCosts
from mcalloc.portfolio.flows import DEPLETION_FLOOR, CashFlowSchedule
from mcalloc.portfolio.taxes import DepotTax
from mcalloc.simulation import SimulationPlan, run_simulation

from .conftest import DEFAULT_CONFIG
from .test_flows import SAVINGS
from .test_kernels import WEIGHTS, assert_same_chunk, mixed_model

WEALTH = 100_000.0
AUDIT = RebalancePolicy(costs=TradingCosts(bps=np.array([25.0, 25.0]), fixed=39.0 / WEALTH))
"""The audit's broker: 25 bp of the amount traded and SEK 39 courtage per fund traded, on SEK 100,000."""
SPREAD = RebalancePolicy(costs=TradingCosts(bps=np.array([10.0, 30.0]), fixed=39.0 / WEALTH))


def run_book(flows: CashFlowSchedule, policy: RebalancePolicy, daily: tuple[float, float]) -> FixedMixBook:
    """A 50/50 book of SEK 100,000 for a year, never rebalanced, each asset growing by its ``daily`` factor."""
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, policy)
    bounds = Schedule(1, 252, "never").month_bounds
    for month in range(bounds.size - 1):
        fixed, rate = flows.at(month)
        if fixed or rate:
            book.apply_flow(fixed, rate, month / 12.0)
        book.advance(np.tile(np.array(daily), (1, int(bounds[month + 1] - bounds[month]), 1)))
    return book


@pytest.mark.parametrize("daily", [(1.0, 1.0), (1.0004, 0.9998)])
def test_monthly_purchases_pay_what_the_audit_counted(daily: tuple[float, float]) -> None:
    # the audit's example: 11 monthly purchases of SEK 10,000 into two funds (half each) at 25 bp plus SEK 39
    # courtage a fund. Each purchase costs 10,000 x 0.0025 = 25 plus 2 x 39 = 78, so 103; eleven cost 1,133,
    # whatever the markets do (purchases at the target weights do not depend on the holdings)
    plan = [FlowConfig(kind="contribution", amount=10_000.0, frequency="monthly", start_year=1 / 12)]
    summary = run_book(CashFlowSchedule.from_config(plan, 1, WEALTH), AUDIT, daily).summary(1)
    assert summary.costs_paid is not None and summary.invested is not None
    assert WEALTH * summary.costs_paid[0, 0] == pytest.approx(1_133.0, rel=1e-12)
    # the saver paid in 100,000 + 11 x 10,000; the costs came out of that, not out of the saver's pocket
    assert WEALTH * summary.invested[0, 0] == pytest.approx(210_000.0, rel=1e-12)
    if daily == (1.0, 1.0):
        # no returns: wealth is what was paid in less the costs, 210,000 - 1,133 = 208,867
        assert WEALTH * summary.terminal_value[0, 0] == pytest.approx(208_867.0, rel=1e-12)
        # each purchase buys units at the NAV before it, then its 103 lower the NAV as a rebalance's costs do
        value, units = 1.0, 1.0
        for _ in range(11):
            units += 0.1 / (value / units)
            value += 0.1 - 0.00103
        assert summary.terminal_nav is not None and summary.money_weighted is not None
        assert summary.terminal_nav[0, 0] == pytest.approx(value / units, rel=1e-12)
        assert summary.money_weighted[0, 0] < 0.0


@pytest.mark.parametrize(
    ("fixed", "rate", "received", "cost"),
    [
        # SEK 20,000 out sells 10,000 of each fund: 10,000 x 0.001 + 10,000 x 0.003 + 2 x 39 = 10 + 30 + 78 = 118
        (-0.2, 0.0, 20_000.0, 118.0),
        # 4% a year, monthly: 100,000 x 0.04 / 12 = 333.33, half from each fund:
        # 166.67 x 0.001 + 166.67 x 0.003 + 78 = 0.1667 + 0.5 + 78 = 78.6667; 333.33 + 78.67 = 412 leave
        (0.0, 0.04 / 12, 100_000 * 0.04 / 12, 412.0 - 100_000 * 0.04 / 12),
    ],
)
def test_a_withdrawal_sells_its_costs_on_top_and_pays_out_the_amount(
    fixed: float, rate: float, received: float, cost: float
) -> None:
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    book.apply_flow(fixed, rate, 1 / 12)
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(cost, rel=1e-12)
    assert WEALTH * -book.flow_history[-1][1][0, 0] == pytest.approx(received, rel=1e-12)
    left = 100_000.0 - received - cost
    assert WEALTH * book.value[0, 0] == pytest.approx(left, rel=1e-12)
    np.testing.assert_allclose(WEALTH * book.holdings[0, :, 0], left / 2, rtol=1e-12)
    # the units sold are the investor's money at the NAV before the sale; the costs lower the NAV
    assert book.value[0, 0] / book.units[0, 0] == pytest.approx(left / (100_000.0 - received), rel=1e-12)
    assert not book.depleted[0, 0]


def test_costs_never_take_a_depleted_book_below_the_floor() -> None:
    # SEK 150,000 out of 100,000: everything but the floor (SEK 0.0001) is sold, S = 99,999.9999, and the saver
    # gets r with r + 0.002 r + 78 = S (the sale's 10 and 30 bp average 20 bp): r = (S - 78) / 1.002 = 99,722.5548
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    book.apply_flow(-1.5, 0.0, 1 / 12)
    spendable = 100_000.0 - WEALTH * DEPLETION_FLOOR
    paid = (spendable - 78.0) / 1.002
    assert WEALTH * -book.flow_history[-1][1][0, 0] == pytest.approx(paid, rel=1e-12)
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(spendable - paid, rel=1e-9)
    assert book.value[0, 0] == pytest.approx(DEPLETION_FLOOR, rel=1e-6)
    assert book.depleted[0, 0]
    # SEK 99,700 out fits: its costs are 0.002 x 99,700 + 78 = 277.4, leaving 22.6. The next 1,000 cannot pay
    # even the courtage (2 x 39): the costs take the 22.6 but the floor, and the saver receives nothing
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    book.apply_flow(-0.997, 0.0, 1 / 12)
    assert not book.depleted[0, 0]
    assert WEALTH * book.value[0, 0] == pytest.approx(22.6, rel=1e-9)
    book.apply_flow(-0.01, 0.0, 2 / 12)
    assert book.depleted[0, 0]
    assert book.flow_history[-1][1][0, 0] == 0.0
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(277.4 + 22.6 - WEALTH * DEPLETION_FLOOR, rel=1e-9)
    assert book.value[0, 0] == pytest.approx(DEPLETION_FLOOR, rel=1e-6)
    assert (book.holdings >= 0.0).all()


def _emptied_after_a_month() -> tuple[FixedMixBook, np.ndarray, np.ndarray]:
    """A 50/50 book grown for a month by its daily factors, then emptied by SEK 150,000 out of about 100,000;
    with the factors and a unit's value before the withdrawal."""
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    daily = np.array([1.0006, 0.9998])
    book.advance(np.tile(daily, (1, 21, 1)))
    unit = book.value / book.units
    book.apply_flow(-1.5, 0.0, 1 / 12)
    return book, daily, unit


def test_a_withdrawal_that_empties_the_account_leaves_the_value_of_a_unit_to_the_markets() -> None:
    # the sale's costs (0.2% of SEK 100,000 and the courtage) were spread over the SEK 0.0001 left: a unit lost
    # 99.9% of its value, and every later rebalance's costs took the remnant's growth, so the path's CAGR,
    # drawdown and P(loss) read a total loss that was only the saver taking everything out
    book, daily, unit = _emptied_after_a_month()
    assert book.depleted[0, 0] and book.value[0, 0] == pytest.approx(DEPLETION_FLOOR, rel=1e-6)
    np.testing.assert_allclose(book.value / book.units, unit, rtol=1e-12)
    # afterwards the remnant grows with the markets, is not traded, and a unit's value with it
    paid = book.costs_paid.copy()
    holdings = book.holdings.copy()
    book.advance(np.tile(daily, (1, 21, 1)))
    book.rebalance()
    grown = (holdings[0, :, 0] * daily**21).sum() / holdings[0, :, 0].sum()
    np.testing.assert_allclose(book.value / book.units, unit * grown, rtol=1e-12)
    np.testing.assert_array_equal(book.costs_paid, paid)
    # the plan's later withdrawals take nothing from the remnant, not even its growth as costs
    before = book.value / book.units
    book.apply_flow(-0.01, 0.0, 2 / 12)
    np.testing.assert_array_equal(book.value / book.units, before)
    np.testing.assert_array_equal(book.costs_paid, paid)
    assert book.flow_history[-1][1][0, 0] == 0.0
    # refilled by a contribution and emptied again: the second emptying keeps the value of a unit too
    book.apply_flow(0.5, 0.0, 3 / 12)
    book.advance(np.tile(daily, (1, 21, 1)))
    unit = book.value / book.units
    book.apply_flow(-1.5, 0.0, 4 / 12)
    assert book.value[0, 0] == pytest.approx(DEPLETION_FLOOR, rel=1e-6)
    np.testing.assert_allclose(book.value / book.units, unit, rtol=1e-12)


def test_contributions_their_costs_take_into_an_emptied_account_leave_a_unit_as_it_was() -> None:
    # SEK 50 a month into an account a withdrawal emptied, with SEK 78 of courtage: the costs take it all, and
    # the units it bought cut a unit's value 50,000-fold a month until it was 0 and the run failed on 0 / 0
    book, daily, unit = _emptied_after_a_month()
    emptied = book.costs_paid.copy()
    for month in range(2, 26):
        book.apply_flow(50.0 / WEALTH, 0.0, month / 12)
        book.advance(np.tile(daily, (1, 21, 1)))
        book.rebalance()
    # every contribution went in costs, and the remnant is what it was, grown with the markets
    assert WEALTH * (book.costs_paid - emptied)[0, 0] == pytest.approx(24 * 50.0, rel=1e-9)
    growth = float(book.value[0, 0]) / DEPLETION_FLOOR
    assert 1.0 < growth < 1.2  # two years of the assets' daily factors, rebalanced monthly
    # so a unit's value moved only with the markets, as the remnant did
    assert float((book.value / book.units / unit)[0, 0]) == pytest.approx(growth, rel=1e-5)
    assert np.isfinite(book.value).all() and np.isfinite(book.units).all()


def test_buying_in_pays_for_the_initial_purchase_as_a_contribution_would() -> None:
    # SEK 100,000 into two funds, half each, at 25 bp + SEK 39 a fund: 250 + 78 = 328 of costs, 99,672 invested,
    # 49,836 a fund. The investor paid 100,000 (invested), one unit, now worth 0.99672: a depot's basis is what
    # was paid, 50,000 a fund, so a sale at once realises the costs as a loss
    book = FixedMixBook(np.array([[0.5, 0.5], [1.0, 0.0]]), 2, dataclasses.replace(AUDIT, buy_in=True))
    DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), WEALTH).prepare(book)
    np.testing.assert_allclose(WEALTH * book.costs_paid, [[328.0] * 2, [250.0 + 39.0] * 2], rtol=1e-12)
    np.testing.assert_allclose(WEALTH * book.holdings[0], 49_836.0, rtol=1e-12)
    np.testing.assert_allclose(WEALTH * book.holdings[1, 0], 100_000.0 - 289.0, rtol=1e-12)
    assert book.holdings[1, 1].max() == 0.0
    assert book.invested.min() == 1.0 and book.units.min() == 1.0
    assert book.basis is not None
    np.testing.assert_allclose(WEALTH * book.basis[:, :, 0], [[50_000.0, 50_000.0], [100_000.0, 0.0]], rtol=1e-12)
    book.realise_all()
    np.testing.assert_allclose(WEALTH * book.close_realised(), [[-328.0] * 2, [-289.0] * 2], rtol=1e-12)
    # the first month's return is measured from the money paid in, so it is after the costs
    book.advance(np.ones((2, 21, 2)))
    np.testing.assert_allclose(np.expm1(book.log_return_sum), [[-0.00328] * 2, [-0.00289] * 2], rtol=1e-12)
    # without trading costs buying in costs nothing
    free = FixedMixBook(np.array([[0.5, 0.5]]), 1, RebalancePolicy(buy_in=True))
    assert free.value[0, 0] == 1.0 and free.costs_paid[0, 0] == 0.0
    # a short position is sold, and pays as a purchase does: 120% long at 5 bp and 20% short at 50 bp cost
    # 1.2 x 0.0005 + 0.2 x 0.005 = 0.0016 (it used to earn 0.0004: the short's cost came with its sign)
    policy = RebalancePolicy(costs=TradingCosts(np.array([5.0, 50.0]), fixed=0.001), buy_in=True)
    levered = FixedMixBook(np.array([[1.2, -0.2]]), 1, policy)
    assert levered.costs_paid[0, 0] == pytest.approx(0.0016 + 2 * 0.001, rel=1e-12)
    assert levered.value[0, 0] == pytest.approx(1.0 - 0.0036, rel=1e-12)


@pytest.mark.parametrize(
    ("tax", "value", "cost"),
    [
        # SEK 1,000 of tax sells 500 of each fund: 500 x 0.001 + 500 x 0.003 + 2 x 39 = 0.5 + 1.5 + 78 = 80 more
        (1_000.0, 100_000.0 - 1_000.0 - 80.0, 80.0),
        # a credit of SEK 1,000 buys 500 of each for the same 80, which come out of it
        (-1_000.0, 100_000.0 + 1_000.0 - 80.0, 80.0),
        # a tax that takes all but SEK 50 leaves the sale's costs only what is there, down to the floor
        (99_950.0, WEALTH * DEPLETION_FLOOR, 50.0 - WEALTH * DEPLETION_FLOOR),
    ],
)
def test_selling_to_pay_a_tax_pays_the_sales_costs_on_top(tax: float, value: float, cost: float) -> None:
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    book.charge_tax(np.array([[tax / WEALTH]]))
    assert WEALTH * book.taxes_paid[0, 0] == pytest.approx(tax, rel=1e-12)
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(cost, rel=1e-9)
    assert WEALTH * book.value[0, 0] == pytest.approx(value, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(book.holdings[0, :, 0], book.value[0, 0] / 2, rtol=1e-12)


def test_a_depot_sold_at_the_horizon_pays_its_tax_from_the_proceeds_without_trading_costs() -> None:
    # SEK 100,000 50/50, bought free (no buy-in), basis 50,000 a fund; the first fund doubles: 150,000, a gain of
    # 50,000. The horizon's sale is free, and so is paying the tax out of its proceeds: 30% of the gain plus
    # the standard income 0.4% x 100,000 = 15,120, with no SEK 39 per fund or 25 bp on top (it cost 115.8 before)
    tax = DepotTax.from_config(DepotConfig(), WEALTH)
    assert tax.liquidate
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, AUDIT)
    tax.prepare(book)
    tax.on_month_start(book, 0)
    growth = np.ones((1, 21, 2))
    growth[0, 0, 0] = 2.0
    book.advance(growth)
    tax.on_year_end(book, last=True)
    assert WEALTH * book.taxes_paid[0, 0] == pytest.approx(0.3 * (50_000.0 + 400.0), rel=1e-12)
    assert book.costs_paid[0, 0] == 0.0
    assert WEALTH * book.value[0, 0] == pytest.approx(150_000.0 - 15_120.0, rel=1e-12)
    # a loss at the horizon earns a credit that joins the cash, bought into nothing: fund A halves, a 25,000
    # loss, 70% of it less the 400 of standard income is a 17,100 deficit, credited at 30%: 5,130
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, AUDIT)
    tax.prepare(book)
    tax.on_month_start(book, 0)
    book.advance(np.where(growth == 2.0, 0.5, growth))
    tax.on_year_end(book, last=True)
    assert WEALTH * book.taxes_paid[0, 0] == pytest.approx(-5_130.0, rel=1e-12)
    assert book.costs_paid[0, 0] == 0.0
    assert WEALTH * book.value[0, 0] == pytest.approx(75_000.0 + 5_130.0, rel=1e-12)
    # a year's settlement before the horizon still sells units for the tax, and pays for the sale
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, AUDIT)
    tax.prepare(book)
    book.advance(growth)
    book.realise_all()
    tax.on_year_end(book)
    assert book.costs_paid[0, 0] > 0.0


def test_a_depot_adds_purchase_costs_to_the_basis_and_takes_sale_costs_off_the_gain() -> None:
    # SEK 100,000 50/50 (basis 50,000 each); SEK 10,000 in at 25 bp + 2 x 39: 103 of costs, 9,897 bought,
    # 4,948.5 a fund, and each fund's basis grows by its 5,000 (4,948.5 bought + half the costs): 55,000.
    # A then doubles: 109,897 / 54,948.5, value 164,845.5 against a basis of 110,000. SEK 10,000 out sells
    # 10,000 + 103 of costs in proportion, a share f = 10,103 / 164,845.5 = 0.0612877 of each fund, realising
    # f x (164,845.5 - 110,000) less the sale's 103: 3,258.354; each basis keeps (1 - f) x 55,000 = 51,629.177
    tax = DepotTax.from_config(DepotConfig(liquidate_at_horizon=False), WEALTH)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, AUDIT)
    tax.prepare(book)
    book.apply_flow(0.1, 0.0, 1 / 12)
    assert book.basis is not None
    np.testing.assert_allclose(WEALTH * book.basis[0, :, 0], [55_000.0, 55_000.0], rtol=1e-12)
    np.testing.assert_allclose(WEALTH * book.holdings[0, :, 0], [54_948.5, 54_948.5], rtol=1e-12)
    growth = np.ones((1, 21, 2))
    growth[0, 0, 0] = 2.0
    book.advance(growth)
    book.apply_flow(-0.1, 0.0, 2 / 12)
    share = 10_103.0 / 164_845.5
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(206.0, rel=1e-12)
    assert WEALTH * book.close_realised()[0, 0] == pytest.approx(share * 54_845.5 - 103.0, rel=1e-12)
    np.testing.assert_allclose(WEALTH * book.basis[0, :, 0], (1 - share) * 55_000.0, rtol=1e-12)


@pytest.mark.parametrize(("direct_flows", "buy_in"), [(False, False), (True, False), (False, True)])
def test_a_depots_gains_are_the_money_gained_after_every_cost(direct_flows: bool, buy_in: bool) -> None:
    # realised plus unrealised gains are exactly what the account holds beyond the money put in net of the
    # money taken out (taxes and credits aside): every purchase's costs are in a basis and every sale's come
    # off a gain, the initial purchase's and a tax sale's included
    costs = TradingCosts(np.array([25.0, 5.0, 60.0]), fixed=0.0005)
    policy = RebalancePolicy(costs=costs, direct_flows=direct_flows, buy_in=buy_in)
    book = FixedMixBook(np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]]), 4, policy)
    book.track_cost_basis()
    rng = np.random.default_rng(11)
    realised = np.zeros((2, 4))
    for month in range(12):
        book.apply_flow(float(rng.choice([0.05, 0.0, -0.08])), 0.01, month / 12)
        if not direct_flows and month % 3 == 0:
            book.rebalance()
        book.advance(np.exp(rng.normal(0.0, 0.02, (4, 21, 3))))
        if month % 4 == 3:  # taxes and credits larger than their costs (a smaller credit is spent on them)
            book.charge_tax(rng.uniform(0.002, 0.01, (2, 4)) * rng.choice([-1.0, 1.0], (2, 4)))
        realised += book.close_realised()
    assert book.basis is not None and book.costs_paid.min() > 0.002
    unrealised = np.sum(book.holdings - book.basis, axis=1)
    np.testing.assert_allclose(realised + unrealised, book.value + book.taxes_paid - book.invested, rtol=0, atol=1e-14)


@pytest.mark.parametrize("trade", ["credit", "contribution"])
def test_costs_that_take_a_whole_purchase_join_the_basis_and_move_nothing(trade: str) -> None:
    # a credit (or a contribution) of SEK 42.74 against two funds' courtage of SEK 39 each is spent on it whole:
    # nothing is bought, the holdings stay exactly as they were (a rounding's residue of a trade used to decide
    # whether the costs lowered the gains or joined the basis, and so the next year's tax: compiled and
    # reference books disagreed on another machine), and the costs, a purchase's, join the basis, so that the
    # gains stay the money gained (a contribution's costs used to be booked nowhere)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, SPREAD)
    book.track_cost_basis()
    book.advance(np.full((1, 1, 2), 0.999999))
    assert book.basis is not None
    holdings, basis, value = book.holdings.copy(), book.basis.copy(), book.value.copy()
    amount = 42.74 / WEALTH
    if trade == "credit":
        book.charge_tax(np.array([[-amount]]))
    else:
        book.apply_flow(amount, 0.0, 0.5)
    assert WEALTH * book.costs_paid[0, 0] == pytest.approx(42.74, rel=1e-12)
    np.testing.assert_array_equal(book.holdings, holdings)
    np.testing.assert_array_equal(book.value, value)
    assert book.close_realised()[0, 0] == 0.0
    np.testing.assert_allclose(book.basis - basis, amount * holdings / value[0, 0], rtol=1e-12)
    unrealised = np.sum(book.holdings - book.basis, axis=1)
    np.testing.assert_allclose(unrealised, book.value + book.taxes_paid - book.invested, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("direct_flows", "rebalance"), [(False, "quarterly"), (True, "flows")])
def test_compiled_books_with_costs_flows_and_a_depot_match_the_reference(direct_flows: bool, rebalance: str) -> None:
    buy_in = direct_flows
    costs = TradingCosts(bps=np.array([5.0, 20.0, 10.0, 2.0, 30.0]), fixed=0.0005)
    plan = SimulationPlan(
        model=mixed_model("t"),
        fees=FeeModel(np.full(5, 0.002), 252),
        schedule=Schedule(3, 252, rebalance),
        weights=WEIGHTS,
        flows=CashFlowSchedule.from_config(SAVINGS, 3, WEALTH),
        tax=DepotTax.from_config(DepotConfig(), WEALTH, np.array([0.015, 0.01, 0.03, 0.0, 0.02])),
        policy=RebalancePolicy(costs=costs, direct_flows=direct_flows, buy_in=buy_in),
    )
    compiled = run_simulation(plan, 90, 30, seed=12)
    reference = run_simulation(dataclasses.replace(plan, compiled=False), 90, 30, seed=12)
    assert_same_chunk(compiled, reference)
    for name in ("costs_paid", "terminal_nav", "invested", "money_weighted", "depleted", "taxes_paid"):
        np.testing.assert_allclose(
            getattr(compiled.book, name), getattr(reference.book, name), rtol=1e-10, atol=1e-15, err_msg=name
        )
    # the all-in-one-asset portfolio never trades to rebalance: what it paid is its flows' courtage and bps.
    # Three years of monthly flows are 36 trades of asset one (in months 12 and 24 the contribution and the
    # 4% withdrawal net to one sale): 36 courtages and 5 bp of what was traded
    assert compiled.book.costs_paid is not None
    assert (compiled.book.costs_paid[:, 0] > 36 * 0.0005).all()


def test_steering_contributions_to_the_targets_pays_for_the_purchases() -> None:
    # rebalance: flows. 50/50 after A doubled: 1.0 / 0.5. A contribution of 0.3 buys B alone (short of its
    # target by more than 0.3): 0.3 x 20 bp + one courtage of 0.001 = 0.0016, so 0.2984 goes into B.
    # A withdrawal of 0.2 then sells A alone (0.35 over its target): 0.2 x 10 bp + 0.001 = 0.0012 more of A
    policy = RebalancePolicy(costs=TradingCosts(bps=np.array([10.0, 20.0]), fixed=0.001), direct_flows=True)
    book = FixedMixBook(np.array([[0.5, 0.5]]), 1, policy)
    growth = np.ones((1, 21, 2))
    growth[0, 0, 0] = 2.0
    book.advance(growth)
    book.apply_flow(0.3, 0.0, 1 / 12)
    assert book.costs_paid[0, 0] == pytest.approx(0.0016, rel=1e-12)
    np.testing.assert_allclose(book.holdings[0, :, 0], [1.0, 0.7984], rtol=1e-12)
    book.apply_flow(-0.2, 0.0, 2 / 12)
    assert book.costs_paid[0, 0] == pytest.approx(0.0028, rel=1e-12)
    np.testing.assert_allclose(book.holdings[0, :, 0], [0.7988, 0.7984], rtol=1e-12)


def test_a_run_steered_by_flows_reports_what_its_purchases_cost(tmp_path: Path) -> None:
    # SEK 1,000 a month from month 2 of two years: 23 purchases. The S&P 500 alone buys one fund each time,
    # 1,000 x 25 bp + 39 = 41.5, so 23 x 41.5 = 954.5 on every path; it used to report 0 (rebalance: flows
    # never trades on a calendar, and the purchases were free)
    overrides = [
        "optimize.objectives=[]",
        "portfolio.rebalance=flows",
        "portfolio.courtage=39",
        "portfolio.flows=[{kind: contribution, amount: 1000, start_year: 0.0833333333333}]",
        *(f"assets.{index}.trading_cost_bps=25" for index in range(3)),
    ]
    small = {
        "simulation__n_paths": 200,
        "simulation__chunk_size": 100,
        "simulation__horizon_years": 2,
        "simulation__n_jobs": 1,
        "output__report": False,
        "output__paths": False,
    }
    held = mcalloc.run(
        DEFAULT_CONFIG, out=tmp_path / "held", overrides=[*overrides, "portfolio.initial_costs=false"], **small
    )
    assert held.metrics.set_index("portfolio").loc["sp500_only", "trading_costs_mean"] == pytest.approx(
        954.5, rel=1e-12
    )
    # by default the initial SEK 100,000 is bought too: 100,000 x 25 bp + 39 = 289 more
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=overrides, **small)
    metrics = run.metrics.set_index("portfolio")
    assert metrics.loc["sp500_only", "trading_costs_mean"] == pytest.approx(954.5 + 289.0, rel=1e-12)
    assert metrics.loc["sp500_only", "invested_mean"] == pytest.approx(123_000.0, rel=1e-12)
    # the mixes buy one to three funds a month: at least the one courtage and the bps, at most three courtages
    mixes = metrics.drop(index="sp500_only")["trading_costs_mean"]
    assert (mixes >= 954.5 + 289.0 - 1e-6).all() and (mixes <= 23 * (2.5 + 3 * 39.0) + 250.0 + 3 * 39.0).all()


def test_an_initial_purchase_whose_costs_take_all_the_wealth_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # SEK 100 into three funds at SEK 39 courtage each: the purchase cost 117, the rest of the run held the floor
    # and every return read a near-total loss, without a word (a stop-53 hunt)
    from mcalloc.cli.main import main

    from .conftest import ROOT, one_error_line

    savings = str(ROOT / "configs" / "examples" / "monthly_savings.yaml")
    cheap = ["--set", "portfolio.courtage=39"]
    assert main(["validate", savings, *cheap, "--set", "portfolio.initial_wealth=100"]) == 2
    one_error_line(
        capsys.readouterr(),
        ("portfolio.initial_wealth", "buying benchmarks.mix_60_20_20 (3 assets) costs 117.00", "initial_costs: false"),
    )
    assert main(["validate", savings, *cheap, "--set", "portfolio.initial_wealth=118"]) == 0
    held = ["--set", "portfolio.initial_wealth=100", "--set", "portfolio.initial_costs=false"]
    assert main(["validate", savings, *cheap, *held]) == 0
    capsys.readouterr()
    # an optimised mix holds one asset at least
    only = ["--set", "portfolio.benchmarks={}", "--set", "portfolio.courtage=100000"]
    only += ["--set", "optimize.objectives=[{kind: min_variance}]"]
    assert main(["validate", str(DEFAULT_CONFIG), *only]) == 2
    one_error_line(capsys.readouterr(), ("buying optimised portfolios (1 asset) costs 100,000.00",))
