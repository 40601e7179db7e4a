"""Scenario schema for the dependence between the series (``model.dependence``) and their market factor (``factor``).

The kinds: copulas (``gaussian``, ``t``, ``dcc``) join the series' shocks,
``independent`` leaves them independent;
``fhs`` resamples their standardised residuals, whole days or blocks; the
baselines (``iid_normal``, ``iid_t``, ``bootstrap_returns``) draw returns
directly, without volatility models. docs/models.md compares them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from mcalloc.config.base import Frozen

__all__ = [
    "BASELINE_KINDS",
    "MAX_LOADING",
    "MIN_RESIDUAL_ROWS",
    "DccConfig",
    "DependenceConfig",
    "DependenceKind",
    "FactorConfig",
    "RegimeConfig",
    "StressConfig",
    "correlation_problem",
    "stress_problem",
]

MAX_LOADING = 10.0
"""Largest absolute loading on the market factor."""

DependenceKind = Literal["gaussian", "t", "dcc", "fhs", "independent", "iid_normal", "iid_t", "bootstrap_returns"]


BASELINE_KINDS: tuple[DependenceKind, ...] = ("iid_normal", "iid_t", "bootstrap_returns")
"""Dependence kinds that replace the whole generator with a plain baseline (no volatility models)."""


MIN_RESIDUAL_ROWS = 250
"""Fewest residual vectors a filtered historical simulation resamples from (about a year of days)."""


def correlation_problem(matrix_rows: list[list[float]]) -> str | None:
    """The first reason ``matrix_rows`` is not a valid correlation matrix, or ``None``."""
    n = len(matrix_rows)
    for number, row in enumerate(matrix_rows, start=1):
        if len(row) != n:
            return f"must be a square matrix, but it has {n} rows and row {number} has {len(row)} numbers"
    matrix = np.asarray(matrix_rows, dtype=float)
    if not np.all(np.isfinite(matrix)):
        return "entries must be finite numbers"
    if not np.allclose(matrix, matrix.T, atol=1e-10):
        return "must be symmetric"
    if not np.allclose(np.diag(matrix), 1.0, atol=1e-10):
        return "must have ones on the diagonal"
    if np.any(np.abs(matrix) > 1.0):
        return "entries must lie in [-1, 1]"
    smallest = float(np.linalg.eigvalsh(matrix).min())
    if smallest <= 1e-10:
        return (
            f"not positive definite (smallest eigenvalue {smallest:.3g}); use a consistent set of pairwise correlations"
        )
    return None


class DccConfig(Frozen):
    """DCC(1,1) parameters: ``Q_t+1 = (1 - a - b) Qbar + a u_t u_t' + b Q_t`` (Engle 2002).

    ``last_q``: the fitted ``Q`` of the day after the data (``mcalloc
    calibrate`` writes it), for ``simulation.start.kind: last``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    a: Annotated[float, Field(ge=0.0)]
    b: Annotated[float, Field(ge=0.0)]
    last_q: list[list[float]] | None = None

    @model_validator(mode="after")
    def _stationary(self) -> DccConfig:
        if self.a + self.b >= 1.0:
            raise ValueError(
                f"a: a + b = {self.a + self.b:.4f} must be below 1 for correlations that settle; lower a or b"
            )
        return self


