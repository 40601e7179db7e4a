"""Tests of forecasts against what happened: VaR coverage and probability integral transforms.

The building blocks of an out-of-sample backtest (issue: ``mcalloc
backtest``): given realised returns and the model's predictive draws for
each of them,

- :func:`predictive_pit` turns each realised value into its probability
  integral transform ``u_t = F_t(x_t)`` (uniform and independent when the
  model is right; Diebold, Gunther and Tay 1998);
- :func:`ks_uniformity` and :func:`berkowitz_test` test the PITs;
- :func:`christoffersen_conditional_coverage` joins Kupiec's unconditional
  coverage and Christoffersen's independence test for VaR hits
  (Christoffersen 1998: ``LR_cc = LR_uc + LR_ind``, chi-squared with 2
  degrees of freedom).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from mcalloc.metrics.calibration import independence_statistic, kupiec_statistic, kupiec_test

__all__ = [
    "berkowitz_test",
    "christoffersen_conditional_coverage",
    "ks_uniformity",
    "likelihood_ratio",
    "predictive_pit",
]


def predictive_pit(realised: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Each realised value's rank among its predictive draws, as a probability in (0, 1).

    ``realised`` has shape (n_obs,), ``draws`` (n_obs, n_draws). Ties and the
    ends are handled by the mid-rank ``(below + equal / 2 + 1/2) / (n_draws + 1)``,
    so a PIT is never exactly 0 or 1 (the normal quantile of it stays finite).
    """
    values = np.asarray(realised, dtype=float)
    sample = np.asarray(draws, dtype=float)
    if sample.ndim != 2 or sample.shape[0] != values.shape[0]:
        raise ValueError(f"predictive_pit: draws must be (n_obs, n_draws) with n_obs = {values.shape[0]}")
    below = (sample < values[:, None]).sum(axis=1)
    equal = (sample == values[:, None]).sum(axis=1)
    return np.asarray((below + 0.5 * equal + 0.5) / (sample.shape[1] + 1))


def ks_uniformity(pits: np.ndarray) -> float:
    """Kolmogorov-Smirnov p-value of the PITs against the uniform law on (0, 1)."""
    return float(stats.kstest(np.asarray(pits, dtype=float), "uniform").pvalue)


def likelihood_ratio(null_loglik: float, alternative_loglik: float, degrees_of_freedom: int) -> float:
    """p-value of ``2 (alternative - null)`` under a chi-squared law (a tiny negative statistic counts as 0)."""
    statistic = max(2.0 * (alternative_loglik - null_loglik), 0.0)
    return float(stats.chi2.sf(statistic, degrees_of_freedom))


def berkowitz_test(pits: np.ndarray) -> float:
    """Berkowitz (2001) likelihood-ratio p-value that the PITs are i.i.d. uniform.

    ``z_t = Phi^-1(u_t)`` should be i.i.d. standard normal. Under the
    alternative ``z_t - mu = rho (z_{t-1} - mu) + sigma e_t``, fitted by
    conditional maximum likelihood (least squares on ``z_{t-1}``, given the
    first value); ``LR = 2 (L_alt - L_0)`` over the same ``n - 1`` terms is
    chi-squared with 3 degrees of freedom (mean, variance, autocorrelation).
    """
    z = special.ndtri(np.clip(np.asarray(pits, dtype=float), 1e-12, 1 - 1e-12))
    if z.size < 3:
        raise ValueError(f"berkowitz_test: need at least 3 PITs, got {z.size}")
    previous, current = z[:-1], z[1:]
    design = np.column_stack([np.ones_like(previous), previous])
    coefficients, *_ = np.linalg.lstsq(design, current, rcond=None)
    residuals = current - design @ coefficients
    variance = float(np.mean(residuals**2))
    n = current.size
    alternative = -0.5 * n * (math.log(2 * math.pi * variance) + 1.0)
    null = -0.5 * n * math.log(2 * math.pi) - 0.5 * float(np.sum(current**2))
    return likelihood_ratio(null, alternative, 3)


def christoffersen_conditional_coverage(hits: np.ndarray, coverage: float) -> dict[str, float]:
    """Kupiec's, Christoffersen's independence and the joint conditional-coverage p-values of VaR hits.

    ``hits`` (n_obs,) booleans in time order; ``coverage`` the VaR tail
    probability (0.01 for a 99% VaR). The joint statistic is the sum of the
    two likelihood ratios, chi-squared with 2 degrees of freedom, both on
    the days after the first, as Christoffersen (1998) conditions the
    transitions on it (Kupiec's own p-value uses every day).
    """
    sequence = np.asarray(hits).astype(bool)
    n, x = sequence.size, int(sequence.sum())
    p_uc = kupiec_test(x, n, coverage)
    later = sequence[1:]
    unconditional = kupiec_statistic(int(later.sum()), later.size, coverage) if later.size else 0.0
    independence = independence_statistic(sequence)
    return {
        "n_obs": float(n),
        "exceedances": float(x),
        "rate": x / n if n else math.nan,
        "kupiec_p": p_uc,
        "independence_p": float(stats.chi2.sf(independence, 1)),
        "conditional_coverage_p": float(stats.chi2.sf(unconditional + independence, 2)),
    }
