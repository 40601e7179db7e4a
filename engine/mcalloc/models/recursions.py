"""The simulation's recursions, vectorised over paths, looping over days.

Each series follows its own model (see :mod:`mcalloc.config.model_schema` for
the equations, in arch's percent units). Series of the GARCH family (GARCH and
GJR-GARCH) are run together, EGARCH series together, then the mean is added:
a constant, or the AR(1) filter ``r_t = mu + phi r_{t-1} + e_t``. The variance
recursions only see the residuals ``e_t``, so the mean can be applied after
them.

Layout: the loop over days runs on arrays of shape (n_steps, k, n_paths), so
that each day of a series is one contiguous row of paths; numpy's per-day
operations on the strided ``innovations[:, step, :]`` cost several times as
much. Arrays are updated in place, and block-sized work arrays are kept in
the :class:`SimulationState` from block to block: a fresh allocation the
size of a block costs more in page faults than the arithmetic on it on
machines where freed memory goes back to the system. Every operation is the
one the equations name, in the same order, so results do not depend on the
layout to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy

if TYPE_CHECKING:
    from mcalloc.models.marginals import FittedMarginal

__all__ = [
    "SCALE",
    "SQRT_2_OVER_PI",
    "RecursionPlan",
    "SimulationState",
    "next_variance",
    "simulate_egarch_block",
    "simulate_garch_block",
]

SCALE = 100.0
"""Models describe 100 x daily log returns (percent); arch's optimiser is happiest there."""

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
"""arch centres the EGARCH's ``|z_t|`` by ``E|z|`` of a normal, whatever the shocks' law."""


def next_variance(kind: str, params: dict[str, float], residual: float, variance: float) -> float:
    """One model's conditional variance of the next day after one with ``residual`` and ``variance`` (percent).

    ``kind`` is ``garch``, ``gjr_garch`` or ``egarch``; ``params`` holds
    ``omega``, ``alpha``, ``gamma`` (absent for GARCH) and ``beta``.
    """
    if kind == "egarch":
        z = residual / math.sqrt(variance)
        log_next = (
            params["omega"]
            + params["alpha"] * (abs(z) - SQRT_2_OVER_PI)
            + params["gamma"] * z
            + params["beta"] * math.log(variance)
        )
        return math.exp(log_next)
    gamma = params.get("gamma", 0.0) if residual < 0 else 0.0
    return params["omega"] + (params["alpha"] + gamma) * residual**2 + params["beta"] * variance


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
    regime
        ndarray of shape (n_paths,): each path's regime of a switching
        factor loading (-1 before the first day); or ``None``.
    drift
        ndarray of shape (n_paths, n_assets): each path's offset to every
        series' mean log return per step (decimal), drawn once when the
        means are uncertain (``model.mean_uncertainty``); or ``None``.
    buffers
        Work arrays reused from block to block (see :meth:`scratch`).
    """

    variance: np.ndarray
    last_return: np.ndarray
    dependence: object = None
    market_history: np.ndarray | None = None
    regime: np.ndarray | None = None
    drift: np.ndarray | None = None
    buffers: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def scratch(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float array kept from block to block under ``name``; its contents are left over.

        A fresh array the size of a block costs more than the arithmetic on
        it where freed memory goes back to the system, since every page is
        then faulted in again; blocks of the same size reuse this one.
        """
        buffer = self.buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self.buffers[name] = np.empty(shape)
        return buffer


