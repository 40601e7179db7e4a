"""Fit diagnostics: information criteria, residual checks and the selection table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy

__all__ = ["CandidateFit", "FitDiagnostics", "ljung_box"]


def ljung_box(values: np.ndarray, lags: int) -> tuple[float, float]:
    """Ljung-Box statistic and p-value for no autocorrelation up to ``lags``.

    ``Q = n (n + 2) sum_{k=1}^{lags} rho_k^2 / (n - k)``, compared with a
    chi-squared law with ``lags`` degrees of freedom (Ljung and Box, 1978).
    Non-finite values are dropped first.

    Parameters
    ----------
    values
        ndarray of shape (n_obs,), e.g. standardised residuals or their squares.
    lags
        Number of autocorrelations tested, at least 1 and below ``n_obs``.
    """
    series = np.asarray(values, dtype=float)
    series = series[np.isfinite(series)]
    n = series.size
    if not 1 <= lags < n:
        raise ValueError(f"ljung_box: need 1 <= lags < n_obs (lags {lags}, n_obs {n})")
    centred = series - series.mean()
    denominator = float(centred @ centred)
    autocorrelations = np.array([centred[k:] @ centred[:-k] for k in range(1, lags + 1)]) / denominator
    statistic = float(n * (n + 2) * np.sum(autocorrelations**2 / (n - np.arange(1, lags + 1))))
    return statistic, float(scipy.stats.chi2.sf(statistic, lags))


@dataclass(frozen=True)
class FitDiagnostics:
    """How one series' model fitted its data.

    Attributes
    ----------
    std_errors
        Standard errors of the parameters, keyed like ``FittedMarginal.params``
        (percent units; arch's robust, Bollerslev-Wooldridge, covariance). A
        ``sample`` mean's is the standard error of the sample mean.
    loglikelihood
        Log-likelihood of the 100 x log returns at the estimates.
    n_params
        Parameters estimated, counting a ``sample`` mean as one.
    n_obs
        Returns in the likelihood.
    ljung_box_lags, ljung_box_p, ljung_box_squared_p
        Ljung-Box p-values on the standardised residuals and their squares;
        small values flag autocorrelation (in the mean, in the variance)
        that the model left over.
    sample_start, sample_end
        First and last date of the fitted returns (ISO), if dated.
    attempts
        Starting points tried before a fit was accepted (1 when the first
        converged).
    free_loglikelihood
        With ``omega`` reset after the fit (``variance_targeting: true``),
        the free fit's log-likelihood; ``loglikelihood`` is then at the
        parameters after the reset, the ones simulated. ``None`` otherwise.
    """

    std_errors: dict[str, float]
    loglikelihood: float
    n_params: int
    n_obs: int
    ljung_box_lags: int
    ljung_box_p: float
    ljung_box_squared_p: float
    sample_start: str | None = None
    sample_end: str | None = None
    attempts: int = 1
    free_loglikelihood: float | None = None

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``2 k - 2 loglik``."""
        return 2.0 * self.n_params - 2.0 * self.loglikelihood

    @property
    def bic(self) -> float:
        """Bayesian (Schwarz) information criterion, ``k ln n - 2 loglik``."""
        return self.n_params * math.log(self.n_obs) - 2.0 * self.loglikelihood


@dataclass(frozen=True)
class CandidateFit:
    """One row of ``kind: auto``'s selection table (``error`` set when the fit failed)."""

    kind: str
    dist: str
    mean: str
    loglikelihood: float = math.nan
    n_params: int = 0
    aic: float = math.nan
    bic: float = math.nan
    persistence: float = math.nan
    selected: bool = False
    error: str | None = field(default=None)

    def record(self, asset: str) -> dict[str, object]:
        """A flat row for CSV files and the manifest (``None`` where a failed fit has no number)."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "asset": asset,
            "kind": self.kind,
            "dist": self.dist,
            "mean": self.mean,
            "loglikelihood": number(self.loglikelihood),
            "n_params": self.n_params,
            "aic": number(self.aic),
            "bic": number(self.bic),
            "persistence": number(self.persistence),
            "selected": self.selected,
            "error": self.error or "",
        }
