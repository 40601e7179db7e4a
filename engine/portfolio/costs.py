"""Fund fees, shared by the path accounting and the optimiser.

Both turn simulated market returns into what the investor actually earns
through :meth:`FeeModel.net_growth`, so the weights the optimiser picks are
judged on exactly the returns the accounting later books.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.config.schema import AssetConfig

__all__ = ["FeeModel"]


@dataclass(frozen=True)
class FeeModel:
    """Annual total expense ratios (decimals, shape (n_assets,)) charged daily.

    A fund with TER ``c`` keeps ``(1 - c) ** (1 / steps_per_year)`` of its
    value each day, so a year of steps costs exactly ``c``.

    ``ter_in_model`` (shape (n_assets,), default none) is the fee already
    inside the returns the model describes: a model fitted to a fund's
    closing prices, which are net of that fund's fee, carries its TER. Only
    the difference is charged, ``((1 - ter) / (1 - ter_in_model)) ** (1 /
    steps_per_year)`` a day, so the fee is never charged twice, and holding a
    cheaper fund than the one the model was fitted to earns the saving.
    """

    ter: np.ndarray
    steps_per_year: int
    ter_in_model: np.ndarray | None = None

    @property
    def daily_factor(self) -> np.ndarray:
        """Fraction of value kept per step, shape (n_assets,)."""
        kept = 1.0 - self.ter
        if self.ter_in_model is not None:
            kept = kept / (1.0 - self.ter_in_model)
        return np.asarray(kept ** (1.0 / self.steps_per_year))

    @classmethod
    def of(cls, assets: Sequence[AssetConfig], steps_per_year: int) -> FeeModel:
        """The fees of a scenario's assets."""
        return cls(
            ter=np.array([asset.ter for asset in assets]),
            steps_per_year=steps_per_year,
            ter_in_model=np.array([asset.ter_in_model for asset in assets]),
        )

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
