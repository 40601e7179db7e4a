"""Forecast tests for the backtest: VaR coverage (Kupiec, Christoffersen) and PIT uniformity (KS, Berkowitz)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from mcalloc.metrics.forecast_tests import (
    berkowitz_test,
    christoffersen_conditional_coverage,
    ks_uniformity,
    predictive_pit,
)
from scipy import special, stats


def test_conditional_coverage_matches_a_hand_computed_case() -> None:
    """Ten days, 10% VaR, hits on days 3-5 (one cluster).

    Kupiec: LR_uc = -2[7 ln 0.9 + 3 ln 0.1] + 2[7 ln 0.7 + 3 ln 0.3] = 3.0732718.
    Transitions: n00 = 5, n01 = 1, n10 = 1, n11 = 2, so pi_0 = 1/6, pi_1 = 2/3, pi = 1/3:
    LR_ind = -2[6 ln(2/3) + 3 ln(1/3)] + 2[5 ln(5/6) + ln(1/6) + ln(1/3) + 2 ln(2/3)] = 2.2314355.
    With 1 degree of freedom the p-value is erfc(sqrt(LR / 2)); with 2 it is exp(-LR / 2).
    Christoffersen (1998) conditions on the first day, so LR_cc = LR_uc' + LR_ind with LR_uc' on the nine
    days after it (3 hits): -2[6 ln 0.9 + 3 ln 0.1] + 2[6 ln(2/3) + 3 ln(1/3)] = 3.6225817.
    Tolerance 1e-6 on the rounded hand values.
    """
    hits = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    result = christoffersen_conditional_coverage(hits, 0.10)
    assert result["exceedances"] == 3 and result["rate"] == pytest.approx(0.3)
    assert result["kupiec_p"] == pytest.approx(math.erfc(math.sqrt(3.0732718 / 2)), abs=1e-6)
    assert result["independence_p"] == pytest.approx(math.erfc(math.sqrt(2.2314355 / 2)), abs=1e-6)
    assert result["conditional_coverage_p"] == pytest.approx(math.exp(-(3.6225817 + 2.2314355) / 2), abs=1e-6)
    # one hit, on the first of 100 days: no transition from a hit is seen, LR_ind = 0, and the days after
    # it hold none: LR_cc = -2 * 99 ln 0.99 = 1.98997, p = 0.36973 (was 1.0 with LR_uc over all 100 days)
    first = christoffersen_conditional_coverage(np.arange(100) == 0, 0.01)
    assert first["conditional_coverage_p"] == pytest.approx(0.36973, abs=1e-5)
    # spread out instead of clustered: pi_0 = pi_1 = pi, so nothing speaks against independence
    spread = christoffersen_conditional_coverage(np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 0], dtype=bool), 0.10)
    assert spread["independence_p"] == pytest.approx(1.0)


def test_right_var_on_a_known_model_passes_and_half_the_volatility_fails() -> None:
    """N(0.0003, 0.01^2) days, 99% VaR from the true law: hits are Binomial(n, 0.01) and independent."""
    rng = np.random.default_rng(11)
    n = 5000
    returns = 0.0003 + 0.01 * rng.standard_normal(n)
    var_99 = 0.0003 + 0.01 * stats.norm.ppf(0.01)
    hits = returns < var_99
    result = christoffersen_conditional_coverage(hits, 0.01)
    assert result["kupiec_p"] > 0.001 and result["conditional_coverage_p"] > 0.001
    # a VaR from half the true volatility is exceeded far too often, and the tests say so
    loose = christoffersen_conditional_coverage(returns < 0.0003 + 0.005 * stats.norm.ppf(0.01), 0.01)
    assert loose["rate"] > 0.05 and loose["conditional_coverage_p"] < 1e-10


def test_pits_are_uniform_under_the_true_model_and_rejected_otherwise() -> None:
    rng = np.random.default_rng(5)
    n_obs, n_draws = 1500, 1000
    realised = rng.standard_normal(n_obs)
    right = predictive_pit(realised, rng.standard_normal((n_obs, n_draws)))
    assert right.min() > 0.0 and right.max() < 1.0
    assert ks_uniformity(right) > 0.01 and berkowitz_test(right) > 0.01
    # Berkowitz's (2001) statistic recomputed independently: the alternative's conditional likelihood from
    # statsmodels' least squares of z_t on z_(t-1), the null's from N(0, 1) on the same n - 1 days, and
    # the chi-squared law with 3 degrees of freedom (2 would give 0.0187 here, not 0.0468)
    z = special.ndtri(right)
    alternative = sm.OLS(z[1:], sm.add_constant(z[:-1])).fit().llf
    statistic = 2.0 * (alternative - stats.norm.logpdf(z[1:]).sum())
    assert berkowitz_test(right) == pytest.approx(stats.chi2.sf(statistic, 3), rel=1e-9)
    # a predictive law twice too wide piles the PITs in the middle
    wide = predictive_pit(realised, 2.0 * rng.standard_normal((n_obs, n_draws)))
    assert ks_uniformity(wide) < 1e-6 and berkowitz_test(wide) < 1e-6
    # the right margins but dependent over time: only Berkowitz's autocorrelation term sees it
    z = np.empty(n_obs)
    z[0] = rng.standard_normal()
    for t in range(1, n_obs):
        z[t] = 0.6 * z[t - 1] + math.sqrt(1 - 0.36) * rng.standard_normal()
    clustered = stats.norm.cdf(z)
    assert berkowitz_test(clustered) < 1e-6


def test_predictive_pit_counts_ties_as_half() -> None:
    draws = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    # (below + equal / 2 + 1/2) / (n + 1): 2 below the 2.5; all three equal to the 1
    np.testing.assert_allclose(predictive_pit(np.array([2.5, 1.0]), draws), [2.5 / 4, 2.0 / 4])
