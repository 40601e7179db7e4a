"""Contributions and withdrawals: when they happen and how large they are.

Flows happen at the start of a month, before any rebalancing that month. A
contribution is invested at the portfolio's target weights; a withdrawal
sells every holding in proportion, so weights are untouched. Their trades
cost what rebalancing trades cost (see
:meth:`mcalloc.portfolio.accounting.FixedMixBook.apply_flow`): a
contribution's costs come out of it, a withdrawal's are sold on top of it.
Amounts are in the base currency and become shares of the initial wealth,
the unit the books are kept in. A fixed amount may grow each year (``indexation``, e.g.
inflation); a withdrawal may instead be a share of current wealth per year.

With flows, wealth and performance part ways. The books keep a unit value
(NAV) as a fund does: flows buy or sell units at the day's NAV, so the NAV
moves with the markets only. CAGR, volatility, drawdowns and annual returns
are measured on the NAV (time-weighted); terminal wealth is wealth; the
money-weighted return is the rate that grows every flow to the terminal
wealth (an internal rate of return, per path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcalloc.config.sections import FlowConfig

__all__ = ["DEPLETION_FLOOR", "CashFlowSchedule", "money_weighted_return"]

DEPLETION_FLOOR = 1e-9
"""What a withdrawal leaves invested, as a share of the initial wealth; a path it reaches is marked depleted."""

_EVERY = {"monthly": 1, "quarterly": 3, "annual": 12}


@dataclass(frozen=True)
class CashFlowSchedule:
    """Per month of the horizon: a fixed flow (share of initial wealth, signed) and a withdrawal rate.

    ``fixed[m]`` is added at the start of month ``m`` (contributions positive,
    withdrawals negative); ``rate[m]`` of current wealth is withdrawn then.
    ``deposits[m]`` is the month's contributions alone, before any withdrawal
    of the same month is netted against them: what an ISK's capital base counts.
    """

    fixed: np.ndarray
    rate: np.ndarray
    deposits: np.ndarray | None = None

    @classmethod
    def from_config(cls, flows: Sequence[FlowConfig], horizon_years: int, initial_wealth: float) -> CashFlowSchedule:
        n_months = 12 * horizon_years
        fixed, rate, deposits = np.zeros(n_months), np.zeros(n_months), np.zeros(n_months)
        for flow in flows:
            every = _EVERY[flow.frequency]
            months = np.arange(*flow.month_span(horizon_years), every)
            sign = 1.0 if flow.kind == "contribution" else -1.0
            if flow.percent is not None:
                rate[months] += flow.percent * every / 12.0
            else:
                assert flow.amount is not None
                years = months / 12.0
                amounts = flow.amount * (1.0 + flow.indexation) ** years / initial_wealth
                fixed[months] += sign * amounts
                if sign > 0:
                    deposits[months] += amounts
        return cls(fixed=fixed, rate=rate, deposits=deposits)

    @property
    def active(self) -> bool:
        return bool(self.fixed.any() or self.rate.any())

    def at(self, month: int) -> tuple[float, float]:
        """The fixed flow and the withdrawal rate at the start of ``month``."""
        return float(self.fixed[month]), float(self.rate[month])

    def paid_in(self) -> np.ndarray:
        """Money put in by each month end, shares of the initial wealth, shape (n_months + 1,); 1.0 at the start.

        The initial wealth plus every contribution so far (withdrawals are
        not netted: on a path that runs dry they are not all paid).
        """
        deposits = self.deposits if self.deposits is not None else np.maximum(self.fixed, 0.0)
        return np.concatenate([[1.0], 1.0 + np.cumsum(deposits)])

    def deposit_at(self, month: int) -> float | None:
        """The contributions at the start of ``month`` (None if not kept: the net flow's positive part counts)."""
        return None if self.deposits is None else float(self.deposits[month])


def money_weighted_return(flows: np.ndarray, times: np.ndarray, terminal: np.ndarray, horizon: float) -> np.ndarray:
    """Per-path internal rate of return (annual) of money put in and the wealth at the end.

    ``flows`` (n_flows, ...) are the money put in (negative: taken out) at
    ``times`` (n_flows,) in years, the first being the initial investment;
    ``terminal`` (...) is the wealth at ``horizon``. Solves
    ``f(x) = sum_i flows_i exp(x (horizon - times_i)) - terminal = 0`` for
    ``x = log(1 + r)`` in ``[-5, 5]``, by Newton's method kept inside a bracket
    that halves whenever a Newton step would leave it (Press et al.,
    Numerical Recipes, ``rtsafe``). A plan that puts money in and then only
    takes it out (saving, then withdrawing) has one change of sign in its
    flows ordered by time, and so one root (Descartes' rule of signs in
    ``exp(x)``); Newton alone, from 0, can start where ``f`` falls and miss
    it. Flows that change sign more often can have several roots: the
    bracket is found by stepping out from 0 on both sides, so the root found
    is the one nearest 0 (unless two lie within one step). NaN where ``f``
    does not change sign within ``[-5, 5]``, but -1 (the money lost) where
    more is put in than taken out and left even at ``x = -5`` (-99.3% a year).
    """
    shape = np.broadcast_shapes(flows.shape[1:], terminal.shape)
    # one row per path and flows along it: each row's sums then run the same way whatever the other rows,
    # so a path's rate does not depend on how many paths or portfolios are solved with it
    money = np.ascontiguousarray(np.broadcast_to(flows, (flows.shape[0], *shape)).reshape(flows.shape[0], -1).T)
    wealth = np.broadcast_to(terminal, shape).reshape(-1)
    exponents = horizon - np.asarray(times, dtype=float)
    # a block of paths at a time, which bounds the (block, n_flows) temporaries whatever the number of paths
    result = np.empty(wealth.size)
    for start in range(0, wealth.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        result[block] = _internal_rate(money[block], wealth[block], exponents)
    return result.reshape(shape)


def _internal_rate(money: np.ndarray, wealth: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """:func:`money_weighted_return` for flows (n, n_flows), terminal wealth (n,) and exponents (n_flows,)."""
    put_in = np.maximum(money, 0.0)
    taken_out = np.maximum(-money, 0.0)

    def value_and_slope(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``g(x) = log(money in, grown) - log(money out, grown, + terminal)`` and its slope: g has f's sign."""
        every_row = rows.size == wealth.size
        growth = np.exp(x[:, None] * exponents)
        into = put_in if every_row else put_in[rows]
        out = taken_out if every_row else taken_out[rows]
        grown_in, grown_out = into * growth, out * growth
        total_in = grown_in.sum(axis=1)
        total_out = grown_out.sum(axis=1) + wealth[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log(total_in) - np.log(total_out)
            slope = (grown_in * exponents).sum(axis=1) / total_in - (grown_out * exponents).sum(axis=1) / total_out
        return value, slope

    # a bracket for each path, oriented so that g(negative) <= 0 <= g(positive): stepping out from 0 on
    # both sides, the first pair of neighbouring points where g changes sign (each step only for the paths
    # still without one), so that of several roots the one nearest 0 is found
    every = np.arange(wealth.size)
    negative, positive = np.full(wealth.size, np.nan), np.full(wealth.size, np.nan)
    inner = np.zeros(wealth.size)
    at_inner = value_and_slope(inner, every)[0]
    at_zero = at_inner == 0.0
    negative[at_zero] = positive[at_zero] = 0.0
    unbracketed = every[~at_zero & ~np.isnan(at_inner)]
    near = {side: (inner.copy(), at_inner.copy()) for side in (-1.0, 1.0)}
    for distance in _STEPS:
        for side, (point, value_there) in near.items():
            if unbracketed.size == 0:
                break
            outer = side * distance
            at_outer = value_and_slope(np.full(unbracketed.size, outer), unbracketed)[0]
            found = np.sign(value_there[unbracketed]) * np.sign(at_outer) <= 0.0
            ends = unbracketed[found]
            below = at_outer[found] <= 0.0
            negative[ends] = np.where(below, outer, point[ends])
            positive[ends] = np.where(below, point[ends], outer)
            point[unbracketed], value_there[unbracketed] = outer, at_outer
            unbracketed = unbracketed[~found]
    bracketed = ~np.isnan(negative)
    x = np.where(bracketed, 0.5 * (negative + positive), np.nan)
    previous = np.abs(positive - negative)
    last_value = np.full(wealth.size, np.inf)
    # each path stops once its step is below the tolerance; only the paths still moving are computed
    active = np.flatnonzero(bracketed)
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        here = x[active]
        value, slope = value_and_slope(here, active)
        last_value[active] = value
        below = value <= 0.0
        negative[active] = np.where(below, here, negative[active])
        positive[active] = np.where(below, positive[active], here)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = here - value / slope
        # Newton's step, if it stays inside the bracket and shrinks faster than halving would (rtsafe's rule)
        inside = (newton - negative[active]) * (newton - positive[active]) <= 0.0
        fast = inside & (np.abs(2.0 * value) <= np.abs(previous[active] * slope))
        following = np.where(fast, newton, 0.5 * (negative[active] + positive[active]))
        previous[active] = np.abs(following - here)
        x[active] = following
        active = active[previous[active] > _TOLERANCE]
    # the last value was taken less than the tolerance away from the root returned
    solved = bracketed & (np.abs(last_value) <= 1e-9)
    result: np.ndarray = np.where(solved, np.expm1(x), np.nan)
    # more put in than taken out and left even grown at -99.3% a year: the money was lost (a plan whose
    # contributions all went in costs); left out, such paths were not in the median, or none was and it was NaN
    lowest, at_lowest = near[-1.0]
    lost = unbracketed[(lowest[unbracketed] == -_STEPS[-1]) & (at_lowest[unbracketed] > 0.0)]
    result[lost] = -1.0
    return result


_BLOCK = 256
"""Paths solved together: 256 paths of 40 years' monthly flows make temporaries of 1 MB each."""
_STEPS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
"""Where ``log(1 + r)`` is tried, out from 0 on both sides, for a change of sign: up to -99.3% and about
147 times the money a year. Two roots closer together than a step can be passed over."""
_MAX_ITERATIONS = 100
"""Enough for bisection alone to shrink the bracket of width 10 below the tolerance (47 halvings), with room."""
_TOLERANCE = 1e-13
"""A path is solved once its step in ``log(1 + r)`` is below this."""
