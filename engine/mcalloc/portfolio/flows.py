"""Contributions and withdrawals: when they happen and how large they are.

Flows happen at the start of a month, before any rebalancing that month. A
contribution is invested at the portfolio's target weights; a withdrawal
sells every holding in proportion, so weights are untouched. Amounts are in
the base currency and become shares of the initial wealth, the unit the
books are kept in. A fixed amount may grow each year (``indexation``, e.g.
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

from mcalloc.config.schema import FlowConfig

__all__ = ["DEPLETION_FLOOR", "CashFlowSchedule", "money_weighted_return"]

DEPLETION_FLOOR = 1e-9
"""A withdrawal never takes more than all but this share of wealth; the path is then marked depleted."""

_EVERY = {"monthly": 1, "quarterly": 3, "annual": 12}


@dataclass(frozen=True)
class CashFlowSchedule:
    """Per month of the horizon: a fixed flow (share of initial wealth, signed) and a withdrawal rate.

    ``fixed[m]`` is added at the start of month ``m`` (contributions positive,
    withdrawals negative); ``rate[m]`` of current wealth is withdrawn then.
    """

    fixed: np.ndarray
    rate: np.ndarray

    @classmethod
    def from_config(cls, flows: Sequence[FlowConfig], horizon_years: int, initial_wealth: float) -> CashFlowSchedule:
        n_months = 12 * horizon_years
        fixed, rate = np.zeros(n_months), np.zeros(n_months)
        for flow in flows:
            every = _EVERY[flow.frequency]
            first = round(12 * flow.start_year)
            last = n_months if flow.end_year is None else min(n_months, round(12 * flow.end_year))
            months = np.arange(first, last, every)
            sign = 1.0 if flow.kind == "contribution" else -1.0
            if flow.percent is not None:
                rate[months] += flow.percent * every / 12.0
            else:
                assert flow.amount is not None
                years = months / 12.0
                fixed[months] += sign * flow.amount * (1.0 + flow.indexation) ** years / initial_wealth
        return cls(fixed=fixed, rate=rate)

    @property
    def active(self) -> bool:
        return bool(self.fixed.any() or self.rate.any())

    def at(self, month: int) -> tuple[float, float]:
        """The fixed flow and the withdrawal rate at the start of ``month``."""
        return float(self.fixed[month]), float(self.rate[month])


def money_weighted_return(flows: np.ndarray, times: np.ndarray, terminal: np.ndarray, horizon: float) -> np.ndarray:
    """Per-path internal rate of return (annual) of money put in and the wealth at the end.

    ``flows`` (n_flows, ...) are the money put in (negative: taken out) at
    ``times`` (n_flows,) in years, the first being the initial investment;
    ``terminal`` (...) is the wealth at ``horizon``. Solves
    ``sum_i flows_i (1 + r) ** (horizon - times_i) = terminal`` by Newton's
    method on ``log(1 + r)``, from 0; NaN where it does not converge (a
    withdrawal plan can have none or several roots).
    """
    exponents = (horizon - times).reshape((-1,) + (1,) * terminal.ndim)
    x = np.zeros(terminal.shape)
    for _ in range(60):
        grown = flows * np.exp(exponents * x)
        value = grown.sum(axis=0) - terminal
        slope = (grown * exponents).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope != 0.0, value / slope, 0.0)
        x = np.clip(x - step, -5.0, 5.0)
        if np.nanmax(np.abs(step), initial=0.0) < 1e-12:
            break
    grown = flows * np.exp(exponents * x)
    residual = np.abs(grown.sum(axis=0) - terminal)
    scale = np.abs(flows).sum(axis=0) + np.abs(terminal)
    result: np.ndarray = np.where(residual <= 1e-9 * scale, np.expm1(x), np.nan)
    return result
