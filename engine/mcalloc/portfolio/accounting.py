"""Fixed-mix portfolios run along simulated paths, block by block.

A :class:`FixedMixBook` holds, for each path and portfolio, the value held in
each asset. It consumes the after-fee growth of the assets one block of days
at a time (a month in the pipeline) and keeps only what the metrics need:
current value, running peak, maximum drawdown (on daily values), sums of
block (monthly) log returns and year-end values. Memory therefore does not grow with the horizon.

Values are relative to an initial wealth of 1.
"""

from __future__ import annotations

import numpy as np

from mcalloc.portfolio.book_summary import BookSummary
from mcalloc.portfolio.costs import RebalancePolicy

__all__ = ["DRAWDOWN_BINS", "FixedMixBook"]

DRAWDOWN_BINS = 10_000
"""Bins of the month-end drawdown histogram over [0, 1]: CDaR to within 1e-4."""


_REMNANT = 1e-6
"""A book worth at most this share of the initial wealth is what a depleting withdrawal left: not rebalanced."""


class FixedMixBook:
    """Mutable accounting state for one chunk of paths.

    Parameters
    ----------
    weights
        ndarray of shape (n_portfolios, n_assets); each row sums to 1.
    n_paths
        Number of paths in the chunk.

    Internally paths run along the last axis (holdings of shape
    (n_portfolios, n_assets, n_paths), values of shape (n_portfolios,
    n_paths)), so that every per-day operation works on contiguous rows of
    ``n_paths`` values; :meth:`summary` returns the usual (n_paths, ...)
    arrays.
    """

    def __init__(self, weights: np.ndarray, n_paths: int, policy: RebalancePolicy | None = None) -> None:
        self.weights = np.asarray(weights, dtype=float)
        self.policy = policy or RebalancePolicy()
        n_portfolios, n_assets = self.weights.shape
        self.holdings = np.broadcast_to(self.weights[:, :, None], (n_portfolios, n_assets, n_paths)).copy()
        self.value = np.ones((n_portfolios, n_paths))
        # the value a block's return is measured from: before the costs of a rebalance at its start
        self.block_start = np.ones((n_portfolios, n_paths))
        self.costs_paid = np.zeros((n_portfolios, n_paths))
        self.rebalances = np.zeros((n_portfolios, n_paths))
        # month-end drawdowns of every path, pooled, for the conditional drawdown at risk: from the daily peak,
        # and from the month-end peak, with each path's deepest of those, as the optimiser's monthly paths see them
        self.drawdown_histogram = np.zeros((n_portfolios, 2, DRAWDOWN_BINS), dtype=np.int64)
        self.month_peak = np.ones((n_portfolios, n_paths))
        self.month_max_drawdown = np.zeros((n_portfolios, n_paths))
        # steps in a row below the running peak of the NAV, now and at the longest
        self.underwater = np.zeros((n_portfolios, n_paths))
        self.longest_underwater = np.zeros((n_portfolios, n_paths))
        # units of a fund-like NAV: flows buy and sell units, so NAV = value / units moves with markets only
        self.units = np.ones((n_portfolios, n_paths))
        self.invested = np.ones((n_portfolios, n_paths))
        self.depleted = np.zeros((n_portfolios, n_paths), dtype=bool)
        self.flow_history: list[tuple[float, np.ndarray]] = [(0.0, np.ones((n_portfolios, n_paths)))]
        self.has_flows = False
        self.taxes_paid = np.zeros((n_portfolios, n_paths))
        # set by a taxed account's plan: then every chunk reports its taxes, the untaxed ones their zeros
        self.taxed = False
        self._quarter_values = np.zeros((n_portfolios, n_paths))
        self._year_deposits = np.zeros((n_portfolios, n_paths))
        # the most units the account held this tax year before each flow and before the last year's tax sale (units
        # change only there; those held now count too): its capital at today's unit value, whatever the markets did
        self._year_units = np.zeros((n_portfolios, n_paths))
        self._withheld = np.zeros((n_portfolios, n_paths))
        # average-cost basis per holding and the year's realised gains, kept only for a taxed depot
        self.basis: np.ndarray | None = None
        self._realised = np.zeros((n_portfolios, n_paths))
        # the year's dividends, gross: a taxed depot settles them with the year's gains and losses
        self._dividends = np.zeros((n_portfolios, n_paths))
        self.peak = np.ones((n_portfolios, n_paths))
        self.max_drawdown = np.zeros((n_portfolios, n_paths))
        self.log_return_sum = np.zeros((n_portfolios, n_paths))
        self.log_return_sumsq = np.zeros((n_portfolios, n_paths))
        self.period_return_sum = np.zeros((n_portfolios, n_paths))
        self.period_return_sumsq = np.zeros((n_portfolios, n_paths))
        self.year_end_values: list[np.ndarray] = []
        self.n_steps = 0
        self.n_blocks = 0
        self._buffers: dict[str, np.ndarray] = {}
        if self.policy.buy_in:
            self._buy_in()

    def _buy_in(self) -> None:
        """Pay for buying the targets with the initial wealth, as a contribution into an empty account would.

        The costs come out of the money (at most all but the floor), the rest
        is held at the target weights; the unit bought for the initial wealth
        is worth that much less, so the first month's return is after them.
        """
        costs = self.policy.costs
        if costs is None:
            return
        # a short position is a trade too: its size, not its sign, pays
        cost = np.minimum(costs.of(np.abs(self.holdings)), self._above_floor())
        self.value = self.value - cost
        self.holdings = self.value[:, None, :] * self.weights[:, :, None]
        self.costs_paid += cost

    def _scratch(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float array kept from block to block under ``name``; its contents are left over.

        Months of the same length reuse memory that is already mapped: a
        fresh block-sized array costs more in page faults than the arithmetic
        on it where freed memory goes back to the system.
        """
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = np.empty(shape)
        return buffer

    def _record_period(self, block_log_return: np.ndarray) -> None:
        """Add a block's simple NAV return (from its log return) to the sums behind the pooled volatility."""
        simple = np.expm1(block_log_return)
        self.period_return_sum += simple
        self.period_return_sumsq += simple * simple

    def _record_drawdown(self) -> None:
        """Add each book's drawdown at the end of the block (month) to the histograms behind CDaR.

        From the daily NAV's running peak, and from the highest month-end NAV
        (whose deepest fall each path keeps, as ``month_max_drawdown``).
        """
        self._count_drawdowns(self.peak, self.drawdown_histogram[:, 0])
        np.maximum(self.month_peak, self.block_start, out=self.month_peak)
        np.maximum(self.month_max_drawdown, 1.0 - self.block_start / self.month_peak, out=self.month_max_drawdown)
        self._count_drawdowns(self.month_peak, self.drawdown_histogram[:, 1])

    def _count_drawdowns(self, peak: np.ndarray, histogram: np.ndarray) -> None:
        """Add ``1 - block_start / peak`` (n_portfolios, n_paths) to ``histogram`` (n_portfolios, n_bins), in place."""
        drawdown = 1.0 - self.block_start / peak
        bins = np.minimum((drawdown * DRAWDOWN_BINS).astype(np.intp), DRAWDOWN_BINS - 1)
        for portfolio, row in enumerate(bins):
            histogram[portfolio] += np.bincount(row, minlength=DRAWDOWN_BINS)

    def _above_floor(self) -> np.ndarray:
        """What a withdrawal, tax or cost may take: all but :data:`mcalloc.portfolio.flows.DEPLETION_FLOOR`."""
        from mcalloc.portfolio.flows import DEPLETION_FLOOR

        spendable: np.ndarray = self.value - np.minimum(self.value, DEPLETION_FLOOR)
        return spendable

    def apply_flow(self, fixed: float, rate: float, time: float, deposit: float | None = None) -> None:
        """Add ``fixed`` (share of initial wealth; negative: withdraw) and withdraw ``rate`` of wealth, at ``time``.

        ``deposit`` is the contributions within the flow, counted gross for
        an ISK's capital base (a withdrawal the same month does not lower
        it); by default the net flow's positive part.

        Contributions are invested at the target weights; withdrawals sell
        every holding in proportion. With trading costs the flow's trades
        pay what rebalancing trades pay (:meth:`_flow_costs`): a
        contribution's costs come out of it, a withdrawal's are sold on top
        of it. Units are bought and sold for the investor's money, so the
        costs lower the NAV, as a rebalance's do. A withdrawal larger than
        the wealth (with its costs) leaves :data:`mcalloc.portfolio.flows.DEPLETION_FLOOR`
        of the initial wealth invested (all there is, if less) and marks the
        path depleted; later withdrawals take nothing more from it. (Taking
        all but a share of what is left, month after month, would drive its
        value and units to zero and the value of a unit to 0 / 0.)
        """
        np.maximum(self._year_units, self.units, out=self._year_units)
        cash = fixed - rate * self.value
        # what a withdrawal plan emptied holds a remnant, not money: withdrawals take nothing from it (its growth
        # would go in costs), while contributions still go in
        unpaid = (self.value <= _REMNANT) & (cash < 0.0)
        # an amount asked of it goes unpaid, even where the markets, not a plan, left it (a share is paid)
        if fixed < 0.0:
            self.depleted |= unpaid
        cash = np.where(unpaid, 0.0, cash)
        spendable = self._above_floor()
        emptied = cash < -spendable  # by this flow: a path refilled and emptied again counts again
        self.depleted |= emptied
        cash = np.maximum(cash, -spendable)
        nav = self.value / self.units
        cost = None
        moved = cash
        if self.policy.costs is not None:
            cash, cost, short = self._flow_costs(cash, spendable)
            emptied |= short
            moved = cash - cost
        before = self.holdings
        self._set_holdings(self._flowed(moved))
        if cost is not None:
            if self.basis is not None:
                self._book_trading_costs(before, cost)
            self.costs_paid += cost
        # units go for the investor's money; a withdrawal that empties the account also takes its costs out of
        # the investor's money: spread over the remnant left at the floor, they would cut a unit's value a
        # million-fold and make the path's time-weighted return a total loss. So does any flow into a remnant: a
        # contribution its costs take whole, month after month, cut a unit's value to 0 and made 0 / 0
        kept = emptied | (self.value <= _REMNANT)
        self.units = np.where(kept, (self.value + moved) / nav, self.units + cash / nav)
        self.value = self.value + moved
        self.invested = self.invested + cash
        self._year_deposits += np.maximum(cash, 0.0) if deposit is None else deposit
        self.flow_history.append((time, cash))
        self.has_flows = True

    def _flow_costs(self, cash: np.ndarray, spendable: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The money a flow brings or pays out, its costs, and where they empty the account; (n_portfolios, n_paths).

        As for a rebalance, the costs are those of the trades the flow asks
        for at the value before costs (``cash`` split as :meth:`_flowed`
        splits it); they then come out of a contribution (at most all of it)
        or are sold on top of a withdrawal. A withdrawal ``w`` whose costs
        ``c(w)`` would take the account below the floor, ``w + c(w) >
        spendable``, pays out the ``r`` with ``r + c(r) = spendable`` (the
        ``bps`` scaled to ``r``, the courtage whole; if the courtage alone
        exceeds what there is, it takes all of it and ``r = 0``), and the
        path is depleted.
        """
        costs = self.policy.costs
        assert costs is not None
        traded = np.abs(self._flowed(cash) - self.holdings)
        proportional, courtage = costs.proportional(traded), costs.courtage(traded)
        cost = proportional + courtage
        cost = np.where(cash >= 0.0, np.minimum(cost, cash), cost)
        short = cash - cost < -spendable
        if short.any():
            asked = -cash
            rate = np.divide(proportional, asked, out=np.zeros_like(asked), where=short & (asked > 0.0))
            paid = np.maximum(spendable - courtage, 0.0) / (1.0 + rate)
            cash = np.where(short, -paid, cash)
            cost = np.where(short, spendable - paid, cost)
            self.depleted |= short
        return cash, cost, short

    def _flowed(self, amount: np.ndarray) -> np.ndarray:
        """Holdings once ``amount`` (n_portfolios, n_paths; negative: taken out) is invested or sold, costs aside."""
        after = self.value + amount
        if self.policy.direct_flows:
            return self._directed(amount, after)
        holdings: np.ndarray = np.where(
            amount[:, None, :] >= 0.0,
            self.holdings + amount[:, None, :] * self.weights[:, :, None],
            self.holdings * (after / self.value)[:, None, :],
        )
        return holdings

    def _directed(self, cash: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Holdings after a flow steered towards the targets (rebalancing with cash flows only).

        A contribution fills each asset's shortfall from its target at the
        new value, in proportion to the shortfalls, and buys at the target
        weights whatever is left once none is short; a withdrawal takes from
        the excesses in the same way.
        """
        targets = after[:, None, :] * self.weights[:, :, None]
        gap = targets - self.holdings
        sign = np.where(cash >= 0.0, 1.0, -1.0)[:, None, :]
        room = np.maximum(sign * gap, 0.0)
        total = room.sum(axis=1)
        amount = np.abs(cash)
        filled = np.minimum(amount, total)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total[:, None, :] > 0.0, room / total[:, None, :], 0.0)
        moved = share * filled[:, None, :] + (amount - filled)[:, None, :] * self.weights[:, :, None]
        return np.asarray(self.holdings + sign * moved)

    def record_quarter_start(self) -> None:
        """Add the current value to this tax year's tally of quarter-start values."""
        self._quarter_values += self.value

    def record_withheld(self, amount: np.ndarray) -> None:
        """Add foreign tax withheld on dividends to this year's tally."""
        self._withheld += amount

    def close_withheld(self) -> np.ndarray:
        """This year's foreign tax withheld, (n_portfolios, n_paths); then reset."""
        withheld, self._withheld = self._withheld, np.zeros_like(self.value)
        return withheld

    def close_tax_year(self) -> tuple[np.ndarray, np.ndarray]:
        """The year's sum of quarter-start values and its deposits, (n_portfolios, n_paths) each; then reset."""
        tally = (self._quarter_values, self._year_deposits)
        self._quarter_values = np.zeros_like(self.value)
        self._year_deposits = np.zeros_like(self.value)
        return tally

    def charge_tax(self, amount: np.ndarray, in_cash: bool = False) -> None:
        """Pay ``amount`` (n_portfolios, n_paths) by selling every holding in proportion; the NAV falls.

        A negative amount (a tax credit) is reinvested in proportion instead.
        With trading costs the sale (or purchase) pays them as a withdrawal's
        (or contribution's) trades do: sold on top of the tax (or out of the
        credit), never below the floor. ``in_cash``: the account was just
        sold whole (:meth:`realise_all`), so the tax comes out of (or the
        credit joins) its cash, with no trade and no cost.

        A year's tax (or credit) is a cost (or a return) of the capital it
        was earned on, so it moves the value of a unit (the time-weighted
        return) by its share of the most units the account held in the year
        (now, before each flow, and before the last year's tax, whose sale
        realised gains of this one), valued at today's unit
        value, never by more than its share of the value left; the rest
        moves as a flow does, selling (or buying) units at the unit's value.
        Taken whole from what a large withdrawal left, a tax on the gains the
        withdrawal realised, or a loss credit paid into the remnant a
        withdrawal plan left, turned a path whose markets rose into a total
        loss or multiplied a unit's value many times over. Without flows the
        units never change, and with small ones the share is all but the
        whole. A tax larger than what is left is paid only in part; the rest
        goes unpaid.
        """
        spendable = self._above_floor()
        paid = np.minimum(amount, spendable)
        value = self.value
        nav = value / self.units
        capital = np.maximum(nav * self._year_units, value)
        cost = np.zeros_like(paid)
        costs = None if in_cash else self.policy.costs
        if costs is not None:
            traded = np.abs(self.holdings * (paid / value)[:, None, :])
            cost = np.minimum(costs.of(traded), np.where(paid >= 0.0, spendable - paid, -paid))
        # in one rounding: a credit its costs take whole (paid = -cost) then leaves the holdings exactly as they
        # were, not moved by a rounding's residue, whose sign would decide whether its costs join the basis or
        # the gains
        after = value - (paid + cost)
        before = self.holdings
        self._set_holdings(self.holdings * (after / value)[:, None, :])
        if costs is not None:
            if self.basis is not None:
                self._book_trading_costs(before, cost)
            self.costs_paid += cost
        # the sale that paid it realised gains (and costs) of next year's tally, on the units it was made from
        self._year_units = self.units.copy()
        # the unit's value moves by the tax's (or the credit's, net of its costs) share of the year's capital;
        # positive, as paid + cost stays below the value (a tax) or at most 0 (a credit)
        unit_change = 1.0 - (paid + cost) / capital
        # (a rounding's difference is none: the units of an account that held no more stay exactly as they were)
        self.units = np.where(capital > value * (1.0 + 1e-12), after / (nav * unit_change), self.units)
        self.value = after
        self.taxes_paid += paid

    def keep_taxes(self) -> None:
        """Report ``taxes_paid`` for every path, as a taxed account must, even where this chunk owed none."""
        self.taxed = True

    def track_cost_basis(self) -> None:
        """Start keeping each holding's average-cost basis and the year's realised gains; call before any trade.

        The basis is what was paid: today's holdings and, shared as the
        purchases were, the costs of the initial purchase.
        """
        self.basis = self.holdings + self.costs_paid[:, None, :] * self.weights[:, :, None]

    def _set_holdings(self, new: np.ndarray) -> None:
        """Move to ``new`` holdings; with a cost basis, book the sales' gains and the purchases' cost.

        Average-cost method: selling a share ``f`` of a holding realises ``f``
        of its gain over its basis and keeps ``1 - f`` of the basis; buying
        adds what was paid.
        """
        if self.basis is not None:
            old = self.holdings
            sold = np.clip((old - new) / np.where(old > 0.0, old, 1.0), 0.0, 1.0)
            self._realised += np.sum(sold * (old - self.basis), axis=1)
            self.basis = self.basis * (1.0 - sold) + np.maximum(new - old, 0.0)
        self.holdings = new

    def _book_trading_costs(self, before: np.ndarray, cost: np.ndarray) -> None:
        """Book a rebalance's ``cost`` (n_portfolios, n_paths) against the gains, as the tax rules do.

        A sale's costs lower what it realises and a purchase's are part of
        what was paid (its basis); each trade carries the cost in proportion
        to the amount traded. Costs that took a whole trade, so that nothing
        moved (a contribution or a tax credit smaller than its courtage), are
        a purchase's: they join the basis in proportion to the holdings.
        """
        assert self.basis is not None
        sold = np.maximum(before - self.holdings, 0.0)
        bought = np.maximum(self.holdings - before, 0.0)
        traded = sold.sum(axis=1) + bought.sum(axis=1)
        spent = (traded == 0.0) & (cost > 0.0)
        if spent.any():
            bought = np.where(spent[:, None, :], np.maximum(before, 0.0), bought)
            traded = sold.sum(axis=1) + bought.sum(axis=1)
        share = np.divide(cost, traded, out=np.zeros_like(cost), where=traded > 0.0)
        self._realised -= share * sold.sum(axis=1)
        self.basis = self.basis + share[:, None, :] * bought

    def realise_all(self) -> None:
        """Sell everything at today's value (the gains join the year's tally); the money stays in the account."""
        if self.basis is not None:
            self._realised += np.sum(self.holdings - self.basis, axis=1)
            self.basis = self.holdings.copy()

    def close_dividends(self) -> np.ndarray:
        """This year's gross dividends, (n_portfolios, n_paths); then reset."""
        dividends, self._dividends = self._dividends, np.zeros_like(self.value)
        return dividends

    def close_realised(self) -> np.ndarray:
        """The year's net realised gains, (n_portfolios, n_paths); then reset."""
        realised, self._realised = self._realised, np.zeros_like(self.value)
        return realised

    def pay_dividend_tax(self, monthly_yield: np.ndarray, rate: float) -> np.ndarray:
        """Tax ``rate`` on a month's dividends, ``monthly_yield`` (n_assets,) of each holding; returns it per book.

        The returns are total returns, dividends reinvested; the tax comes out
        of the reinvested dividend, which (with a cost basis) buys at today's
        price, so the basis grows by the dividend after tax.
        """
        dividends = self.holdings * monthly_yield[None, :, None]
        if self.basis is not None:  # a depot settles them with the year; an ISK does not count them
            self._dividends += dividends.sum(axis=1)
        tax = rate * dividends
        if self.basis is not None:
            self.basis = self.basis + dividends - tax
        self.holdings = self.holdings - tax
        paid = tax.sum(axis=1)
        self.value = self.value - paid
        self.taxes_paid += paid
        return np.asarray(paid)

    def rebalance(self) -> None:
        """Return every portfolio to its target weights at current value, paying for the trades.

        With a band, only books with a weight outside it trade. The trades
        are those to the targets at the value before costs; the costs then
        come off the value, which is invested at the targets.
        """
        policy = self.policy
        if policy.costs is None and policy.band is None:
            if self.basis is None:
                np.multiply(self.value[:, None, :], self.weights[:, :, None], out=self.holdings)
            else:
                self._set_holdings(self.value[:, None, :] * self.weights[:, :, None])
            self.rebalances += 1.0
            return
        targets = self.value[:, None, :] * self.weights[:, :, None]
        trade = np.ones(self.value.shape, dtype=bool)
        if policy.band is not None:
            trade = policy.band.breached(self.holdings / self.value[:, None, :], self.weights)
        cost = np.zeros(self.value.shape)
        if policy.costs is not None:
            cost = policy.costs.of(np.abs(targets - self.holdings))
        # a book a withdrawal plan has emptied is a remnant kept so that a unit keeps a value: it is not traded
        # (a flat courtage would take it below nothing, any cost would take its growth and its unit's value)
        trade &= self.value > _REMNANT
        cost = np.where(trade, cost, 0.0)
        cost = np.minimum(cost, self._above_floor())
        after = self.value - cost
        before = self.holdings
        self._set_holdings(np.where(trade[:, None, :], after[:, None, :] * self.weights[:, :, None], self.holdings))
        if self.basis is not None and policy.costs is not None:
            self._book_trading_costs(before, cost)
        self.value = after
        self.costs_paid += cost
        self.rebalances += trade

    def advance(self, growth: np.ndarray, daily_rebalance: bool = False) -> np.ndarray:
        """Book a block of days (one month in the pipeline).

        Parameters
        ----------
        growth
            ndarray of shape (n_paths, n_steps, n_assets): each asset's
            after-fee growth factor per day. Any memory layout; one whose
            memory is ordered (n_steps, n_assets, n_paths), as the
            recursions produce, is used without a copy.
        daily_rebalance
            If true, portfolios return to their weights after every day.

        Returns
        -------
        ndarray of shape (n_paths, n_assets)
            Each asset's growth over the block (the product over days).
        """
        n_steps = growth.shape[1]
        if daily_rebalance:
            # the same matrix product on the same layout as ever, so that
            # results stay identical to the bit
            days = np.ascontiguousarray(growth.transpose(1, 0, 2))
            by_path = np.cumprod(days @ self.weights.T, axis=0)
            by_path *= self.value.T
            values = by_path.transpose(0, 2, 1)
            np.multiply(values[-1][:, None, :], self.weights[:, :, None], out=self.holdings)
            block_growth: np.ndarray = np.prod(days, axis=0)
            self.rebalances += n_steps
        else:
            days = growth.transpose(1, 2, 0)
            if not days.flags.c_contiguous:
                days = self._scratch("days", days.shape)
                np.copyto(days, growth.transpose(1, 2, 0))
            values, block_growth = self._buy_and_hold(days)

        wealth = values
        if self.has_flows:
            # performance is measured on the NAV, wealth over units
            values = values / self.units
        block_log_return = np.log(values[-1] / self.block_start)
        self.log_return_sum += block_log_return
        self.log_return_sumsq += block_log_return * block_log_return
        self._record_period(block_log_return)
        self.n_blocks += 1

        # running peak, day by day (a maximum is exact in any order)
        running_peak = self._scratch("running_peak", values.shape)
        np.maximum(values[0], self.peak, out=running_peak[0])
        for step in range(1, n_steps):
            np.maximum(running_peak[step - 1], values[step], out=running_peak[step])
        self.peak = running_peak[-1].copy()
        running_peak /= values
        # days under water: below the running peak (peak / value > 1), counted in a row
        for ratio in running_peak:
            below = ratio > 1.0
            self.underwater = np.where(below, self.underwater + 1.0, 0.0)
            np.maximum(self.longest_underwater, self.underwater, out=self.longest_underwater)
        # peak / value >= 1; the largest ratio gives the deepest drawdown
        np.maximum(self.max_drawdown, 1.0 - 1.0 / running_peak.max(axis=0), out=self.max_drawdown)
        self.value = wealth[-1].copy()
        self.block_start = values[-1].copy()
        self._record_drawdown()
        self.n_steps += n_steps
        return block_growth

    def _buy_and_hold(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Daily values (n_steps, n_portfolios, n_paths) and block growth (n_paths, n_assets) without trading.

        ``days`` has shape (n_steps, n_assets, n_paths). The holdings move on
        to the end of the block.
        """
        n_steps, n_assets, n_paths = days.shape
        cumulative = self._scratch("cumulative", days.shape)
        cumulative[0] = days[0]
        # np.cumprod along the first axis, one contiguous row per day
        for step in range(1, n_steps):
            np.multiply(cumulative[step - 1], days[step], out=cumulative[step])
        # sum over assets of growth x holdings, asset by asset
        shape = (n_steps, self.weights.shape[0], n_paths)
        values = np.multiply(
            cumulative[:, None, 0, :], self.holdings[None, :, 0, :], out=self._scratch("values", shape)
        )
        product = self._scratch("product", shape)
        for asset in range(1, n_assets):
            np.multiply(cumulative[:, None, asset, :], self.holdings[None, :, asset, :], out=product)
            values += product
        self.holdings *= cumulative[-1]
        return values, cumulative[-1].T.copy()  # never a view of the scratch buffer (one path or one asset)

    def mark_year_end(self) -> None:
        self.year_end_values.append(self.value / self.units if self.has_flows else self.value.copy())

    def _flow_summary(self, horizon: float) -> dict[str, np.ndarray | None]:
        """The flow-related fields of :class:`BookSummary`, path-first; ``None`` without flows."""
        if not self.has_flows:
            return {"terminal_nav": None, "invested": None, "money_weighted": None, "depleted": None}
        from mcalloc.portfolio.flows import money_weighted_return

        times = np.array([time for time, _ in self.flow_history])
        flows = np.stack([cash for _, cash in self.flow_history])
        money_weighted = money_weighted_return(flows, times, self.value, horizon)
        return {
            "terminal_nav": np.ascontiguousarray((self.value / self.units).T),
            "invested": np.ascontiguousarray(self.invested.T),
            "money_weighted": np.ascontiguousarray(money_weighted.T),
            "depleted": np.ascontiguousarray(self.depleted.T.astype(float)),
        }

    def summary(self, horizon: float | None = None) -> BookSummary:
        """What the book reports; ``horizon`` (years, needed with flows) dates the terminal wealth."""
        n_portfolios, n_paths = self.value.shape
        # float32, to seven significant digits: the largest per-path result (one a year), half the memory
        # to send back and keep; what is computed from it is computed in float64
        year_end = (
            np.ascontiguousarray(np.stack(self.year_end_values, axis=2).transpose(1, 2, 0), dtype=np.float32)
            if self.year_end_values
            else np.empty((n_paths, 0, n_portfolios), dtype=np.float32)
        )
        return BookSummary(
            terminal_value=np.ascontiguousarray(self.value.T),
            max_drawdown=np.ascontiguousarray(self.max_drawdown.T),
            year_end_values=year_end,
            log_return_sum=np.ascontiguousarray(self.log_return_sum.T),
            log_return_sumsq=np.ascontiguousarray(self.log_return_sumsq.T),
            n_steps=self.n_steps,
            n_blocks=self.n_blocks,
            # costs and taxes only where there are any: for millions of paths each is a large array
            costs_paid=np.ascontiguousarray(self.costs_paid.T) if self.policy.costs is not None else None,
            # counts, exact in float32 up to 2**24 steps: half the size to send back and keep
            rebalances=np.ascontiguousarray(self.rebalances.T, dtype=np.float32),
            longest_underwater=np.ascontiguousarray(self.longest_underwater.T, dtype=np.float32),
            underwater_at_end=np.ascontiguousarray(self.underwater.T, dtype=np.float32),
            drawdown_histogram=self.drawdown_histogram.copy(),
            period_return_sum=np.ascontiguousarray(self.period_return_sum.T),
            period_return_sumsq=np.ascontiguousarray(self.period_return_sumsq.T),
            month_end_max_drawdown=np.ascontiguousarray(self.month_max_drawdown.T, dtype=np.float32),
            taxes_paid=np.ascontiguousarray(self.taxes_paid.T) if self.taxed else None,
            **self._flow_summary(horizon if horizon is not None else self.n_steps / 252),
        )
