"""Resampling whole days of history: filtered historical simulation and plain baselines.

Filtered historical simulation (Barone-Adesi, Giannopoulos and Vosper 1999)
draws each simulated day's shocks as one row of the fitted standardised
residuals, all series from the same historical day. The rows keep what a
parametric copula has to assume: each series' empirical tails and skew, and
which days every market crashed together. The volatility models then scale
the shocks, so the simulated volatility still follows the model.

Rows are drawn with the stationary bootstrap (Politis and Romano 1994): each
day either continues the previous day's block (the next historical row) or,
with probability ``1 / block_length``, jumps to a random row. Blocks keep the
lead-lag links between series fixed at different hours (ECB rates against US
closes) and short-lived dependence; ``block_length: 1`` draws days i.i.d.

The plain baselines replace the whole generator: i.i.d. multivariate normal
or Student-t returns with the data's mean and covariance, and the stationary
bootstrap of the historical returns themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mcalloc.config.model_schema import MIN_RESIDUAL_ROWS
from mcalloc.errors import ModelError
from mcalloc.models.dependence import correlation_records

__all__ = ["IidReturns", "ResidualBootstrap", "ReturnBootstrap", "stationary_indices"]


def stationary_indices(
    rng: np.random.Generator, position: np.ndarray, n_steps: int, n_rows: int, block_length: float
) -> np.ndarray:
    """Row indices of shape (n_paths, n_steps) from the stationary bootstrap, continuing from ``position``.

    ``position`` (n_paths,) holds each path's last row (-1 before the first
    day) and is updated in place. Rows wrap around the end of the sample.
    """
    n_paths = position.shape[0]
    jumps = rng.integers(0, n_rows, size=(n_paths, n_steps))
    if block_length <= 1.0:
        position[:] = jumps[:, -1]
        return jumps
    fresh = rng.random((n_paths, n_steps)) < 1.0 / block_length
    fresh[:, 0] |= position < 0
    indices = np.empty((n_paths, n_steps), dtype=np.intp)
    current = position.copy()
    for step in range(n_steps):
        current += 1
        current[current >= n_rows] = 0
        np.copyto(current, jumps[:, step], where=fresh[:, step])
        indices[:, step] = current
    position[:] = current
    return indices


@dataclass
class BootstrapState:
    """Each path's current row in the resampled history (mutable)."""

    position: np.ndarray


MAX_STANDARDISED = 100.0
"""Largest standardised residual accepted: no fitted day comes near (October 1987 is about 20); a bigger one is a
broken file, which would otherwise overflow the scale and leave a series' shocks at zero."""


def _checked_rows(rows: np.ndarray, what: str, fix: str) -> np.ndarray:
    """The complete rows (a NaN marks a held-back day, left out); an infinite value is refused."""
    rows = np.asarray(rows, dtype=float)
    infinite = np.flatnonzero(np.isinf(rows).any(axis=1))
    if infinite.size:
        raise ModelError(f"{what}: data row {infinite[0] + 1} holds an infinite value; {fix}")
    rows = rows[np.isfinite(rows).all(axis=1)]
    if rows.shape[0] < MIN_RESIDUAL_ROWS:
        raise ModelError(
            f"{what}: only {rows.shape[0]} complete row{'' if rows.shape[0] == 1 else 's'} to resample; at least "
            f"{MIN_RESIDUAL_ROWS} are needed "
            "(fit to a longer data window)"
        )
    return rows


