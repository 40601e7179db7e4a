"""Turn simulated factors into base-currency asset returns.

With ``currency.mode: factor`` the joint model simulates the assets in their
own currency plus one exchange-rate factor per foreign currency (the log
return of the price of one unit of it in the base currency). An investor in
the base currency earns ``(1 + r_asset)(1 + r_fx) - 1``, i.e. in log returns
simply ``r_asset + r_fx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcalloc.config.schema import Scenario

__all__ = ["CurrencyOverlay"]


@dataclass(frozen=True)
class CurrencyOverlay:
    """For each asset, the column of its FX factor (or ``None`` for base-currency assets)."""

    fx_columns: tuple[int | None, ...]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> CurrencyOverlay | None:
        """The overlay a scenario needs, or ``None`` when nothing is translated during simulation."""
        factors = scenario.factor_names
        fx_names = [f"fx_{(asset.currency or '').lower()}" for asset in scenario.assets]
        columns = tuple(factors.index(name) if name in factors else None for name in fx_names)
        return cls(columns) if any(column is not None for column in columns) else None

    def apply(self, factor_log_returns: np.ndarray) -> np.ndarray:
        """Base-currency log returns of shape (n_paths, n_steps, n_assets).

        Parameters
        ----------
        factor_log_returns
            ndarray of shape (n_paths, n_steps, n_factors): the assets in
            their own currency first, then the FX factors.
        """
        n_assets = len(self.fx_columns)
        # order="K" keeps the layout the recursions produce, which the books read without a copy
        assets = factor_log_returns[:, :, :n_assets].copy(order="K")
        for asset, column in enumerate(self.fx_columns):
            if column is not None:
                assets[:, :, asset] += factor_log_returns[:, :, column]
        return assets