def simulate_garch_block(
    days: np.ndarray,
    variance: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    work: np.ndarray | None = None,
    ceiling: np.ndarray | None = None,
) -> None:
    """GJR-GARCH(1,1) residuals ``e_t`` (percent) for a block of days, in place.

    Parameters
    ----------
    days
        ndarray of shape (n_steps, k, n_paths): unit-variance shocks,
        overwritten with the residuals.
    variance
        ndarray of shape (k, n_paths), percent squared: the first day's
        conditional variance, updated in place to the day after the block.
    omega, alpha, gamma, beta
        ndarrays of shape (k,); ``gamma = 0`` is a GARCH(1,1).
    work
        Optional float scratch array of the shape of ``days``.
    ceiling
        Optional ndarray of shape (k,): the conditional variance never goes
        above it (``inf``: no ceiling).
    """
    omega, alpha, gamma, beta = (np.asarray(p, dtype=float)[:, None] for p in (omega, alpha, gamma, beta))
    cap = None if ceiling is None or not np.isfinite(ceiling).any() else np.asarray(ceiling, dtype=float)[:, None]
    # e_t < 0 exactly when z_t < 0 (sigma_t > 0), so the weight of e_t^2,
    # alpha + gamma 1[z_t < 0], is known for the whole block before the loop
    weight = np.less(days, 0.0, out=np.empty(days.shape) if work is None else work)
    weight *= gamma
    weight += alpha
    sigma = np.empty_like(variance)
    square = np.empty_like(variance)
    for day, day_weight in zip(days, weight, strict=True):
        np.sqrt(variance, out=sigma)
        day *= sigma
        np.multiply(day, day, out=square)
        square *= day_weight
        square += omega
        variance *= beta
        variance += square
        if cap is not None:
            np.minimum(variance, cap, out=variance)


