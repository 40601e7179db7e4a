"""The optimiser's scenarios, and the measures every objective is judged by.

A scenario is one simulated path seen month by month: each asset's
after-fee growth factor in each month (base currency), float32 of shape
(n_paths, n_months, n_assets), kept by the optimiser's own simulation pass.
For a mix rebalanced to its weights ``w`` at the start of every rebalancing
period, the growth over a period is ``P_k @ w`` (``P_k`` the assets' growth
over that period): linear in the weights. So:

* horizon log growth ``G(w) = sum_k log(P_k @ w)`` is concave in ``w``, and
  its CVaR (of ``-G``) convex;
* monthly returns ``r_m = M_m @ w - 1`` give the one volatility,
  :func:`mcalloc.metrics.risk.pooled_volatility` of them (exact for monthly
  rebalancing, the usual case; for other policies the optimiser's
  volatility treats the mix as monthly rebalanced);
* drawdowns are measured at month ends, on the wealth of a monthly
  rebalanced mix: *compounded*, ``1 - W_m / max_{j<=m} W_j`` with
  ``W_0 = 1``; *uncompounded*, on cumulative sums of monthly returns
  ``C_m = sum_{j<=m} r_j`` as ``max_{j<=m} C_j - C_m`` with ``C_0 = 0``
  (Chekhlov, Uryasev and Zabarankin 2005, the form single-path optimisers
  use), which is linear in ``w`` and what the drawdown programs optimise.

The metrics of ``metrics.csv`` come from the full accounting (daily steps,
costs, taxes, flows); ``optimization.csv`` reports both, so the gap between
what the optimiser saw and what a portfolio lives through is visible.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mcalloc.errors import ConfigError
from mcalloc.metrics.risk import cvar, pooled_volatility

__all__ = ["Scenarios", "parametric"]


@dataclass(frozen=True)
class Scenarios:
    """Monthly after-fee asset growth on the optimiser's paths, and the rebalancing period in months.

    ``months_per_period`` is 1, 3 or 12 for calendar rebalancing and the
    whole horizon for buy-and-hold. ``steps_per_year`` is 12 for simulated
    months; single-period parametric scenarios (:func:`parametric`) set it
    to the number of their periods in a year, and every measure is
    annualised with it.
    """

    months: np.ndarray
    months_per_period: int
    steps_per_year: float = 12.0
    floor_mean: np.ndarray | None = None
    """In a subset of paths, the annualised means of all the optimiser's paths: where a floor is measured."""
    known_moments: tuple[np.ndarray, np.ndarray] | None = None
    """The mean (n_assets,) and covariance (n_assets, n_assets) per period the scenarios were drawn from, if given.

    Parametric scenarios have them: the mean, variance and floor measures
    then use them exactly, as Rockafellar and Uryasev (2000) do, and only
    the tail measures (CVaR, drawdowns) are estimated from the draws.
    """

    @property
    def n_paths(self) -> int:
        return int(self.months.shape[0])

    @property
    def n_months(self) -> int:
        return int(self.months.shape[1])

    @property
    def n_assets(self) -> int:
        return int(self.months.shape[2])

    @property
    def years(self) -> float:
        return self.n_months / self.steps_per_year

    def subset(self, rows: np.ndarray | slice) -> Scenarios:
        """The scenarios of some paths; a ``min_return`` floor is still measured on all of them."""
        return Scenarios(
            self.months[rows], self.months_per_period, self.steps_per_year, self.floor_means(), self.known_moments
        )

    def floor_means(self) -> np.ndarray:
        """Each asset's annualised mean return as a ``min_return`` floor measures it: over all the paths.

        A subset (a drawdown objective's first ``max_path_scenarios`` paths,
        a stability batch) keeps the means of the paths it came from, so
        the floor it is solved under is the one ``optimization.csv`` checks.
        """
        return self.annual_mean() if self.floor_mean is None else self.floor_mean

    def batches(self, count: int) -> list[Scenarios]:
        """``count`` disjoint consecutive parts of the paths (independently seeded chunks).

        Each stands alone, as if it were all the paths simulated: a floor is measured with its own means.
        """
        edges = np.linspace(0, self.n_paths, count + 1).astype(int)
        return [
            Scenarios(
                self.months[int(lo) : int(hi)], self.months_per_period, self.steps_per_year, None, self.known_moments
            )
            for lo, hi in itertools.pairwise(edges)
        ]

    @cached_property
    def _periods(self) -> np.ndarray:
        return self._aggregate()

    @cached_property
    def _months64(self) -> np.ndarray:
        return np.asarray(self.months, dtype=float)

    def periods(self) -> np.ndarray:
        """Each asset's growth per rebalancing period, float64 (n_paths, n_periods, n_assets); computed once."""
        return self._periods

    def _aggregate(self) -> np.ndarray:
        per = self.months_per_period
        if per == 1:
            return self._months64
        n_periods = -(-self.n_months // per)
        padded = np.ones((self.n_paths, n_periods * per, self.n_assets))
        padded[:, : self.n_months] = self.months
        return np.asarray(padded.reshape(self.n_paths, n_periods, per, self.n_assets).prod(axis=2))

    @cached_property
    def _mean(self) -> np.ndarray:
        return np.asarray(self._months64.reshape(-1, self.n_assets).mean(axis=0) - 1.0)

    @cached_property
    def _covariance(self) -> np.ndarray:
        flat = self._months64.reshape(-1, self.n_assets)
        return np.asarray(np.cov(flat, rowvar=False, ddof=1)).reshape(self.n_assets, self.n_assets)

    def monthly_mean(self) -> np.ndarray:
        """Mean monthly simple return of each asset, pooled over paths and months, (n_assets,); or the known one."""
        return self._mean if self.known_moments is None else self.known_moments[0]

    def monthly_covariance(self) -> np.ndarray:
        """Pooled covariance of the assets' monthly simple returns, (n_assets, n_assets); or the known one."""
        return self._covariance if self.known_moments is None else self.known_moments[1]

    def cumulative_returns(self) -> np.ndarray:
        """Cumulative sums of monthly simple returns, (n_paths, n_months, n_assets): the uncompounded wealth."""
        return np.cumsum(self._months64 - 1.0, axis=1)

    # --- measures of a mix ``weights`` (n_assets,) --------------------------------------------

    def monthly_returns(self, weights: np.ndarray) -> np.ndarray:
        """Monthly simple returns of the mix, (n_paths, n_months)."""
        return np.asarray(self._months64 @ weights - 1.0)

    def mean_return(self, weights: np.ndarray) -> float:
        """Annualised arithmetic mean return: 12 x the mean monthly return (the frontiers' return axis)."""
        return float(self.annual_mean() @ weights)

    def annual_mean(self) -> np.ndarray:
        """Each asset's annualised arithmetic mean return, (n_assets,)."""
        return np.asarray(self.steps_per_year * self.monthly_mean())

    def annual_covariance(self) -> np.ndarray:
        """The pooled covariance of the assets' monthly returns, annualised, (n_assets, n_assets)."""
        return np.asarray(self.steps_per_year * self.monthly_covariance())

    def volatility(self, weights: np.ndarray) -> float:
        """The one volatility: pooled monthly returns, annualised; from the known covariance when there is one."""
        if self.known_moments is not None:
            return math.sqrt(self.steps_per_year * float(weights @ self.known_moments[1] @ weights))
        returns = self.monthly_returns(weights)
        return pooled_volatility(
            returns.sum(axis=1), (returns * returns).sum(axis=1), self.n_months, self.steps_per_year
        )

    def log_growth(self, weights: np.ndarray) -> np.ndarray:
        """Each path's horizon log growth under the rebalancing policy, (n_paths,).

        NaN on a path where the mix loses everything in some period (only short
        positions can): its log growth is not defined.
        """
        growth = self.periods() @ weights
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(growth).sum(axis=1)
        return np.asarray(np.where((growth > 0).all(axis=1), logs, np.nan))

    def wiped_out(self, weights: np.ndarray) -> int:
        """How many paths on which the mix loses everything in some rebalancing period."""
        return int((self.periods() @ weights <= 0).any(axis=1).sum())

    def expected_growth(self, weights: np.ndarray) -> float:
        """Expected annualised log growth (the Kelly criterion's objective)."""
        return float(self.log_growth(weights).mean() / self.years)

    def horizon_cvar(self, weights: np.ndarray, alpha: float, compounded: bool = True) -> float:
        """CVaR of the horizon loss: minus the log growth, or minus the sum of period returns (uncompounded)."""
        if compounded:
            return cvar(-self.log_growth(weights), alpha)
        return cvar(-(self.periods() @ weights - 1.0).sum(axis=1), alpha)

    def drawdowns(self, weights: np.ndarray, compounded: bool = True) -> np.ndarray:
        """Month-end drawdowns of a monthly rebalanced mix, (n_paths, n_months); see the module's definitions."""
        returns = self.monthly_returns(weights)
        if compounded:
            wealth = np.cumprod(1.0 + returns, axis=1)
            peak = np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0)
            return np.asarray(1.0 - wealth / peak)
        cumulative = np.cumsum(returns, axis=1)
        peak = np.maximum(np.maximum.accumulate(cumulative, axis=1), 0.0)
        return np.asarray(peak - cumulative)

    def cdar(self, weights: np.ndarray, alpha: float, compounded: bool = True) -> float:
        """CDaR: CVaR of month-end drawdowns pooled over paths and months."""
        return cvar(self.drawdowns(weights, compounded), alpha)

    def maxdd_cvar(self, weights: np.ndarray, alpha: float, compounded: bool = True) -> float:
        """CVaR of each path's maximum month-end drawdown."""
        return cvar(self.drawdowns(weights, compounded).max(axis=1), alpha)

    def maxdd_quantile(self, weights: np.ndarray, q: float, compounded: bool = True) -> float:
        """The ``q`` quantile (e.g. 0.95) of each path's maximum month-end drawdown."""
        return float(np.quantile(self.drawdowns(weights, compounded).max(axis=1), q))


