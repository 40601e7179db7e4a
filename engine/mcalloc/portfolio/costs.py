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
    from mcalloc.config.schema import AssetConfig

__all__ = ["Band", "FeeModel", "RebalancePolicy", "TradingCosts"]


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


@dataclass(frozen=True)
class TradingCosts:
    """What a trade costs: ``bps`` (n_assets,) of the value traded, plus ``fixed`` per asset traded.

    Rebalancing trades and the trades of contributions and withdrawals pay
    alike. ``fixed`` (courtage) is a fraction of the initial wealth, since
    books are kept per unit invested.
    """

    bps: np.ndarray
    fixed: float = 0.0

    def of(self, traded: np.ndarray) -> np.ndarray:
        """Cost of trades of absolute value ``traded`` (n_portfolios, n_assets, n_paths): (n_portfolios, n_paths)."""
        cost = self.proportional(traded)
        if self.fixed:
            cost += self.courtage(traded)
        return cost

    def proportional(self, traded: np.ndarray) -> np.ndarray:
        """The ``bps`` part of :meth:`of`, (n_portfolios, n_paths)."""
        cost: np.ndarray = np.einsum("a,kap->kp", self.bps * 1e-4, traded)
        return cost

    def courtage(self, traded: np.ndarray) -> np.ndarray:
        """The ``fixed`` part of :meth:`of`: one ``fixed`` per asset traded, (n_portfolios, n_paths)."""
        cost: np.ndarray = self.fixed * np.count_nonzero(traded > _NO_TRADE, axis=1)
        return cost


_NO_TRADE = 1e-12
"""Trades smaller than this (per unit of initial wealth) are rounding, not trades."""


@dataclass(frozen=True)
class Band:
    """Rebalance only when a weight has drifted past ``width`` from its target.

    ``absolute``: ``|w - target| > width`` (0.05 is five percentage points);
    ``relative``: ``|w - target| > width * |target|`` (0.25 lets a 20% target
    drift between 15% and 25%, and a -20% short between -25% and -15%).
    """

    kind: str
    width: float

    def breached(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Which books are outside, (n_portfolios, n_paths).

        ``current`` weights have shape (n_portfolios, n_assets, n_paths),
        ``target`` (n_portfolios, n_assets).
        """
        drift = np.abs(current - target[:, :, None])
        allowed = self.width if self.kind == "absolute" else self.width * np.abs(target[:, :, None])
        breached: np.ndarray = np.any(drift > allowed, axis=1)
        return breached


@dataclass(frozen=True)
class RebalancePolicy:
    """Costs of trades (rebalancing and flows), an optional no-trade band (see :class:`TradingCosts`, :class:`Band`).

    ``direct_flows``: contributions buy the assets furthest below target and
    withdrawals sell those furthest above it, instead of in proportion.
    ``buy_in``: the initial investment pays the costs of buying the targets
    (otherwise the portfolio starts already held).
    """

    costs: TradingCosts | None = None
    band: Band | None = None
    direct_flows: bool = False
    buy_in: bool = False
