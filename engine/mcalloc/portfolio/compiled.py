"""The fixed-mix book of :mod:`mcalloc.portfolio.accounting`, booking whole blocks in compiled kernels.

Flows, rebalancing, costs and taxes are the reference's own methods, run in
Python between blocks; only the days of a block run in
:mod:`mcalloc.portfolio.kernels`.
"""

from __future__ import annotations

import numpy as np

from mcalloc.portfolio.accounting import FixedMixBook
from mcalloc.portfolio.costs import RebalancePolicy

__all__ = ["CompiledBook"]


class CompiledBook(FixedMixBook):
    """A :class:`FixedMixBook` that books whole blocks with a compiled kernel (:meth:`advance_log`).

    Same state and results (to rounding) as the reference's :meth:`advance`;
    :meth:`advance_log` also applies the fee itself, from market log returns,
    and collects each asset's buy-and-hold growth and the sums of daily
    after-fee simple returns (see :class:`mcalloc.simulation.collect.ChunkResult`).
    ``fee_factor`` (n_assets,) is the fraction of value each asset keeps per
    day; the other parameters are the reference's.
    """

    def __init__(
        self, weights: np.ndarray, n_paths: int, fee_factor: np.ndarray, policy: RebalancePolicy | None = None
    ) -> None:
        super().__init__(np.ascontiguousarray(weights, dtype=float), n_paths, policy)
        n_assets = self.weights.shape[1]
        self.fee_factor = np.ascontiguousarray(fee_factor, dtype=float)
        self._asset_growth = np.ones((n_assets, n_paths))
        self._asset_sum = np.zeros((n_assets, n_paths))
        self._asset_cross = np.zeros((n_assets, n_assets, n_paths))

    @property
    def asset_growth(self) -> np.ndarray:
        """Each asset's after-fee buy-and-hold growth so far, (n_paths, n_assets): a copy, never a view.

        (``ascontiguousarray`` of the transpose is a view of the live buffer
        when there is one path or one asset, and the month-by-month growth
        read from two calls would then be 1 after the first month.)
        """
        return self._asset_growth.T.copy()

    @property
    def asset_sum(self) -> np.ndarray:
        """Sums of daily after-fee simple returns over paths and days, (n_assets,)."""
        return np.asarray(self._asset_sum.sum(axis=1))

    @property
    def asset_cross(self) -> np.ndarray:
        """Sums of their cross-products, (n_assets, n_assets)."""
        lower = np.tril(self._asset_cross.sum(axis=2))
        return np.asarray(lower + np.tril(lower, -1).T)

    def _record_drawdown(self) -> None:
        """The reference's month-end drawdown counts and month-end peaks, in one kernel."""
        from mcalloc.portfolio.kernels import count_drawdowns

        count_drawdowns(self.block_start, self.peak, self.month_peak, self.month_max_drawdown, self.drawdown_histogram)

    def advance_log(self, log_returns: np.ndarray, daily_rebalance: bool = False) -> None:
        """Book a block of days from market log returns (n_paths, n_steps, n_assets), any layout."""
        from mcalloc.portfolio.kernels import book_block, exp_block

        expected = (self._asset_growth.shape[1], self._asset_growth.shape[0])
        if log_returns.ndim != 3 or (log_returns.shape[0], log_returns.shape[2]) != expected:
            # the kernel reads the sizes off this block and checks no bounds: a mismatch would corrupt memory
            raise ValueError(
                f"a block of shape {log_returns.shape} for a book of {expected[0]} paths x {expected[1]} assets"
            )
        layout = log_returns.transpose(1, 2, 0)
        growth = self._scratch("growth", layout.shape)
        exp_block(layout, growth)
        before = self.log_return_sum.copy()
        book_block(
            growth,
            self.fee_factor,
            self.weights,
            self.holdings,
            self.value,
            self.units,
            self.block_start,
            self.peak,
            self.max_drawdown,
            self.underwater,
            self.longest_underwater,
            self.log_return_sum,
            self.log_return_sumsq,
            self._asset_growth,
            self._asset_sum,
            self._asset_cross,
            daily_rebalance,
        )
        self._record_period(self.log_return_sum - before)
        self.n_blocks += 1
        self.n_steps += log_returns.shape[1]
        if daily_rebalance:
            self.rebalances += log_returns.shape[1]
        self._record_drawdown()
