"""The simulation's recursions, vectorised over paths, looping over days.

Each series follows its own model (see :mod:`engine.config.model_schema` for
the equations, in arch's percent units). Series of the GARCH family (GARCH and
GJR-GARCH) are run together, EGARCH series together, then the mean is added:
a constant, or the AR(1) filter ``r_t = mu + phi r_{t-1} + e_t``. The variance
recursions only see the residuals ``e_t``, so the mean can be applied after
them. Arrays are updated in place where possible: fresh allocations inside
the day loop are slow on machines where page faults are expensive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from engine.models.marginals import FittedMarginal

__all__ = [
    "SCALE",
    "SQRT_2_OVER_PI",
    "RecursionPlan",
    "SimulationState",
    "simulate_egarch_block",
    "simulate_garch_block",
]

SCALE = 100.0
"""Models describe 100 x daily log returns (percent); arch's optimiser is happiest there."""

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
"""arch centres the EGARCH's ``|z_t|`` by ``E|z|`` of a normal, whatever the shocks' law."""


@dataclass
class SimulationState:
    """What one block of days hands to the next, per path and series (mutable).

    Attributes
    ----------
    variance
        ndarray of shape (n_paths, n_assets): conditional variance of the
        next day, percent squared.
    last_return
        ndarray of shape (n_paths, n_assets): the previous day's 100 x log
        return; only AR(1) series use it.
    dependence
        The dependence model's own state (DCC's ``Q`` matrices, the
        bootstrap's position in history), or ``None``.
    market_history
        ndarray of shape (n_paths, n_lags): the market factor's previous
        returns, most recent first, for lagged loadings; or ``None``.
    """

    variance: np.ndarray
    last_return: np.ndarray
    dependence: object = None
    market_history: np.ndarray | None = None


def simulate_garch_block(
    innovations: np.ndarray,
    variance: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    out: np.ndarray,
) -> None:
    """GJR-GARCH(1,1) residuals ``e_t`` (percent) for a block of days.

    Parameters
    ----------
    innovations
        ndarray of shape (n_paths, n_steps, k): unit-variance shocks.
    variance
        ndarray of shape (n_paths, k), percent squared: the first day's
        conditional variance, updated in place to the day after the block.
    omega, alpha, gamma, beta
        ndarrays of shape (k,); ``gamma = 0`` is a GARCH(1,1).
    out
        Array of the innovations' shape (may be ``innovations`` itself).
    """
    shock = np.empty(variance.shape)
    for step in range(innovations.shape[1]):
        np.sqrt(variance, out=shock)
        shock *= innovations[:, step, :]
        out[:, step, :] = shock
        variance *= beta
        variance += omega + (alpha + gamma * (shock < 0.0)) * (shock * shock)


def simulate_egarch_block(
    innovations: np.ndarray,
    variance: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    out: np.ndarray,
) -> None:
    """EGARCH(1,1) residuals ``e_t`` (percent) for a block of days.

    Same arguments as :func:`simulate_garch_block`. The news term
    ``omega + alpha (|z| - sqrt(2/pi)) + gamma z`` depends on the shocks
    only, so it is computed for the whole block at once; the loop then runs
    the linear recursion of the log variance.
    """
    news = np.abs(innovations)
    news -= SQRT_2_OVER_PI
    news *= alpha
    news += gamma * innovations
    news += omega
    log_variance = np.log(variance)
    sigma = np.empty(variance.shape)
    for step in range(innovations.shape[1]):
        np.multiply(log_variance, 0.5, out=sigma)
        np.exp(sigma, out=sigma)
        np.multiply(sigma, innovations[:, step, :], out=out[:, step, :])
        log_variance *= beta
        log_variance += news[:, step, :]
    np.exp(log_variance, out=variance)


@dataclass(frozen=True)
class RecursionPlan:
    """Which columns follow which recursion, and their parameters (each of shape (n_assets,))."""

    garch_columns: np.ndarray
    egarch_columns: np.ndarray
    ar_columns: np.ndarray
    mu: np.ndarray
    phi: np.ndarray
    omega: np.ndarray
    alpha: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    mu_outside_ar: np.ndarray

    @classmethod
    def from_marginals(cls, marginals: Sequence[FittedMarginal]) -> RecursionPlan:
        def column(key: str) -> np.ndarray:
            return np.array([m.params.get(key, 0.0) for m in marginals])

        def where(condition: list[bool]) -> np.ndarray:
            return np.flatnonzero(np.array(condition, dtype=bool))

        ar_columns = where([m.mean == "ar1" for m in marginals])
        mu = column("mu")
        mu_outside_ar = mu.copy()
        mu_outside_ar[ar_columns] = 0.0
        return cls(
            garch_columns=where([m.kind != "egarch" for m in marginals]),
            egarch_columns=where([m.kind == "egarch" for m in marginals]),
            ar_columns=ar_columns,
            mu=mu,
            phi=column("phi"),
            omega=column("omega"),
            alpha=column("alpha"),
            gamma=column("gamma"),
            beta=column("beta"),
            mu_outside_ar=mu_outside_ar,
        )

    @property
    def n_assets(self) -> int:
        return int(self.mu.size)

    def _run(self, columns: np.ndarray, innovations: np.ndarray, state: SimulationState, out: np.ndarray) -> None:
        block = simulate_egarch_block if columns is self.egarch_columns else simulate_garch_block
        if columns.size == self.n_assets:
            # every series in one group: work on the arrays themselves, no copies
            block(innovations, state.variance, self.omega, self.alpha, self.gamma, self.beta, out)
            return
        sub = innovations[:, :, columns]
        variance = state.variance[:, columns]
        block(sub, variance, self.omega[columns], self.alpha[columns], self.gamma[columns], self.beta[columns], sub)
        out[:, :, columns] = sub
        state.variance[:, columns] = variance

    def simulate(self, innovations: np.ndarray, state: SimulationState, out: np.ndarray | None = None) -> np.ndarray:
        """Daily log returns (decimal) of shape (n_paths, n_steps, n_assets) for one block.

        ``innovations`` are unit-variance shocks of that shape; ``state`` is
        updated in place so that the next block continues the same paths.
        """
        if innovations.shape[2] != self.n_assets:
            raise ValueError("one marginal per asset column is required")
        if out is None:
            out = np.empty_like(innovations)
        for columns in (self.garch_columns, self.egarch_columns):
            if columns.size:
                self._run(columns, innovations, state, out)
        if self.ar_columns.size == 0:
            out += self.mu
        else:
            # the AR(1) filter on the residuals plus intercept, with the
            # previous day's return as its initial condition
            out += self.mu_outside_ar
            for column in self.ar_columns:
                phi = self.phi[column]
                driven = out[:, :, column] + self.mu[column]
                initial = (phi * state.last_return[:, column])[:, None]
                filtered, _ = signal.lfilter([1.0], [1.0, -phi], driven, axis=1, zi=initial)
                out[:, :, column] = filtered
                state.last_return[:, column] = filtered[:, -1]
        out *= 1.0 / SCALE
        return out
