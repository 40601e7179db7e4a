"""A common market factor shared by every series' returns.

Each non-market series is split into what it owes to the market and the
rest (a one-factor model in the spirit of Engle, Ng and Rothschild 1990):

    r_i,t = sum_l b_i,l r_m,t-l + e_i,t

The market ``r_m`` and every idiosyncratic part ``e_i`` get their own
volatility model, and the dependence model joins their shocks. Since each
asset inherits the market's conditional variance, all variances rise and
fall together and the correlation ``b sigma_m / sqrt(b^2 sigma_m^2 +
sigma_e^2)`` rises when the market's volatility does, as it does in the data.
With separate univariate models joined only through their shocks, each
series' variance wanders on its own and the simulated correlation of returns
falls below that of the shocks.

Lagged loadings (``l >= 1``) carry links between series observed at different
hours, e.g. ECB exchange-rate fixings at 14:15 CET against US closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import ModelError

__all__ = ["FactorStructure", "fit_factor"]


@dataclass(frozen=True)
class FactorStructure:
    """Which column is the market and every column's loadings on it.

    Attributes
    ----------
    market
        Column index of the market factor.
    loadings
        ndarray of shape (n_series, n_lags + 1): ``loadings[i, l]`` is
        series ``i``'s loading on the market's return ``l`` steps before;
        the market's own row is zero.
    """

    market: int
    loadings: np.ndarray

    @property
    def n_lags(self) -> int:
        return int(self.loadings.shape[1]) - 1

    def initial_history(self, n_paths: int) -> np.ndarray:
        """The market's previous ``n_lags`` returns (percent), zero, shape (n_paths, n_lags)."""
        return np.zeros((n_paths, self.n_lags))

    def apply(self, factors: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Turn market-plus-idiosyncratic returns into series returns, in place.

        Parameters
        ----------
        factors
            ndarray of shape (n_paths, n_steps, n_series): the market's
            returns in column ``market``, idiosyncratic returns elsewhere.
        history
            ndarray of shape (n_paths, n_lags): the market's returns before
            the block, most recent first; updated in place.
        """
        market = factors[:, :, self.market].copy()
        n_steps = market.shape[1]
        for lag in range(self.n_lags + 1):
            # the market's return ``lag`` steps before each day of the block
            source = market if lag == 0 else np.concatenate([history[:, :lag][:, ::-1], market], axis=1)[:, :n_steps]
            loading = self.loadings[:, lag]
            for column in np.flatnonzero(loading):
                factors[:, :, column] += loading[column] * source
        if self.n_lags:
            recent = np.concatenate([market[:, ::-1], history], axis=1)
            history[:] = recent[:, : self.n_lags]
        return factors

    def covariance(self, variances: np.ndarray, shock_correlation: np.ndarray) -> np.ndarray:
        """Long-run covariance of the series' returns, (n_series, n_series).

        ``variances`` (n_series,) are the long-run variances of the market
        and of each idiosyncratic part; the market enters at every lag.
        """
        scale = np.sqrt(variances)
        factor_covariance = shock_correlation * np.outer(scale, scale)
        n = variances.size
        mixing = np.eye(n)
        mixing[:, self.market] += self.loadings[:, 0]
        covariance = mixing @ factor_covariance @ mixing.T
        if self.n_lags:
            # a lagged market return is independent of today's shocks
            lagged = self.loadings[:, 1:]
            covariance += (lagged @ lagged.T) * variances[self.market]
        return np.asarray(covariance)


def fit_factor(returns: pd.DataFrame, market: str, lags: dict[str, int]) -> tuple[FactorStructure, pd.DataFrame]:
    """Least-squares loadings on the market and the idiosyncratic returns left over.

    Parameters
    ----------
    returns
        DataFrame of shape (n_obs, n_series): log returns, oldest first.
    market
        The market factor's column.
    lags
        Lags of the market (beyond the same day) per series; missing means 0.

    Returns
    -------
    The structure, and a DataFrame of the market's returns and every other
    series' idiosyncratic returns (the first ``max(lags)`` rows dropped).

    Raises
    ------
    ModelError
        If the market is constant over the sample.
    """
    names = list(returns.columns)
    column = names.index(market)
    max_lag = max(lags.values(), default=0)
    values = returns.to_numpy(dtype=float)
    market_returns = values[:, column]
    if np.std(market_returns) == 0.0:
        raise ModelError(f"model.factor.market: the market series '{market}' is constant; choose another")
    rows = slice(max_lag, None)
    loadings = np.zeros((len(names), max_lag + 1))
    residuals = values[rows].copy()
    for index, name in enumerate(names):
        if index == column:
            continue
        n_lags = lags.get(name, 0)
        regressors = [np.ones(values.shape[0] - max_lag)]
        regressors += [market_returns[max_lag - lag : values.shape[0] - lag] for lag in range(n_lags + 1)]
        design = np.column_stack(regressors)
        coefficients, *_ = np.linalg.lstsq(design, values[rows, index], rcond=None)
        loadings[index, : n_lags + 1] = coefficients[1:]
        residuals[:, index] = values[rows, index] - design[:, 1:] @ coefficients[1:]
    frame = pd.DataFrame(residuals, index=returns.index[rows], columns=returns.columns)
    return FactorStructure(market=column, loadings=loadings), frame
