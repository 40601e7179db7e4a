"""What a book keeps of its paths once they are run: the per-path results the metrics are computed from."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

__all__ = ["BookSummary"]


@dataclass(frozen=True)
class BookSummary:
    """What a finished book reports, per path and portfolio.

    ``terminal_value``, ``max_drawdown`` (positive fraction) and the sums of
    log returns have shape (n_paths, n_portfolios); ``year_end_values``
    has shape (n_paths, n_years, n_portfolios), float32. Values are per unit invested.
    The log-return sums are of block (monthly, not daily) log returns, over
    the ``n_blocks`` blocks booked. ``costs_paid`` (per unit of initial
    wealth) and ``rebalances`` (counts), shape (n_paths, n_portfolios), sum
    the costs of every trade (rebalancing and flows) and how many rebalances
    took place. With cash flows (:mod:`mcalloc.portfolio.flows`)
    ``terminal_value`` is wealth, ``terminal_nav`` the value of one unit and
    ``year_end_values`` the NAV at year ends; ``invested`` is the money put in net of money taken out,
    ``money_weighted`` each path's internal rate of return and ``depleted``
    whether a withdrawal could not be paid in full; all (n_paths,
    n_portfolios) and ``None`` without flows. ``longest_underwater`` counts
    the most steps in a row the NAV spent below its running peak,
    ``underwater_at_end`` the steps of the stretch still running at the end
    (0 if the path ended at a peak). ``drawdown_histogram`` (n_portfolios, 2,
    :data:`mcalloc.portfolio.accounting.DRAWDOWN_BINS`) counts every path's drawdown at every month end,
    in bins of ``1 / DRAWDOWN_BINS``: the pooled distribution behind CDaR;
    ``[:, 0]`` measured from the running peak of the daily NAV, ``[:, 1]``
    from the highest month-end NAV so far, as the optimiser's monthly
    scenarios see it. ``month_end_max_drawdown`` (n_paths, n_portfolios) is
    the deepest of those month-end drawdowns, the like of ``max_drawdown``
    for comparing with the optimiser's paths.
    ``period_return_sum`` and ``period_return_sumsq`` (n_paths,
    n_portfolios) sum each block's simple NAV return and its square: the
    pooled monthly variance behind ``vol_ann`` (:func:`pooled_volatility`).
    """

    terminal_value: np.ndarray
    max_drawdown: np.ndarray
    year_end_values: np.ndarray
    log_return_sum: np.ndarray
    log_return_sumsq: np.ndarray
    n_steps: int
    n_blocks: int
    costs_paid: np.ndarray | None = None
    rebalances: np.ndarray | None = None
    terminal_nav: np.ndarray | None = None
    taxes_paid: np.ndarray | None = None
    longest_underwater: np.ndarray | None = None
    underwater_at_end: np.ndarray | None = None
    drawdown_histogram: np.ndarray | None = None
    invested: np.ndarray | None = None
    money_weighted: np.ndarray | None = None
    depleted: np.ndarray | None = None
    period_return_sum: np.ndarray | None = None
    period_return_sumsq: np.ndarray | None = None
    month_end_max_drawdown: np.ndarray | None = None

    @property
    def performance(self) -> np.ndarray:
        """Terminal value of one unit (NAV; time-weighted), (n_paths, n_portfolios): wealth without flows."""
        return self.terminal_value if self.terminal_nav is None else self.terminal_nav

    @cached_property
    def repeated_columns(self) -> np.ndarray:
        """For each portfolio, the first portfolio whose per-path results all equal its own (itself if none does).

        Portfolios with the same weights are booked once and copied (see
        :func:`mcalloc.simulation.paths.run_simulation`), so a run's
        optimisers that land on a benchmark repeat its columns exactly; the
        metrics compute a repeated column's statistics once. Shape
        (n_portfolios,), integers; computed once per summary.
        """
        arrays = [
            value
            for field in fields(self)
            if field.name != "drawdown_histogram" and isinstance(value := getattr(self, field.name), np.ndarray)
        ]
        n_portfolios = self.terminal_value.shape[1]
        same = np.arange(n_portfolios)
        for column in range(n_portfolios):
            for earlier in range(column):
                if same[earlier] == earlier and all(
                    np.array_equal(values[..., column], values[..., earlier], equal_nan=True) for values in arrays
                ):
                    same[column] = earlier
                    break
        return same