def simulate_egarch_block(
    days: np.ndarray,
    variance: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    work: np.ndarray | None = None,
    ceiling: np.ndarray | None = None,
) -> None:
    """EGARCH(1,1) residuals ``e_t`` (percent) for a block of days, in place.

    Same arguments as :func:`simulate_garch_block`. The news term
    ``omega + alpha (|z| - sqrt(2/pi)) + gamma z`` depends on the shocks
    only, so it is computed for the whole block at once; the loop then runs
    the linear recursion of the log variance.
    """
    omega, alpha, gamma, beta = (np.asarray(p, dtype=float)[:, None] for p in (omega, alpha, gamma, beta))
    news = np.abs(days, out=np.empty(days.shape) if work is None else work)
    news -= SQRT_2_OVER_PI
    news *= alpha
    news += gamma * days
    news += omega
    log_variance = np.log(variance)
    log_cap = None if ceiling is None or not np.isfinite(ceiling).any() else np.log(ceiling)[:, None]
    sigma = np.empty_like(variance)
    for day, day_news in zip(days, news, strict=True):
        np.multiply(log_variance, 0.5, out=sigma)
        np.exp(sigma, out=sigma)
        day *= sigma
        log_variance *= beta
        log_variance += day_news
        if log_cap is not None:
            np.minimum(log_variance, log_cap, out=log_variance)
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
    ceiling: np.ndarray

    @classmethod
    def from_marginals(
        cls, marginals: Sequence[FittedMarginal], ceiling_multiple: float | None = None
    ) -> RecursionPlan:
        """The plan for these marginals.

        ``ceiling_multiple`` caps each series' variance at that multiple of its
        ``max_variance`` (no cap where either is ``None``).
        """

        def column(key: str) -> np.ndarray:
            return np.array([m.params.get(key, 0.0) for m in marginals])

        def where(condition: list[bool]) -> np.ndarray:
            return np.flatnonzero(np.array(condition, dtype=bool))

        ar_columns = where([m.autoregressive for m in marginals])
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
            ceiling=np.array(
                [
                    ceiling_multiple * m.max_variance
                    if ceiling_multiple is not None and m.max_variance is not None
                    else np.inf
                    for m in marginals
                ]
            ),
        )

    @property
    def n_assets(self) -> int:
        return int(self.mu.size)

    def _run(self, columns: np.ndarray, days: np.ndarray, variance: np.ndarray, work: np.ndarray) -> None:
        block = simulate_egarch_block if columns is self.egarch_columns else simulate_garch_block
        if columns.size == self.n_assets:
            # every series in one group: work on the arrays themselves, no copies
            block(days, variance, self.omega, self.alpha, self.gamma, self.beta, work, self.ceiling)
            return
        sub = days[:, columns, :]
        sub_variance = variance[columns]
        params = (self.omega[columns], self.alpha[columns], self.gamma[columns], self.beta[columns])
        block(sub, sub_variance, *params, None, self.ceiling[columns])
        days[:, columns, :] = sub
        variance[columns] = sub_variance

    def simulate_compiled(self, innovations: np.ndarray, state: SimulationState) -> np.ndarray:
        """What :meth:`simulate` returns, from the compiled kernel.

        Same layout as :meth:`simulate` without ``out``: a view, with the
        usual axes, of an array whose memory is ordered (n_steps, n_assets,
        n_paths); here that array is a buffer of ``state``, overwritten by
        the next block.
        """
        if innovations.ndim != 3 or innovations.shape[2] != self.n_assets:
            raise ValueError("one marginal per asset column is required")
        n_paths, n_steps, n_assets = innovations.shape
        days = state.scratch("days", (n_steps, n_assets, n_paths))
        np.copyto(days, innovations.transpose(1, 2, 0))
        return self.run_days(days, state)

    def run_days(self, days: np.ndarray, state: SimulationState) -> np.ndarray:
        """The compiled recursions on shocks ``days`` (n_steps, n_assets, n_paths), in place.

        Returns the decimal log returns as a view of shape (n_paths, n_steps, n_assets).
        """
        from mcalloc.simulation.kernels import EGARCH, GARCH, recursion_block

        n_assets = self.n_assets
        variance = np.array(state.variance.T, order="C")
        last_return = np.array(state.last_return.T, order="C")
        kind = np.full(n_assets, GARCH, dtype=np.int64)
        kind[self.egarch_columns] = EGARCH
        ar = np.zeros(n_assets, dtype=np.bool_)
        ar[self.ar_columns] = True
        recursion_block(
            days,
            variance,
            last_return,
            kind,
            ar,
            self.mu,
            self.phi,
            self.omega,
            self.alpha,
            self.gamma,
            self.beta,
            self.ceiling,
            SCALE,
        )
        state.variance[...] = variance.T
        state.last_return[...] = last_return.T
        returns: np.ndarray = days.transpose(2, 0, 1)
        return returns

    def simulate(self, innovations: np.ndarray, state: SimulationState, out: np.ndarray | None = None) -> np.ndarray:
        """Daily log returns (decimal) of shape (n_paths, n_steps, n_assets) for one block.

        ``innovations`` are unit-variance shocks of that shape (left
        unchanged unless they are ``out``); ``state`` is updated in place
        so that the next block continues the same paths.

        The days are worked on in an array of shape (n_steps, n_assets,
        n_paths), where each day of a series is one contiguous row: numpy's
        per-day operations on rows of paths are several times faster than on
        the strided ``innovations[:, step, :]``. Without ``out`` the result
        is a view of that (new) array with the axes in the usual order, not
        C-contiguous; with ``out`` (which may be ``innovations``) the work
        happens in buffers kept in ``state`` and the result is written to
        ``out``, which is returned.
        """
        if innovations.ndim != 3 or innovations.shape[2] != self.n_assets:
            raise ValueError("one marginal per asset column is required")
        n_paths, n_steps, n_assets = innovations.shape
        layout = (n_steps, n_assets, n_paths)
        days = np.empty(layout) if out is None else state.scratch("days", layout)
        np.copyto(days, innovations.transpose(1, 2, 0))
        variance = np.array(state.variance.T, order="C")
        for columns in (self.garch_columns, self.egarch_columns):
            if columns.size:
                self._run(columns, days, variance, state.scratch("work", layout))
        state.variance[...] = variance.T
        if self.ar_columns.size == 0:
            days += self.mu[:, None]
        else:
            # the AR(1) filter on the residuals plus intercept, with the
            # previous day's return as its initial condition
            days += self.mu_outside_ar[:, None]
            for column in self.ar_columns:
                phi = self.phi[column]
                driven = days[:, column, :] + self.mu[column]
                initial = (phi * state.last_return[:, column])[None, :]
                # scipy.signal loads scipy.stats and scipy.optimize with it: only this numpy reference path
                # (SimulationPlan.compiled=False) and only for AR(1) means; the compiled path filters in a kernel
                filtered, _ = scipy.signal.lfilter([1.0], [1.0, -phi], driven, axis=0, zi=initial)
                days[:, column, :] = filtered
                state.last_return[:, column] = filtered[-1]
        days *= 1.0 / SCALE
        returns: np.ndarray = days.transpose(2, 0, 1)
        if out is None:
            return returns
        out[...] = returns
        return out