@dataclass(frozen=True)
class ResidualBootstrap:
    """Filtered historical simulation: resample rows of standardised residuals.

    Attributes
    ----------
    residuals
        ndarray of shape (n_obs, n_series): standardised residuals, each
        column centred and scaled to unit variance.
    block_length
        Mean block length in days (1: i.i.d. days).
    """

    residuals: np.ndarray
    block_length: float = 1.0
    kind: str = field(default="fhs", init=False)

    @classmethod
    def from_residuals(
        cls,
        residuals: np.ndarray,
        block_length: float,
        what: str = "model.dependence.residuals",
        fix: str = "check the residual file",
        names: Sequence[str] = (),
    ) -> ResidualBootstrap:
        """Centre and scale each column of raw standardised residuals (rows with NaN dropped).

        ``what`` and ``fix`` say in an error where the residuals came from and what to do; ``names``, the
        columns' series (else they are numbered).

        Raises
        ------
        ModelError
            If fewer than ``MIN_RESIDUAL_ROWS`` complete rows remain or a column is constant.
        """
        rows = _checked_rows(residuals, what, fix)

        def label(column: int) -> str:
            return f"column {names[column]}" if len(names) > column else f"column {column + 1}"

        with np.errstate(over="ignore", invalid="ignore"):
            mean, scale = rows.mean(axis=0), rows.std(axis=0)
            standardised = (rows - mean) / scale
        if np.any(scale <= 0.0):
            column = int(np.flatnonzero(scale <= 0.0)[0])
            raise ModelError(f"{what}: {label(column)} of the residuals is constant ({rows[0, column]:.6g}); {fix}")
        # measured against a robust spread (the median absolute deviation, scaled to a normal's standard
        # deviation): one huge value inflates the standard deviation itself, and never stands out by it
        median = np.median(rows, axis=0)
        deviation = np.abs(rows - median)
        spread = 1.4826 * np.median(deviation, axis=0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            robust = deviation / np.where(spread > 0.0, spread, scale)
        far = ~(robust <= MAX_STANDARDISED)
        for overflowed in np.flatnonzero(~np.isfinite(scale)):  # a value so large its square overflows
            far[np.argmax(np.abs(rows[:, overflowed])), overflowed] = True
        if far.any():
            row, column = (int(i[0]) for i in np.nonzero(far))
            raise ModelError(
                f"{what}: complete row {row + 1}, {label(column)} ({rows[row, column]:.6g}) is more than "
                f"{MAX_STANDARDISED:g} robust standard deviations from its column's median, which no standardised "
                f"residual is; {fix}"
            )
        if np.all(np.abs(mean) < 1e-12) and np.all(np.abs(scale - 1.0) < 1e-12):
            # already standardised (a calibrated file): keep the values exactly
            return cls(residuals=rows, block_length=block_length)
        return cls(residuals=standardised, block_length=block_length)

    @property
    def correlation(self) -> np.ndarray:
        return np.atleast_2d(np.corrcoef(self.residuals, rowvar=False))

    def initial_state(self, n_paths: int, start: str) -> BootstrapState:
        return BootstrapState(position=np.full(n_paths, -1, dtype=np.intp))

    def sample_innovations(
        self,
        rng: np.random.Generator,
        n_paths: int,
        n_steps: int,
        transforms: Sequence[object] | None = None,
        state: object = None,
    ) -> np.ndarray:
        """Rows of residuals, shape (n_paths, n_steps, n_series); ``state`` carries the blocks on."""
        assert isinstance(state, BootstrapState)
        indices = stationary_indices(rng, state.position, n_steps, self.residuals.shape[0], self.block_length)
        result: np.ndarray = self.residuals[indices]
        return result

    def sample_days(
        self, rng: np.random.Generator, n_paths: int, n_steps: int, out: np.ndarray, state: object = None
    ) -> np.ndarray:
        """:meth:`sample_innovations` from the same draws, gathered straight into ``out`` (n_steps, n, n_paths)."""
        from mcalloc.simulation.kernels import gather_days

        assert isinstance(state, BootstrapState)
        indices = stationary_indices(rng, state.position, n_steps, self.residuals.shape[0], self.block_length)
        gather_days(self._rows, indices, out)
        return out

    @cached_property
    def _rows(self) -> np.ndarray:
        return np.ascontiguousarray(self.residuals, dtype=np.float64)

    def column(self, index: int) -> np.ndarray:
        return np.asarray(self.residuals[:, index])

    def records(self) -> list[dict[str, object]]:
        rows = correlation_records(self.kind, self.correlation)
        rows.append({"kind": self.kind, "parameter": "block_length", "series": "", "value": self.block_length})
        rows.append({"kind": self.kind, "parameter": "n_rows", "series": "", "value": self.residuals.shape[0]})
        return rows


@dataclass(frozen=True)
class ReturnBootstrap:
    """Baseline: the stationary bootstrap of historical log returns (decimal), shape (n_obs, n_series)."""

    returns: np.ndarray
    block_length: float = 21.0
    kind: str = field(default="bootstrap_returns", init=False)

    @property
    def correlation(self) -> np.ndarray:
        return np.atleast_2d(np.corrcoef(self.returns, rowvar=False))

    def initial_state(self, n_paths: int, start: str) -> BootstrapState:
        return BootstrapState(position=np.full(n_paths, -1, dtype=np.intp))

    def sample_returns(self, rng: np.random.Generator, n_paths: int, n_steps: int, state: object) -> np.ndarray:
        """Daily log returns (decimal), shape (n_paths, n_steps, n_series)."""
        assert isinstance(state, BootstrapState)
        indices = stationary_indices(rng, state.position, n_steps, self.returns.shape[0], self.block_length)
        result: np.ndarray = self.returns[indices]
        return result

    def records(self) -> list[dict[str, object]]:
        rows = correlation_records(self.kind, self.correlation)
        rows.append({"kind": self.kind, "parameter": "block_length", "series": "", "value": self.block_length})
        return rows


@dataclass(frozen=True)
class IidReturns:
    """Baseline: i.i.d. multivariate normal (``nu`` None) or Student-t log returns.

    ``mean`` (n,) and ``covariance`` (n, n) are per step, decimal; the t
    draws are scaled to that covariance (``nu > 2``).
    """

    mean: np.ndarray
    covariance: np.ndarray
    nu: float | None = None

    @property
    def kind(self) -> str:
        return "iid_normal" if self.nu is None else "iid_t"

    @property
    def correlation(self) -> np.ndarray:
        scale = np.sqrt(np.diag(self.covariance))
        return np.asarray(self.covariance / np.outer(scale, scale))

    @cached_property
    def cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.covariance)

    def initial_state(self, n_paths: int, start: str) -> None:
        return None

    def sample_returns(self, rng: np.random.Generator, n_paths: int, n_steps: int, state: object) -> np.ndarray:
        """Daily log returns (decimal), shape (n_paths, n_steps, n_series)."""
        n = self.mean.shape[0]
        draws = rng.standard_normal((n_paths * n_steps, n)) @ self.cholesky.T
        if self.nu is not None:
            mixing = rng.chisquare(self.nu, n_paths * n_steps) / (self.nu - 2.0)
            draws /= np.sqrt(mixing)[:, None]
        draws += self.mean
        return np.asarray(draws.reshape(n_paths, n_steps, n))

    def records(self) -> list[dict[str, object]]:
        rows = correlation_records(self.kind, self.correlation)
        if self.nu is not None:
            rows.append({"kind": self.kind, "parameter": "nu", "series": "", "value": self.nu})
        return rows

    @classmethod
    def fit(cls, returns: np.ndarray, student: bool) -> IidReturns:
        """Mean and covariance of ``returns`` (n_obs, n); for ``student``, ``nu`` from the average excess kurtosis.

        For a multivariate t the excess kurtosis of every margin is
        ``6 / (nu - 4)``, so ``nu = 4 + 6 / k`` (at least 4.1).
        """
        mean = returns.mean(axis=0)
        covariance = np.atleast_2d(np.cov(returns, rowvar=False))
        if not student:
            return cls(mean=mean, covariance=covariance)
        centred = returns - mean
        kurtosis = float(np.mean(np.mean(centred**4, axis=0) / np.var(returns, axis=0) ** 2)) - 3.0
        nu = 4.0 + 6.0 / kurtosis if kurtosis > 0 else 100.0
        return cls(mean=mean, covariance=covariance, nu=max(min(nu, 100.0), 4.1) if math.isfinite(nu) else 100.0)
