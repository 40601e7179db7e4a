"""Fixed-mix portfolios run along simulated paths, block by block.

A :class:`FixedMixBook` holds, for each path and portfolio, the value held in
each asset. It consumes the after-fee growth of the assets one block of days
at a time (a month in the pipeline) and keeps only what the metrics need:
current value, running peak, maximum drawdown (on daily values), sums of
block (monthly) log returns and year-end values. Memory therefore does not grow with the horizon.

Values are relative to an initial wealth of 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BookSummary", "FixedMixBook"]


@dataclass(frozen=True)
class BookSummary:
    """What a finished book reports, per path and portfolio.

    ``terminal_value``, ``max_drawdown`` (positive fraction) and the sums of
    daily log returns have shape (n_paths, n_portfolios); ``year_end_values``
    has shape (n_paths, n_years, n_portfolios). Values are per unit invested.
    The log-return sums are of block (monthly, not daily) log returns, over
    the ``n_blocks`` blocks booked.
    """

    terminal_value: np.ndarray
    max_drawdown: np.ndarray
    year_end_values: np.ndarray
    log_return_sum: np.ndarray
    log_return_sumsq: np.ndarray
    n_steps: int
    n_blocks: int


class FixedMixBook:
    """Mutable accounting state for one chunk of paths.

    Parameters
    ----------
    weights
        ndarray of shape (n_portfolios, n_assets); each row sums to 1.
    n_paths
        Number of paths in the chunk.
    """

    def __init__(self, weights: np.ndarray, n_paths: int) -> None:
        self.weights = np.asarray(weights, dtype=float)
        n_portfolios, n_assets = self.weights.shape
        self.holdings = np.broadcast_to(self.weights, (n_paths, n_portfolios, n_assets)).copy()
        self.value = np.ones((n_paths, n_portfolios))
        self.peak = np.ones((n_paths, n_portfolios))
        self.max_drawdown = np.zeros((n_paths, n_portfolios))
        self.log_return_sum = np.zeros((n_paths, n_portfolios))
        self.log_return_sumsq = np.zeros((n_paths, n_portfolios))
        self.year_end_values: list[np.ndarray] = []
        self.n_steps = 0
        self.n_blocks = 0

    def rebalance(self) -> None:
        """Return every portfolio to its target weights at current value."""
        np.multiply(self.value[:, :, None], self.weights[None, :, :], out=self.holdings)

    def advance(self, growth: np.ndarray, daily_rebalance: bool = False) -> np.ndarray:
        """Book a block of days (one month in the pipeline).

        Parameters
        ----------
        growth
            ndarray of shape (n_paths, n_steps, n_assets): each asset's
            after-fee growth factor per day.
        daily_rebalance
            If true, portfolios return to their weights after every day.

        Returns
        -------
        ndarray of shape (n_paths, n_assets)
            Each asset's growth over the block (the product over days).
        """
        # work time-major, so that products and running maxima over days run
        # along contiguous memory
        days = np.ascontiguousarray(growth.transpose(1, 0, 2))
        if daily_rebalance:
            values = np.cumprod(days @ self.weights.T, axis=0)
            values *= self.value
            np.multiply(values[-1][:, :, None], self.weights[None, :, :], out=self.holdings)
            block_growth: np.ndarray = np.prod(days, axis=0)
        else:
            cumulative = np.cumprod(days, axis=0)
            # sum over assets of growth x holdings; n_assets is small, so a
            # loop of broadcasts beats numpy's batched matmul of tiny matrices
            values = cumulative[:, :, None, 0] * self.holdings[None, :, :, 0]
            for asset in range(1, cumulative.shape[2]):
                values += cumulative[:, :, None, asset] * self.holdings[None, :, :, asset]
            block_growth = cumulative[-1]
            self.holdings *= block_growth[:, None, :]

        block_log_return = np.log(values[-1] / self.value)
        self.log_return_sum += block_log_return
        self.log_return_sumsq += block_log_return * block_log_return
        self.n_blocks += 1

        running_peak = np.maximum.accumulate(values, axis=0)
        np.maximum(running_peak, self.peak, out=running_peak)
        self.peak = running_peak[-1].copy()
        running_peak /= values
        # peak / value >= 1; the largest ratio gives the deepest drawdown
        np.maximum(self.max_drawdown, 1.0 - 1.0 / running_peak.max(axis=0), out=self.max_drawdown)
        self.value = values[-1].copy()
        self.n_steps += growth.shape[1]
        return block_growth

    def mark_year_end(self) -> None:
        self.year_end_values.append(self.value.copy())

    def summary(self) -> BookSummary:
        n_paths, n_portfolios = self.value.shape
        year_end = (
            np.stack(self.year_end_values, axis=1) if self.year_end_values else np.empty((n_paths, 0, n_portfolios))
        )
        return BookSummary(
            terminal_value=self.value,
            max_drawdown=self.max_drawdown,
            year_end_values=year_end,
            log_return_sum=self.log_return_sum,
            log_return_sumsq=self.log_return_sumsq,
            n_steps=self.n_steps,
            n_blocks=self.n_blocks,
        )
