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

One series' loadings may switch between regimes that follow a hidden Markov
chain (Hamilton 1989): ``b_i,l`` becomes ``b_i,l(s_t)``. The krona's link to
US stocks is the case in point: near zero in most years, strongly negative
for years at a time after 2008 (the dollar as a haven). A constant loading
sits between the two and leaves six-year windows far too alike; persistent
regimes give simulated windows the spread the history shows. The regimes are
fitted by maximum likelihood (statsmodels' ``MarkovRegression``) on the
series and the market scaled by the series' own GJR-GARCH volatility, so
that volatility clusters are not taken for regimes of the link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.errors import ModelError

if TYPE_CHECKING:
    import pandas as pd  # imported by fit_factor: simulation workers apply the factor without pandas

__all__ = ["FactorStructure", "RegimeFit", "fit_factor", "fit_regime_loadings"]

_NO_LOADINGS = np.empty((0, 0))
_NO_REGIMES = np.empty((0, 0), dtype=np.intp)


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
    switching, regime_loadings, transition
        Optionally, the column ``switching`` whose loadings follow the
        regimes: ``regime_loadings`` of shape (n_regimes, n_lags + 1) replace
        its row of ``loadings``; ``transition`` (n_regimes, n_regimes) holds
        ``P(s_t = j | s_t-1 = i)`` in row ``i``.
    """

    market: int
    loadings: np.ndarray
    switching: int | None = None
    regime_loadings: np.ndarray | None = None
    transition: np.ndarray | None = None

    @property
    def n_regimes(self) -> int:
        return 0 if self.transition is None else int(self.transition.shape[0])

    def stationary(self) -> np.ndarray:
        """The regimes' long-run shares, (n_regimes,): the left eigenvector of ``transition`` for 1."""
        assert self.transition is not None
        values, vectors = np.linalg.eig(self.transition.T)
        share = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return np.asarray(share / share.sum())

    def initial_regime(self, n_paths: int) -> np.ndarray | None:
        """Each path's regime before the first day: -1, drawn from :meth:`stationary` on the first day."""
        return None if self.transition is None else np.full(n_paths, -1, dtype=np.intp)

    def regime_path(self, uniforms: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Regimes of a block's days, (n_steps, n_paths), from uniforms of shape (n_steps + 1, n_paths).

        Row 0 of ``uniforms`` places paths still at -1 in ``current`` by the
        stationary shares; then each day moves by ``transition``. ``current``
        is updated to the block's last day.
        """
        assert self.transition is not None
        cumulative = np.cumsum(self.transition, axis=1)
        unset = current < 0
        if unset.any():
            shares = np.cumsum(self.stationary())
            current[unset] = np.minimum(np.searchsorted(shares, uniforms[0, unset], side="right"), shares.size - 1)
        n_steps = uniforms.shape[0] - 1
        regimes = np.empty((n_steps, current.size), dtype=np.intp)
        last = self.n_regimes - 1
        for step in range(n_steps):
            thresholds = cumulative[current]
            current[:] = np.minimum((uniforms[step + 1][:, None] >= thresholds).sum(axis=1), last)
            regimes[step] = current
        return regimes

    @property
    def n_lags(self) -> int:
        return int(self.loadings.shape[1]) - 1

    def initial_history(self, n_paths: int, last: float = 0.0, earlier: float = 0.0) -> np.ndarray:
        """The market's previous ``n_lags`` returns, decimal logs, (n_paths, n_lags): ``last``, then ``earlier``."""
        history = np.full((n_paths, self.n_lags), earlier)
        history[:, :1] = last
        return history

    def apply(self, factors: np.ndarray, history: np.ndarray, regimes: np.ndarray | None = None) -> np.ndarray:
        """Turn market-plus-idiosyncratic returns into series returns, in place.

        Parameters
        ----------
        factors
            ndarray of shape (n_paths, n_steps, n_series): the market's
            returns in column ``market``, idiosyncratic returns elsewhere.
        history
            ndarray of shape (n_paths, n_lags): the market's returns before
            the block, most recent first; updated in place.
        regimes
            ndarray of shape (n_steps, n_paths) from :meth:`regime_path`;
            required when a column switches.
        """
        market = factors[:, :, self.market].copy()
        n_steps = market.shape[1]
        for lag in range(self.n_lags + 1):
            # the market's return ``lag`` steps before each day of the block
            source = market if lag == 0 else np.concatenate([history[:, :lag][:, ::-1], market], axis=1)[:, :n_steps]
            loading = self.loadings[:, lag]
            for column in np.flatnonzero(loading):
                if column != self.switching:
                    factors[:, :, column] += loading[column] * source
            if self.switching is not None:
                assert regimes is not None and self.regime_loadings is not None
                factors[:, :, self.switching] += self.regime_loadings[regimes.T, lag] * source
        if self.n_lags:
            recent = np.concatenate([market[:, ::-1], history], axis=1)
            history[:] = recent[:, : self.n_lags]
        return factors

    def apply_days(self, days: np.ndarray, history: np.ndarray, regimes: np.ndarray | None = None) -> None:
        """:meth:`apply` on day-major returns ``days`` (n_steps, n_series, n_paths), compiled, in place."""
        from mcalloc.simulation.kernels import factor_days

        switching = -1 if self.switching is None else self.switching
        if switching >= 0:
            assert regimes is not None and self.regime_loadings is not None
        factor_days(
            days,
            self.market,
            self._loadings,
            switching,
            _NO_LOADINGS if self.regime_loadings is None else self.regime_loadings,
            _NO_REGIMES if regimes is None else regimes,
            history,
        )

    @property
    def _loadings(self) -> np.ndarray:
        return np.ascontiguousarray(self.loadings, dtype=np.float64)

    def covariance(self, variances: np.ndarray, shock_correlation: np.ndarray, of_sums: bool = False) -> np.ndarray:
        """Long-run covariance of the series' returns, (n_series, n_series).

        ``variances`` (n_series,) are the long-run variances of the market
        and of each idiosyncratic part; the market enters at every lag.
        ``of_sums``: the covariance of long sums of returns instead, per
        step (the spectral density at frequency zero), where a market return
        counts once with the loadings of all its lags summed.
        """
        scale = np.sqrt(variances)
        factor_covariance = shock_correlation * np.outer(scale, scale)
        n = variances.size
        mixing = np.eye(n)
        mixing[:, self.market] += self.loadings.sum(axis=1) if of_sums else self.loadings[:, 0]
        covariance = mixing @ factor_covariance @ mixing.T
        if self.n_lags and not of_sums:
            # a lagged market return is independent of today's shocks
            lagged = self.loadings[:, 1:]
            covariance += (lagged @ lagged.T) * variances[self.market]
        if self.switching is not None and self.regime_loadings is not None:
            # ``loadings`` holds the regimes' mean loading; the spread of the
            # loading across regimes adds sum_l Var(b_l) to the variance
            spread = self.stationary() @ (self.regime_loadings - self.stationary() @ self.regime_loadings) ** 2
            covariance[self.switching, self.switching] += spread.sum() * variances[self.market]
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
    import pandas as pd

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


@dataclass(frozen=True)
class RegimeFit:
    """A fitted switching loading: per-regime loadings (n_regimes, n_lags + 1), transition, fit statistics."""

    loadings: np.ndarray
    transition: np.ndarray
    loglikelihood: float
    bic: float
    constant_bic: float
    smoothed: np.ndarray

    def expected_loadings(self) -> np.ndarray:
        """Each day's loadings weighted by the smoothed regime probabilities, (n_obs, n_lags + 1)."""
        return np.asarray(self.smoothed @ self.loadings)


def fit_regime_loadings(series: np.ndarray, regressors: np.ndarray, n_regimes: int, name: str) -> RegimeFit:
    """Markov-switching loadings of ``series`` (n_obs,) on ``regressors`` (n_obs, n_lags + 1).

    Both sides are divided by the series' conditional volatility from a
    GJR-GARCH(1,1) fitted to it (arch), the regression has a switching
    intercept and one error variance, and the regimes are ordered from the
    highest to the lowest sum of loadings. The BIC of the same regression
    without regimes is returned for comparison.

    Raises
    ------
    ModelError
        If the likelihood cannot be maximised.
    """
    import warnings

    from arch import arch_model
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    scaled = 100.0 * series
    volatility = arch_model(scaled, mean="Constant", vol="GARCH", p=1, o=1, q=1).fit(disp="off").conditional_volatility
    y = scaled / volatility
    x = 100.0 * regressors / volatility[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = MarkovRegression(y, k_regimes=n_regimes, exog=x, switching_variance=False).fit()
        except (ValueError, np.linalg.LinAlgError) as error:
            raise ModelError(f"model.factor.regimes: cannot fit the regimes of {name} ({error})") from None
    names = list(fit.model.param_names)
    params = np.asarray(fit.params)
    n_lags = regressors.shape[1]
    loadings = np.array(
        [[params[names.index(f"x{lag + 1}[{regime}]")] for lag in range(n_lags)] for regime in range(n_regimes)]
    )
    # regime_transition[j, i] = P(s_t = j | s_t-1 = i)
    transition = np.asarray(fit.regime_transition)[:, :, 0].T
    order = np.argsort(-loadings.sum(axis=1), kind="stable")
    smoothed = np.asarray(fit.smoothed_marginal_probabilities)[:, order]
    design = np.column_stack([np.ones(y.size), x])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    constant_loglikelihood = -0.5 * y.size * (math.log(2 * math.pi * residual.var()) + 1.0)
    constant_bic = -2.0 * constant_loglikelihood + (n_lags + 2) * math.log(y.size)
    return RegimeFit(
        loadings=loadings[order],
        transition=transition[np.ix_(order, order)],
        loglikelihood=float(fit.llf),
        bic=float(fit.bic),
        constant_bic=float(constant_bic),
        smoothed=smoothed,
    )
