"""Fund fees, shared by the path accounting and the optimiser.

Both turn simulated market returns into what the investor actually earns
through :meth:`FeeModel.net_growth`, so the weights the optimiser picks are
judged on exactly the returns the accounting later books.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FeeModel"]


@dataclass(frozen=True)
class FeeModel:
    """Annual total expense ratios (decimals, shape (n_assets,)) charged daily.

    A fund with TER ``c`` keeps ``(1 - c) ** (1 / steps_per_year)`` of its
    value each day, so a year of steps costs exactly ``c``.
    """

    ter: np.ndarray
    steps_per_year: int

    @property
    def daily_factor(self) -> np.ndarray:
        """Fraction of value kept per step, shape (n_assets,)."""
        return np.asarray((1.0 - self.ter) ** (1.0 / self.steps_per_year))

    def net_growth(self, log_returns: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Per-step gross growth after fees from market log returns.

        Parameters
        ----------
        log_returns
            ndarray of shape (..., n_assets), decimal daily log returns.

        Returns
        -------
        ndarray of the same shape: ``exp(r) * daily_factor``.
        """
        growth: np.ndarray = np.exp(log_returns, out=out)
        growth *= self.daily_factor
        return growth