class StressConfig(Frozen):
    """Correlation stress on the shocks' correlation (``gaussian``, ``t``, ``dcc`` and ``iid_*``).

    ``correlation_blend`` moves every off-diagonal correlation that share of
    the way towards 1: ``(1 - blend) R + blend 11'``. ``worst_days`` (fits
    only) replaces the correlation by the one measured on the most stressed
    share of days (0.05: 5%), ranked by the fitted variances relative to
    their long-run levels averaged over series: a crisis correlation. Days are
    ranked by their fitted (predetermined) variance, not by their own
    returns, which would bias the correlation (Boyer, Gibson and Loretan 1999).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    correlation_blend: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    worst_days: Annotated[float, Field(gt=0.0, le=0.5)] | None = None

    @property
    def active(self) -> bool:
        return self.correlation_blend > 0.0 or self.worst_days is not None


def stress_problem(kind: DependenceKind, stress: StressConfig) -> str | None:
    """Why ``stress`` cannot apply to a ``kind`` of dependence (``None`` if it can)."""
    if stress.active and kind in ("fhs", "independent", "bootstrap_returns"):
        return (
            f"correlation stress applies to gaussian, t, dcc, iid_normal and iid_t, not {kind}; "
            "use simulation.start.kind: stressed for a stressed start"
        )
    return None


class RegimeConfig(Frozen):
    """One series' market loadings switching between regimes of a hidden Markov chain.

    ``series`` names the switching series (not the market). A fit estimates
    ``n_regimes`` regimes; calibrated runs give ``loadings`` (one list of
    loadings at lags 0, 1, ... per regime) and ``transition`` (row ``i``:
    the chances of each regime tomorrow given regime ``i`` today).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    series: str
    n_regimes: Annotated[int, Field(ge=2, le=4)] = 2
    loadings: list[list[float]] | None = None
    transition: list[list[Annotated[float, Field(ge=0.0, le=1.0)]]] | None = None

    @model_validator(mode="after")
    def _shapes(self) -> RegimeConfig:
        if (self.loadings is None) != (self.transition is None):
            raise ValueError("loadings: give both loadings and transition (calibrated) or neither (fitted)")
        if self.loadings is None or self.transition is None:
            return self
        k = len(self.transition)
        if k != self.n_regimes or any(len(row) != k for row in self.transition):
            raise ValueError(f"transition: must be {self.n_regimes} x {self.n_regimes} (n_regimes)")
        for index, row in enumerate(self.transition):
            if abs(sum(row) - 1.0) > 1e-6:
                raise ValueError(f"transition.{index}: the chances in a row must sum to 1, not {sum(row):.6g}")
            if row[index] >= 1.0:
                raise ValueError(
                    f"transition.{index}: regime {index} is never left ({row[index]:g} of staying), so a path that "
                    "enters it stays for good; give it a chance below 1 of staying, as mcalloc calibrate fits"
                )
        if len(self.loadings) != k or len({len(row) for row in self.loadings}) != 1:
            raise ValueError(f"loadings: one list per regime ({k}), all of the same length (one value per lag)")
        return self


class FactorConfig(Frozen):
    """A common market factor: each other series loads on the market's returns.

    Series ``i`` earns ``sum_l loadings[i][l] r_market,t-l + e_i,t``; the
    volatility models and the dependence model then describe the market and
    the idiosyncratic parts ``e_i``. Because every asset inherits the
    market's variance, correlations rise when the market's volatility does.
    ``loadings`` (calibrated) maps each non-market series to its loadings at
    lags 0, 1, ...; a fit estimates them by least squares, with
    ``dependence.lead_lag`` lags for the ``dependence.lead_lag_series``.
    ``regimes`` makes one series' loadings switch between the regimes of a
    hidden Markov chain (:class:`RegimeConfig`); its entry in ``loadings``
    is then the regimes' long-run mean, for reference.
    """

    market: str
    loadings: dict[str, list[Annotated[float, Field(ge=-MAX_LOADING, le=MAX_LOADING)]]] | None = None
    regimes: RegimeConfig | None = None

    @model_validator(mode="after")
    def _switching_series(self) -> FactorConfig:
        if self.regimes is not None and self.regimes.series == self.market:
            raise ValueError(f"regimes.series: '{self.market}' is the market; name a series that loads on it")
        return self


class DependenceConfig(Frozen):
    """How series move together.

    ``kind``: ``gaussian`` or ``t`` copula on the volatility models' shocks;
    ``dcc`` a Gaussian copula whose correlation follows a DCC(1,1);
    ``fhs`` filtered historical simulation, resampling whole days of the
    fitted standardised residuals (in blocks of ``block_length`` days on
    average); ``independent``; or a plain baseline without volatility models
    (``iid_normal``, ``iid_t``, ``bootstrap_returns``, fits only).

    ``lead_lag`` (fitting only): add cross-correlations at leads and lags up
    to this many days to the same-day ones (Dimson 1979), for series fixed at
    different times of day, such as ECB exchange rates against US closes.
    ``lead_lag_series`` limits that to the pairs involving the listed series
    (default: every pair).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: DependenceKind = "gaussian"
    correlation: list[list[float]] | None = None
    # the floor (2.05) is checked below, with a message that names it, for any nu under it
    nu: Annotated[float, Field(le=1000.0)] | None = None
    dcc: DccConfig | None = None
    residuals: str | None = None
    block_length: Annotated[float, Field(ge=1.0, le=1000.0)] = 1.0
    stress: StressConfig = StressConfig()
    lead_lag: Annotated[int, Field(ge=0, le=5)] = 0
    lead_lag_series: list[str] | None = None

    @model_validator(mode="after")
    def _valid_correlation(self) -> DependenceConfig:
        if self.correlation is not None:
            problem = correlation_problem(self.correlation)
            if problem is not None:
                raise ValueError(f"correlation: {problem}")
        if self.nu is not None and self.nu < 2.05:
            raise ValueError(
                f"nu: {self.nu:g} degrees of freedom leave the shocks almost without a variance; use at least 2.05"
            )
        problem = stress_problem(self.kind, self.stress)
        if problem is not None:
            raise ValueError(f"stress: {problem}")
        return self