def parametric(
    mean: np.ndarray,
    covariance: np.ndarray,
    n: int,
    steps_per_year: float,
    rng: np.random.Generator,
    nu: float | None = None,
) -> Scenarios:
    """``n`` single-period scenarios of simple returns with the given mean vector and covariance (kept as known).

    Multivariate normal, or multivariate t with ``nu > 2`` degrees of freedom
    scaled so its covariance is ``covariance``: ``mean + sqrt((nu - 2) / nu)
    L z / sqrt(g / nu)`` with ``L L' = covariance``, ``z`` standard normal and
    ``g`` chi-square with ``nu`` degrees of freedom. One period is
    ``1 / steps_per_year`` of a year.

    Raises
    ------
    ConfigError
        If a drawn return is -100% or worse (growth at or below zero).
    """
    factor = np.linalg.cholesky(covariance)
    shocks = rng.standard_normal((n, mean.size)) @ factor.T
    if nu is not None:
        shocks *= np.sqrt((nu - 2.0) / rng.chisquare(nu, n))[:, None]
    growth = 1.0 + mean + shocks
    lost = int(np.count_nonzero(growth <= 0.0))
    if lost:
        raise ConfigError(
            f"optimize.scenarios: {lost:,} of the {growth.size:,} drawn asset returns lose 100% or more in a period "
            "(normal and t returns have no floor at -100%), which no wealth survives; lower "
            "optimize.scenarios.covariance (per period, as the means)"
        )
    known = (np.array(mean, dtype=float), np.array(covariance, dtype=float))
    return Scenarios(growth[:, None, :], 1, steps_per_year, known_moments=known)
