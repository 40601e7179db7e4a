"""Dependence models: t copula, filtered historical simulation, market factor, determinism, calibration.

Every statistical check names its reference (a closed form, a published
table, or an independent sampler written here) and a tolerance of a few
standard errors; seeds are fixed. End-to-end runs compare ``metrics.csv``
byte for byte between one and two workers.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mcalloc.backtest.filtering import model_series
from mcalloc.cli.main import main
from mcalloc.cli.model_commands import calibration_text
from mcalloc.config import load_scenario
from mcalloc.config.model_schema import StartConfig
from mcalloc.config.schema import ModelConfig
from mcalloc.data.market import MarketData
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.copulas import MixingTable, TCopula, fit_t_copula, t_mixing_exact
from mcalloc.models.dependence import GaussianCopula, normal_scores
from mcalloc.models.factor import FactorStructure, fit_factor
from mcalloc.models.innovations import InnovationLaw, ShockMoments
from mcalloc.models.joint import JointModel
from mcalloc.models.joint_fit import fit_joint_model
from mcalloc.models.marginals import FittedMarginal
from mcalloc.models.validation import (
    JOINT_STATISTIC,
    CalibrationSettings,
    _window_state,
    calibration_summary,
    calibration_table,
    combined_quantiles,
    outside_counts,
    var_backtest,
    window_rows,
)
from mcalloc.pipeline import build_model, calibration_report, run_scenario
from scipy import integrate, special, stats

from .conftest import DEFAULT_CONFIG, ROOT

FIT_ETFS = ROOT / "configs" / "examples" / "fit_etfs.yaml"
UNCONDITIONAL = StartConfig(kind="unconditional")
CORRELATION = np.array([[1.0, 0.7, 0.5], [0.7, 1.0, 0.3], [0.5, 0.3, 1.0]])
UPPER = np.triu_indices(3, 1)


def gjr(name: str, **params: float) -> FittedMarginal:
    """A GJR-GARCH with normal shocks and zero mean (percent units)."""
    values = {"mu": 0.0, "omega": 0.02, "alpha": 0.02, "gamma": 0.1, "beta": 0.88} | params
    return FittedMarginal(name, "gjr_garch", "normal", "constant", values)


def multivariate_t_uniforms(rng: np.random.Generator, correlation: np.ndarray, nu: float, n_obs: int) -> np.ndarray:
    """Copula observations of a multivariate t drawn here, independently of TCopula.sample_scores."""
    normals = rng.multivariate_normal(np.zeros(correlation.shape[0]), correlation, size=n_obs)
    mixing = rng.chisquare(nu, n_obs) / nu
    return np.asarray(stats.t.cdf(normals / np.sqrt(mixing)[:, None], nu))


def kendall_tau_with_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Kendall's tau and its standard error from the U-statistic's Hoeffding decomposition.

    ``c_i`` = mean over ``j`` of ``sign(x_i - x_j) sign(y_i - y_j)``; tau is
    the mean of ``c_i`` and its variance is about ``4 var(c_i) / n``.
    """
    n = x.size
    concordance = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    per_point = concordance.sum(axis=1) / (n - 1)
    return float(per_point.mean()), float(2.0 * per_point.std() / math.sqrt(n))


# --- 1. t copula: parameter recovery and the elliptical identity ------------------------------


def test_t_copula_fit_recovers_nu_and_correlation() -> None:
    uniforms = multivariate_t_uniforms(np.random.default_rng(11), CORRELATION, 5.0, 3000)
    fitted = fit_t_copula(uniforms)
    # source: simulation from known parameters. Over seeds 0-19 the z-scores (nu - 5) / nu_std_error
    # had mean -0.18 and standard deviation 0.86, so the profile curvature gives an honest standard error.
    assert math.isfinite(fitted.nu_std_error) and 0.1 < fitted.nu_std_error < 1.0
    assert abs(fitted.nu - 5.0) < 3.0 * fitted.nu_std_error
    # sin(pi tau / 2) from 3000 draws: standard error 0.010-0.015 per entry (measured over 40 seeds);
    # 0.045 is 3 of the largest
    np.testing.assert_allclose(fitted.correlation, CORRELATION, atol=0.045)
    assert np.allclose(np.diag(fitted.correlation), 1.0)


def test_t_copula_scores_obey_the_elliptical_kendall_identity() -> None:
    # Lindskog, McNeil and Schmock (2003): every elliptical copula has tau = (2 / pi) arcsin(rho);
    # tolerance 4 standard errors of the U-statistic (its z-scores over 30 seeds: sd 0.95)
    copula = TCopula(CORRELATION, 5.0)
    scores = copula.sample_scores(np.random.default_rng(12), 2, 1000).reshape(-1, 3)
    uniforms = stats.t.cdf(scores, 5.0)
    for i, j in zip(*UPPER, strict=True):
        tau, se = kendall_tau_with_se(uniforms[:, i], uniforms[:, j])
        expected = 2.0 / math.pi * math.asin(CORRELATION[i, j])
        assert abs(tau - expected) < 4.0 * se, (i, j, tau, expected, se)
    # the scores themselves are t(5) in each margin: Kolmogorov-Smirnov against scipy's t
    assert stats.kstest(scores[:, 0], stats.t(5.0).cdf).pvalue > 0.01


def test_t_mixing_inverse_is_the_chi_square_quantile_in_closed_form() -> None:
    # chi-square with 2 degrees of freedom is the exponential law with mean 2 (Johnson, Kotz and
    # Balakrishnan 1994, Continuous Univariate Distributions 1, ch. 18), so w = -2 log(1 - u) and
    # sqrt(nu / w) = 1 / sqrt(-log(1 - u)); to 1e-12 (scipy's gammaincinv converges to about 1e-15)
    uniforms = np.concatenate([10.0 ** -np.linspace(0.5, 15.0, 40), 1.0 - 10.0 ** -np.linspace(0.5, 15.0, 40)])
    np.testing.assert_allclose(t_mixing_exact(2.0, uniforms), 1.0 / np.sqrt(-np.log1p(-uniforms)), rtol=1e-12)
    # a uniform of exactly 0 counts as 2**-54 instead of giving an infinite multiplier
    assert t_mixing_exact(2.0, np.array([0.0]))[0] == pytest.approx(1.0 / math.sqrt(2.0**-54), rel=1e-12)


@pytest.mark.parametrize("nu", [2.05, 3.0, 8.0, 30.0, 1000.0])
def test_t_mixing_table_matches_the_exact_inverse(nu: float) -> None:
    # each level's step is 2**-7 of where it starts, so linear interpolation of u**(-1/nu) errs by
    # about (1 / 8)(1 / nu)(1 + 1 / nu) 2**-14 at most: 5.6e-6 at nu 2.05 (measured 5.6e-6, 1.3e-6
    # at nu 8, 1e-7 at 500); tolerance 1e-5. Tails down to 2e-9, above the exact cut-off 2**-29 (1.9e-9),
    # so that the table is what is tested
    rng = np.random.default_rng(13)
    uniforms = np.concatenate(
        [rng.random(100_000), 10.0 ** rng.uniform(-8.7, -1.0, 20_000), 1.0 - 10.0 ** rng.uniform(-8.7, -1.0, 20_000)]
    )
    relative = np.abs(MixingTable.of(nu)(uniforms) / t_mixing_exact(nu, uniforms) - 1.0)
    assert relative.max() < 1e-5, relative.max()


def test_t_mixing_draws_are_chi_square() -> None:
    # nu / multiplier**2 from uniform draws is chi-square(nu): Kolmogorov-Smirnov against scipy's chi2,
    # and the lower 1e-4 quantile (where the table is finest) within 3 standard errors of the order statistic
    nu = 4.0
    multipliers = MixingTable.of(nu)(np.random.default_rng(14).random(1_000_000))
    chi_square = nu / multipliers**2
    assert stats.kstest(chi_square, stats.chi2(nu).cdf).pvalue > 0.01
    order = np.sort(chi_square)[99]
    p = 1e-4
    se = math.sqrt(p * (1.0 - p) / 1_000_000) / stats.chi2(nu).pdf(stats.chi2(nu).ppf(p))
    assert abs(order - stats.chi2(nu).ppf(p)) < 3.0 * se


# --- 2. tail dependence ------------------------------------------------------------------------


def test_tail_dependence_matches_closed_form_and_published_table() -> None:
    # Embrechts, McNeil and Straumann (2002), "Correlation and dependence in risk management",
    # lambda = 2 t_{nu+1}(-sqrt((nu + 1)(1 - rho) / (1 + rho))); their Table 1 gives, rounded to
    # two decimals, 0.25 for (nu 4, rho 0.5), 0.39 for (2, 0.5), 0.08 for (10, 0.5), 0.63 for (4, 0.9)
    closed_form = 2.0 * stats.t.cdf(-math.sqrt(5.0 * 0.5 / 1.5), 5)
    copula = TCopula(np.array([[1.0, 0.5], [0.5, 1.0]]), 4.0)
    assert copula.tail_dependence()[0, 1] == pytest.approx(closed_form, rel=1e-10)
    for nu, rho, published in [(4.0, 0.5, 0.25), (2.0, 0.5, 0.39), (10.0, 0.5, 0.08), (4.0, 0.9, 0.63)]:
        value = TCopula(np.array([[1.0, rho], [rho, 1.0]]), nu).tail_dependence()[0, 1]
        assert value == pytest.approx(published, abs=0.005), (nu, rho)


def lower_coexceedance(innovations: np.ndarray, q: float) -> tuple[float, float]:
    """``P(U2 < q | U1 < q)`` with ``U = Phi(innovation)`` (normal marginals), and its binomial standard error."""
    uniforms = special.ndtr(innovations.reshape(-1, 2))
    first = uniforms[:, 0] < q
    both = first & (uniforms[:, 1] < q)
    rate = both.sum() / first.sum()
    return float(rate), float(math.sqrt(rate * (1.0 - rate) / first.sum()))


def test_t_copula_joint_crashes_exceed_the_gaussian_copula() -> None:
    rho, nu, q = 0.5, 4.0, 0.01
    correlation = np.array([[1.0, rho], [rho, 1.0]])
    # normal marginals: each innovation is Phi^{-1} of its copula uniform, so Phi recovers the uniform
    marginals = (gjr("a"), gjr("b"))
    t_draws = TCopula(correlation, nu, marginals).sample_innovations(np.random.default_rng(21), 400, 1000)
    gaussian_draws = GaussianCopula(correlation, marginals).sample_innovations(np.random.default_rng(22), 400, 1000)
    t_rate, t_se = lower_coexceedance(t_draws, q)
    gaussian_rate, gaussian_se = lower_coexceedance(gaussian_draws, q)
    # exact values at q = 1% from scipy's multivariate t and normal CDFs (independent numerical
    # integration, about 0.284 and 0.129); tolerance 4 binomial standard errors (about 0.007 each)
    threshold_t = stats.t.ppf(q, nu)
    exact_t = stats.multivariate_t(loc=[0.0, 0.0], shape=correlation, df=nu).cdf(
        [threshold_t, threshold_t], random_state=0
    )
    threshold_normal = stats.norm.ppf(q)
    exact_gaussian = stats.multivariate_normal(mean=[0.0, 0.0], cov=correlation).cdf([threshold_normal] * 2)
    assert t_rate == pytest.approx(exact_t / q, abs=4 * t_se + 1e-3)
    assert gaussian_rate == pytest.approx(exact_gaussian / q, abs=4 * gaussian_se + 1e-3)
    assert t_rate - gaussian_rate > 6 * math.hypot(t_se, gaussian_se)


# --- 3. filtered historical simulation -----------------------------------------------------------


def crash_residuals(seed: int, n_rows: int = 5000) -> np.ndarray:
    """Correlated normal rows, 2% of them replaced by joint crashes (both series far down together)."""
    rng = np.random.default_rng(seed)
    rows = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 1.0]], size=n_rows)
    crash = rng.random(n_rows) < 0.02
    depth = rng.exponential(1.0, crash.sum())
    rows[crash] = -3.5 - depth[:, None] - 0.3 * rng.exponential(1.0, (crash.sum(), 2))
    return rows


def row_indices(simulated: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Which residual row each simulated row is (the first column's values are distinct)."""
    order = np.argsort(residuals[:, 0])
    found = order[np.searchsorted(residuals[order, 0], simulated[..., 0])]
    np.testing.assert_array_equal(residuals[found], simulated)  # whole rows, both series from the same day
    return found


def test_fhs_reproduces_correlation_and_joint_crashes_of_its_residuals() -> None:
    bootstrap = ResidualBootstrap.from_residuals(crash_residuals(31), block_length=1.0)
    residuals = bootstrap.residuals
    np.testing.assert_allclose(residuals.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(residuals.std(axis=0), 1.0, atol=1e-12)
    state = bootstrap.initial_state(200, "unconditional")
    simulated = bootstrap.sample_innovations(np.random.default_rng(32), 200, 1000, None, state)
    row_indices(simulated, residuals)
    draws = simulated.reshape(-1, 2)
    n_draws = draws.shape[0]

    # the population is the residual set: its correlation, with the delta-method standard error of a
    # sample correlation, var = E[(xy - rho (x^2 + y^2) / 2)^2] / n (x, y standardised); over 300
    # seeds these z-scores had sd 0.96
    rho = float(np.corrcoef(residuals, rowvar=False)[0, 1])
    x, y = residuals.T
    se_rho = math.sqrt(float(np.var(x * y - rho / 2 * (x * x + y * y))) / n_draws)
    assert abs(np.corrcoef(draws, rowvar=False)[0, 1] - rho) < 4 * se_rho

    # both below their 1% quantile on the same day: a Bernoulli rate equal to the residual set's
    cutoff = np.quantile(residuals, 0.01, axis=0)
    rate = float(np.mean((residuals[:, 0] < cutoff[0]) & (residuals[:, 1] < cutoff[1])))
    simulated_rate = float(np.mean((draws[:, 0] < cutoff[0]) & (draws[:, 1] < cutoff[1])))
    assert abs(simulated_rate - rate) < 4 * math.sqrt(rate * (1 - rate) / n_draws)
    # the crashes make it far likelier than a Gaussian copula with the same correlation would
    z = stats.norm.ppf(0.01)
    gaussian_rate = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([z, z])
    assert rate > 2 * gaussian_rate


def test_fhs_blocks_continue_history_across_blocks() -> None:
    # stationary bootstrap (Politis and Romano 1994): each day continues the block with probability
    # 1 - 1/L, else jumps to a uniformly drawn row (which is the next row with probability 1/n)
    block_length, n_paths = 20.0, 400
    bootstrap = ResidualBootstrap.from_residuals(crash_residuals(33), block_length=block_length)
    residuals = bootstrap.residuals
    n_rows = residuals.shape[0]
    state = bootstrap.initial_state(n_paths, "unconditional")
    rng = np.random.default_rng(34)
    # blocks of 250 and 1, then 249: the position in history must carry over between calls
    blocks = [bootstrap.sample_innovations(rng, n_paths, size, None, state) for size in (250, 1, 249)]
    indices = row_indices(np.concatenate(blocks, axis=1), residuals)
    continued = (np.diff(indices, axis=1) % n_rows) == 1
    expected = (1 - 1 / block_length) + 1 / (block_length * n_rows)
    se = math.sqrt(expected * (1 - expected) / continued.size)
    assert abs(continued.mean() - expected) < 4 * se
    # the two joins between calls alone (800 transitions; se about 0.008)
    joins = continued[:, [249, 250]]
    assert abs(joins.mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / joins.size)


# --- 4. market factor ------------------------------------------------------------------------------


def test_fit_factor_recovers_known_loadings_by_least_squares() -> None:
    rng = np.random.default_rng(41)
    n_obs = 3000
    market = rng.standard_normal(n_obs)
    lagged = np.concatenate([[0.0], market[:-1]])
    # x loads on today's and yesterday's market (1.2, 0.3), y on today's only (0.8); both have intercepts
    x = 0.05 + 1.2 * market + 0.3 * lagged + 0.8 * rng.standard_normal(n_obs)
    y = -0.02 + 0.8 * market + 0.5 * rng.standard_normal(n_obs)
    frame = pd.DataFrame({"m": market, "x": x, "y": y}, index=pd.bdate_range("2010-01-01", periods=n_obs))
    structure, idiosyncratic = fit_factor(frame, "m", {"x": 1})
    assert structure.market == 0 and structure.n_lags == 1
    np.testing.assert_array_equal(structure.loadings[0], [0.0, 0.0])
    assert structure.loadings[2, 1] == 0.0

    # oracle: the OLS normal equations on the same rows (the first is dropped for the lag)
    rows = slice(1, None)
    for column, regressors, truth in [("x", [market, lagged], [1.2, 0.3]), ("y", [market], [0.8])]:
        design = np.column_stack([np.ones(n_obs - 1), *(r[rows] for r in regressors)])
        target = frame[column].to_numpy()[rows]
        coefficients = np.linalg.solve(design.T @ design, design.T @ target)
        index = frame.columns.get_loc(column)
        np.testing.assert_allclose(structure.loadings[index, : len(truth)], coefficients[1:], rtol=1e-9)
        # recovery within 4 OLS standard errors, sigma^2 (X'X)^{-1} (about 0.015 here)
        residual = target - design @ coefficients
        sigma2 = residual @ residual / (design.shape[0] - design.shape[1])
        se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))[1:]
        assert np.all(np.abs(coefficients[1:] - truth) < 4 * se), (column, coefficients, se)
        # the idiosyncratic part keeps the intercept: y minus the loadings times the market
        np.testing.assert_allclose(idiosyncratic[column].to_numpy(), target - design[:, 1:] @ coefficients[1:])
    assert list(idiosyncratic.index) == list(frame.index[1:])
    np.testing.assert_array_equal(idiosyncratic["m"].to_numpy(), market[1:])


def simulate_with_market_variance(
    model: JointModel, seed: int, n_paths: int, n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (n_paths, n_steps, 2) and the market's conditional variance of each day, one day at a time."""
    rng = np.random.default_rng(seed)
    state = model.initial_state(n_paths)
    returns = np.empty((n_paths, n_steps, 2))
    variance = np.empty((n_paths, n_steps))
    for step in range(n_steps):
        variance[:, step] = state.variance[:, 0]
        returns[:, step] = model.simulate_block(rng, state, 1)[:, 0]
    return returns, variance


def high_volatility_excess(returns: np.ndarray, variance: np.ndarray, n_batches: int = 20) -> tuple[float, float]:
    """corr(pooled days whose market variance is above the pooled median) - corr(all days), and its batch SE.

    The standard error comes from the spread of the same statistic over
    ``n_batches`` disjoint groups of paths.
    """

    def excess(r: np.ndarray, v: np.ndarray, cut: float) -> float:
        high = v > cut
        return float(np.corrcoef(r[high], rowvar=False)[0, 1] - np.corrcoef(r.reshape(-1, 2), rowvar=False)[0, 1])

    cut = float(np.median(variance))
    batches = [
        excess(r, v, cut)
        for r, v in zip(np.array_split(returns, n_batches), np.array_split(variance, n_batches), strict=True)
    ]
    return excess(returns, variance, cut), float(np.std(batches, ddof=1) / math.sqrt(n_batches))


def test_factor_model_correlation_rises_with_market_volatility() -> None:
    # the property engine/mcalloc/models/factor.py claims: with r_a = b r_m + e, corr = b s_m / sqrt(b^2 s_m^2 + s_e^2)
    # rises with the market's volatility s_m. Separate models joined by a Gaussian copula do not do that.
    market = gjr("m", omega=0.02, alpha=0.0, gamma=0.2, beta=0.87)
    idiosyncratic = gjr("a", omega=0.035, alpha=0.04, gamma=0.05, beta=0.9)
    factor = FactorStructure(market=0, loadings=np.array([[0.0], [1.0]]))
    with_factor = JointModel((market, idiosyncratic), GaussianCopula(np.eye(2)), UNCONDITIONAL, factor=factor)
    covariance = with_factor.long_run_covariance()
    rho = covariance[0, 1] / math.sqrt(covariance[0, 0] * covariance[1, 1])
    # long-run variances 0.02 / 0.03 and 0.035 / 0.035: rho = sqrt(2/3 / (2/3 + 1))
    assert rho == pytest.approx(math.sqrt(0.4), rel=1e-9)
    copula = GaussianCopula(np.array([[1.0, rho], [rho, 1.0]]))
    without = JointModel((market, idiosyncratic), copula, UNCONDITIONAL)

    burn_in = 100
    results = {}
    for name, model, seed in [("factor", with_factor, 42), ("copula", without, 43)]:
        returns, variance = simulate_with_market_variance(model, seed, 500, 700)
        results[name] = high_volatility_excess(returns[:, burn_in:], variance[:, burn_in:])
    factor_excess, factor_se = results["factor"]
    copula_excess, copula_se = results["copula"]
    # measured: factor +0.08 (se 0.002), copula within +-0.005 of 0
    assert factor_excess > 0.03 and factor_excess > 6 * factor_se
    assert factor_excess - copula_excess > 6 * math.hypot(factor_se, copula_se)
    assert copula_excess < factor_excess / 2


def apply_loop(loadings: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """r_i,t = f_i,t + sum_l b_i,l m_t-l, written out day by day (the market is zero before the block)."""
    n_paths, n_steps, n_series = factors.shape
    result = factors.copy()
    for path in range(n_paths):
        for step in range(n_steps):
            for column in range(1, n_series):
                for lag in range(loadings.shape[1]):
                    if step - lag >= 0:
                        result[path, step, column] += loadings[column, lag] * factors[path, step - lag, 0]
    return result


def test_factor_apply_in_blocks_equals_one_block() -> None:
    loadings = np.array([[0.0, 0.0, 0.0], [1.1, 0.2, -0.1], [0.5, 0.0, 0.3]])
    structure = FactorStructure(market=0, loadings=loadings)
    factors = np.random.default_rng(44).standard_normal((3, 10, 3))
    whole = structure.apply(factors.copy(), structure.initial_history(3))
    np.testing.assert_allclose(whole, apply_loop(loadings, factors), rtol=1e-13, atol=1e-14)
    # blocks shorter than the number of lags too: the market's recent returns carry over
    history = structure.initial_history(3)
    pieces = [structure.apply(factors[:, a:b].copy(), history) for a, b in [(0, 1), (1, 2), (2, 5), (5, 10)]]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    np.testing.assert_array_equal(history, factors[:, [9, 8], 0])


def test_a_start_above_the_variance_ceiling_starts_at_the_ceiling() -> None:
    # the ceiling caps every simulated day's variance, so the first day's too: a vol start of 60% a year
    # puts the default's international own part (ceiling 4 x its largest fitted variance, about 55%) at 55%
    from mcalloc.config import load_scenario
    from mcalloc.pipeline import build_model

    from .conftest import DEFAULT_CONFIG

    scenario = load_scenario(DEFAULT_CONFIG, ["simulation.start={kind: vol, vol_ann: 0.6}"])
    model, _ = build_model(scenario)
    ceiling = np.array([4.0 * m.max_variance for m in model.marginals])  # type: ignore[operator]
    asked = (60.0**2 / 252) * np.ones(3)
    variance = model.initial_state(3, np.random.default_rng(0)).variance
    np.testing.assert_array_equal(variance, np.tile(np.minimum(asked, ceiling), (3, 1)))
    assert (asked > ceiling).sum() == 1 and math.sqrt(ceiling.min() * 252) == pytest.approx(54.8, abs=0.1)


def test_a_lagged_loading_starts_from_the_markets_starting_return_not_zero() -> None:
    # the krona loads on yesterday's S&P 500: on the first simulated day that is the market's starting return
    # (its last fitted day's under start: last when the parameters keep it, its mean otherwise), not zero
    from mcalloc.config import load_scenario
    from mcalloc.pipeline import build_model

    from .conftest import ROOT

    for kind in ("last", "unconditional"):
        scenario = load_scenario(ROOT / "configs/examples/sweden.yaml", [f"simulation.start.kind={kind}"])
        model, _ = build_model(scenario)
        assert model.factor is not None and model.factor.n_lags == 1
        market = model.marginals[model.factor.market]
        state = model.initial_state(4, np.random.default_rng(0))
        expected = model.start_levels()[1][model.factor.market]
        assert expected == (market.last_return or market.unconditional_mean) and expected != 0.0
        assert state.market_history is not None
        np.testing.assert_array_equal(state.market_history, np.full((4, 1), expected / market.scale))
        # where the parameters keep the market's last return (a fit does), start: last takes it
        marginals = tuple(replace(m, last_return=0.5) if m is market else m for m in model.marginals)
        kept = replace(model, marginals=marginals)
        history = kept.initial_state(2, np.random.default_rng(0)).market_history
        assert history is not None
        np.testing.assert_array_equal(history, np.full((2, 1), (0.5 if kind == "last" else expected) / market.scale))
    structure = FactorStructure(market=0, loadings=np.zeros((2, 3)))
    np.testing.assert_array_equal(structure.initial_history(2, 0.01, 0.0003), [[0.01, 0.0003], [0.01, 0.0003]])


# --- 5. determinism: one worker or two, byte for byte ------------------------------------------------

# no report.html here (it takes seconds to draw): tests/test_report.py checks it
SMALL = [
    "simulation.n_paths=400",
    "simulation.chunk_size=100",
    "simulation.horizon_years=2",
    "output.report=false",
]
GIVEN_CORRELATION = "model.dependence.correlation=[[1,0.5,0.4],[0.5,1,0.3],[0.4,0.3,1]]"
CALIBRATED_KINDS = {
    "gaussian": [GIVEN_CORRELATION],
    "t": [GIVEN_CORRELATION, "model.dependence.nu=8"],
    "dcc": [GIVEN_CORRELATION, "model.dependence.dcc={a: 0.03, b: 0.95}"],
    "fhs": [],
    "independent": ["model.factor=null"],
}
FITTED_KINDS = {
    "iid_normal": ["model.factor=null"],
    "iid_t": ["model.factor=null"],
    "bootstrap_returns": ["model.factor=null", "model.dependence.block_length=21"],
    "dcc": [],
    "t": [],
}
FIT_SHORT = ["data.start=2015-01-01", "output.calibration.n_paths=0"]


def metrics_for_one_and_two_workers(config: Path, overrides: list[str], tmp_path: Path) -> tuple[bytes, bytes, str]:
    outputs = []
    for n_jobs in (1, 2):
        scenario = load_scenario(config, [*SMALL, *overrides, f"simulation.n_jobs={n_jobs}"])
        outcome = run_scenario(scenario, out=tmp_path / f"jobs{n_jobs}")
        outputs.append((outcome.folder / "metrics.csv").read_bytes())
    kind = json.loads((tmp_path / "jobs1" / "manifest.json").read_text())["dependence"]["kind"]
    return outputs[0], outputs[1], kind


# gaussian, dcc and fhs by default; the rest under `make test-all`
@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=[pytest.mark.slow] if k in ("t", "independent") else []) for k in CALIBRATED_KINDS]
)
def test_calibrated_dependence_is_deterministic_across_workers(kind: str, tmp_path: Path) -> None:
    overrides = [f"model.dependence.kind={kind}", *CALIBRATED_KINDS[kind]]
    one, two, ran = metrics_for_one_and_two_workers(DEFAULT_CONFIG, overrides, tmp_path)
    assert ran == kind
    assert one == two and len(one) > 100


# t and dcc by default; the baselines under `make test-all`
@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=[pytest.mark.slow] if k not in ("t", "dcc") else []) for k in FITTED_KINDS]
)
def test_fitted_dependence_is_deterministic_across_workers(kind: str, tmp_path: Path, shared_data: Path) -> None:
    overrides = [f"model.dependence.kind={kind}", *FITTED_KINDS[kind], *FIT_SHORT]
    one, two, ran = metrics_for_one_and_two_workers(FIT_ETFS, overrides, tmp_path)
    assert ran == kind
    assert one == two and len(one) > 100


# --- 6. calibrate -> run round trip for fhs + factor ----------------------------------------------------


def test_calibrated_fhs_factor_runs_exactly_like_the_fit(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibrated = tmp_path / "cal.yaml"
    argv = ["calibrate", str(FIT_ETFS), "--out", str(calibrated)]
    argv += ["--set", "data.start=2014-01-01", "--set", "output.calibration.n_paths=0"]
    assert main(argv) == 0, capsys.readouterr().err
    residuals = tmp_path / "cal.residuals.csv"
    assert calibrated.is_file() and residuals.is_file()
    assert list(pd.read_csv(residuals).columns) == ["sp500", "russell2000", "intl"]
    run = [*SMALL, "simulation.n_jobs=1", "simulation.start.kind=last"]
    from_file = load_scenario(calibrated, run)
    assert from_file.model.source == "calibrated" and from_file.model.dependence.kind == "fhs"
    assert from_file.model.factor is not None and from_file.model.factor.loadings is not None
    fitting = load_scenario(FIT_ETFS, [*run, "data.start=2014-01-01", "output.calibration.n_paths=0"])
    first = run_scenario(from_file, out=tmp_path / "from_file")
    second = run_scenario(fitting, out=tmp_path / "fitted")
    assert (first.folder / "metrics.csv").read_bytes() == (second.folder / "metrics.csv").read_bytes()
    assert (first.folder / "dependence.csv").read_bytes() == (second.folder / "dependence.csv").read_bytes()


# --- 7. the calibration report ------------------------------------------------------------------------


FACTOR_FHS: dict[str, Any] = {
    "source": "fit",
    "marginals": {"kind": "gjr_garch", "dist": "normal", "mean": "sample", "variance_targeting": True},
    "dependence": {"kind": "fhs"},
    "factor": {"market": "sp500"},
}
"""The default's specification, as a fit."""


def market_data(returns: pd.DataFrame) -> MarketData:
    """Daily log returns as the data layer hands them to a fit."""
    return MarketData(returns=returns, levels=returns.cumsum().transform(np.exp), provenance=(), frequency="daily")


def simulated_market(seed: int) -> tuple[JointModel, pd.DataFrame]:
    """The default model fitted (factor, GJR quasi-ML, FHS) to one 18-year path of the default model itself."""
    overrides = ["simulation.start.kind=unconditional", "model.mean_uncertainty=null"]  # one world, its means fixed
    truth, _ = build_model(load_scenario(DEFAULT_CONFIG, overrides))
    n_days, burn_in = 6 * 252 * 3, 500
    path = truth.simulate(np.random.default_rng(seed), 1, burn_in + n_days)[0, burn_in:]
    returns = pd.DataFrame(path, index=pd.bdate_range("2001-01-02", periods=n_days), columns=truth.asset_names)
    return fit_joint_model(ModelConfig.model_validate(FACTOR_FHS), market_data(returns)), returns


@pytest.mark.parametrize("targeting", ["likelihood", True, False], ids=["tied", "reset", "free"])
def test_the_fitted_days_variances_are_those_of_the_model_that_is_simulated(targeting: bool | str) -> None:
    # variance targeting resets omega after the fit (reset) or ties it inside the likelihood (tied): the
    # stored variances (the in-sample VaR check, a calibration window's start, the last/historical_max/
    # stressed starts) must then be the targeted model's, run through the data's residuals; without
    # targeting they are arch's own, which the same recursion reproduces. Reference: the GJR recursion
    # written out here. Targeted, the long-run variance with the resampled residuals' E[z^2 1(z<0)] (the
    # simulated model's persistence) is the sample's.
    _, returns = simulated_market(4)
    config = {**FACTOR_FHS, "marginals": {**FACTOR_FHS["marginals"], "variance_targeting": targeting}}
    model = fit_joint_model(ModelConfig.model_validate(config), market_data(returns))
    series = model_series(model, returns.to_numpy()) * 100.0
    reset_config = {**FACTOR_FHS, "marginals": {**FACTOR_FHS["marginals"], "variance_targeting": True}}
    reset = fit_joint_model(ModelConfig.model_validate(reset_config), market_data(returns)).marginals
    for column, m in enumerate(model.marginals):
        p = m.params
        residuals = series[:, column] - p["mu"]
        variance = m.conditional_variance
        valid = np.flatnonzero(np.isfinite(residuals))
        expected = p["omega"] + (p["alpha"] + p["gamma"] * (residuals < 0)) * residuals**2 + p["beta"] * variance
        np.testing.assert_allclose(variance[valid[1:]], expected[valid[:-1]], rtol=1e-9, err_msg=m.name)
        assert m.last_variance == pytest.approx(expected[valid[-1]], rel=1e-9)
        assert m.max_variance == pytest.approx(variance.max(), rel=1e-12)
        if targeting:  # the long-run variance is the sample's (of the series the model describes)
            assert m.empirical_shocks is not None
            assert m.unconditional_variance == pytest.approx(np.nanvar(series[:, column]), rel=1e-9)
        if targeting == "likelihood":  # the residuals resampled are the tied fit's own, and the fit is the tie's
            z = m.std_residuals[np.isfinite(m.std_residuals)]
            np.testing.assert_allclose(m.empirical_shocks, (z - z.mean()) / z.std(), rtol=1e-12, atol=1e-12)
            assert any("tied to the sample's inside the likelihood" in w for w in m.warnings)
            assert (
                abs(p["gamma"] - reset[column].params["gamma"]) + abs(p["beta"] - reset[column].params["beta"]) > 1e-4
            )


def test_a_tie_after_selection_covers_the_days_selection_fitted() -> None:
    # kind: auto with an AR(1) candidate holds the first day back for every candidate (so their likelihoods
    # cover the same days); the tie refits the winner on those days (it had refitted on one more, so its
    # reported cost against the free fit mixed in a day's likelihood), its residuals line up with the free
    # fit's, and the long-run variance is still the target
    _, returns = simulated_market(4)
    candidates = [
        {"kind": "gjr_garch", "dist": "normal", "mean": "sample"},
        {"kind": "garch", "dist": "normal", "mean": "ar1"},
    ]
    marginals = {
        **FACTOR_FHS["marginals"],
        "kind": "auto",
        "candidates": candidates,
        "variance_targeting": "likelihood",
    }
    config = {**FACTOR_FHS, "marginals": marginals, "factor": None}
    model = fit_joint_model(ModelConfig.model_validate(config), market_data(returns))
    for column, m in enumerate(model.marginals):
        assert m.label == "gjr_garch/normal/sample", m.label
        assert m.n_obs == returns.shape[0] - 1 and np.isnan(m.std_residuals[0])
        assert any("inside the likelihood" in w for w in m.warnings)
        assert m.unconditional_variance == pytest.approx(np.var(returns.iloc[:, column].to_numpy() * 100), rel=1e-9)


def test_a_calibration_window_starts_from_the_models_own_state_of_that_day() -> None:
    # DCC's Q is the fit's recursion run from Qbar through the days before the window (written out here),
    # not the Q after the data; an AR(1) with a market factor starts from the idiosyncratic return, as
    # the simulator and the backtest's filter run it
    _, returns = simulated_market(5)
    values = returns.to_numpy()
    dcc_config = {"source": "fit", "marginals": {"kind": "gjr_garch", "dist": "normal"}, "dependence": {"kind": "dcc"}}
    model = fit_joint_model(ModelConfig.model_validate(dcc_config), market_data(returns))
    dcc = model.dependence.dcc
    scores = np.column_stack([normal_scores(m) for m in model.marginals])
    start = 2 * 252
    q = dcc.qbar.copy()
    for row in scores[:start]:
        q = (1.0 - dcc.a - dcc.b) * dcc.qbar + dcc.a * np.outer(row, row) + dcc.b * q
    state = _window_state(model, values, start, 3)
    np.testing.assert_allclose(state.dependence, np.tile(q, (3, 1, 1)), rtol=1e-10)
    assert np.abs(q - dcc.last_q).max() > 1e-3  # the day's own state, not the end of the data's
    ar1 = {**FACTOR_FHS, "marginals": {**FACTOR_FHS["marginals"], "mean": "sample_ar1", "variance_targeting": True}}
    model = fit_joint_model(ModelConfig.model_validate(ar1), market_data(returns))
    state = _window_state(model, values, start, 3)
    load = model.factor.loadings[:, 0]
    idiosyncratic = values[start - 1] - load * values[start - 1, 0] * (load != 0)
    idiosyncratic[0] = values[start - 1, 0]
    np.testing.assert_allclose(state.last_return[0], 100.0 * idiosyncratic, rtol=1e-12)
    # a window on the first day, which the AR(1) mean holds back: each series from its first fitted variance,
    # not every series from the configured start (here each series' largest fitted variance, far above it)
    model = replace(model, start=StartConfig(kind="historical_max"))
    assert all(np.isnan(m.conditional_variance[0]) for m in model.marginals)
    state = _window_state(model, values, 0, 3)
    np.testing.assert_array_equal(state.variance[2], [m.conditional_variance[1] for m in model.marginals])
    assert (model.initial_state(3).variance[0] > 1.5 * state.variance[0]).any()


def test_calibration_report_does_not_reject_a_correctly_specified_model() -> None:
    # parameter-free: data simulated from the default model and refitted with the same specification.
    # Each window statistic is then outside the 5..95 band with probability about 0.1; the rows of a
    # window are correlated, so counts scatter widely (0 to 18 of 72 over 13 seeds, mean 7.3). Two
    # data sets pooled: at most 20% outside, and the joint test (the data's count among simulated windows'
    # counts) does not reject at 1%. Each VaR row passes Kupiec's test at 1%.
    outside, total = 0, 0
    for seed in (1, 2):
        model, returns = simulated_market(seed)
        table = calibration_table(model, returns, CalibrationSettings(n_paths=200, window_years=6, seed=seed))
        windows = window_rows(table)
        assert len(windows) == 72  # 3 six-year windows x 24 statistics
        joint = table[table["statistic"] == JOINT_STATISTIC].set_index("window")
        assert len(joint) == 4 and joint.loc["all windows", "data"] == (~windows["inside_90"].astype(bool)).sum()
        assert joint.loc["all windows", "p_value"] >= 0.01, joint
        assert np.isfinite(windows[["data", "sim_p05", "sim_p50", "sim_p95", "percentile"]].to_numpy()).all()
        outside += int((~windows["inside_90"].astype(bool)).sum())
        total += len(windows)
        var_rows = table[table["statistic"] == "var99_exceedance_rate"]
        assert len(var_rows) == 3
        assert (var_rows["p_value"] >= 0.01).all(), var_rows
    assert outside <= 0.2 * total, outside


def test_the_joint_test_leaves_out_statistics_the_data_window_has_no_value_for() -> None:
    # one series flat for the whole first window (a fund not yet trading, say): its correlations there
    # cannot be formed (NaN), so they are neither counted as outside nor part of the simulated counts
    model, returns = simulated_market(3)
    flat = returns.copy()
    window = 6 * 252
    flat.iloc[:window, 2] = 0.0
    table = calibration_table(model, flat, CalibrationSettings(n_paths=200, window_years=6, seed=3))
    joint = table[table["statistic"] == JOINT_STATISTIC].set_index("window")
    windows = window_rows(table)
    first = windows[windows["window"] == joint.index[0]]
    missing = first["data"].isna()
    assert missing.sum() == 8  # the flat series' two pairs: daily, monthly, volatile- and calm-quarter correlations
    outside = int((~first["inside_90"].astype(bool) & ~missing).sum())
    assert joint.iloc[0]["data"] == outside
    # the simulated counts range over the 16 statistics with a value only
    assert joint.iloc[0]["sim_p95"] <= 16
    later = windows[windows["window"] != joint.index[0]]
    assert joint.loc["all windows", "data"] == outside + int((~later["inside_90"].astype(bool)).sum())
    # the summary and the printed count agree with the joint test: a missing statistic is not "outside"
    assert calibration_summary(table)["outside"] == joint.loc["all windows", "data"]
    printed = calibration_text(table)
    assert f"{int(joint.loc['all windows', 'data'])} of 72 window statistics outside" in printed


def test_calibration_report_prefers_the_default_over_the_gaussian_copula(shared_data: Path) -> None:
    # docs/models.md, "Choosing the default model" (1,000 paths): the earlier Gaussian-copula GJR-t model has
    # 29 of 72 window statistics outside 5..95 and fails Kupiec for SPY (p 0.002); the default has 8 and
    # passes for every ETF. With 400 paths the counts move by a few; the order and the VaR verdicts must hold.
    copula = ["model.factor=null", "model.marginals.variance_targeting=false"]
    models = {
        "before": [*copula, "model.marginals.dist=t", "model.dependence.kind=gaussian"],
        "after": [],
    }
    summaries = {}
    for label, overrides in models.items():
        scenario = load_scenario(FIT_ETFS, [*overrides, "output.calibration.n_paths=400"])
        model, data = build_model(scenario)
        assert data is not None
        table = calibration_report(scenario, model, data)
        windows = window_rows(table)
        assert len(windows) == 72 and np.isfinite(windows["percentile"]).all()
        var_rows = table[table["statistic"].str.startswith("var")]
        assert ((var_rows["p_value"] >= 0) & (var_rows["p_value"] <= 1)).all()
        summaries[label] = calibration_summary(table)
    before, after = summaries["before"], summaries["after"]
    assert before["outside"] > after["outside"] + 5, (before["outside"], after["outside"])
    # the joint test (1,000 paths: p 0.001 before, 0.39 after) rejects the earlier model, not the default
    assert before["joint_p"] < 0.02 and after["joint_p"] > 0.05, (before["joint_p"], after["joint_p"])
    kupiec = [f"kupiec_p:{name}" for name in ("sp500", "russell2000", "intl")]
    assert min(before[key] for key in kupiec) < 0.05
    # in sample the default's S&P 500 is exceeded on 1.30% of days (p = 0.049): the targeted omega lowers its
    # fitted variances (docs/models.md); every ETF passes at 1%, and mcalloc backtest judges out of sample
    assert min(after[key] for key in kupiec) >= 0.01


def test_combined_quantiles_match_each_days_own_quantile() -> None:
    # the quantile is positively homogeneous, so one grid of angles serves every day; against each day's
    # np.quantile of the same draws, over angles wider than a fitted factor's (-0.6 to 1.3 rad): measured
    # 8.7e-4 relative, tolerance 2e-3 (the draws' own noise at 500,000 is about 5e-3)
    rng = np.random.default_rng(5)
    draws = rng.standard_t(5, (500_000, 2)) @ np.linalg.cholesky(np.array([[1.0, 0.6], [0.6, 1.0]])).T
    a, c = rng.uniform(-0.3, 1.5, 40), rng.uniform(0.4, 1.6, 40)
    direct = np.array([np.quantile(x * draws[:, 0] + y * draws[:, 1], 0.01) for x, y in zip(a, c, strict=True)])
    np.testing.assert_allclose(combined_quantiles(draws[:, 0], draws[:, 1], a, c, 0.01), direct, rtol=2e-3)
    # one angle for every day: exact
    same = combined_quantiles(draws[:, 0], draws[:, 1], 2.0 * c, c, 0.01)
    np.testing.assert_allclose(same, [np.quantile(y * (2.0 * draws[:, 0] + draws[:, 1]), 0.01) for y in c])
    # a day without a volatility (an AR(1) mean's first day) is NaN and leaves the others as they were
    a_missing = a.copy()
    a_missing[0] = np.nan
    with_missing = combined_quantiles(draws[:, 0], draws[:, 1], a_missing, c, 0.01)
    assert np.isnan(with_missing[0]) and np.isfinite(with_missing[1:]).all()
    np.testing.assert_allclose(with_missing[1:], direct[1:], rtol=2e-3)


def test_factor_copula_var_backtest_hardly_depends_on_the_seed(shared_data: Path) -> None:
    # the factor + t copula model's VaR comes from drawn joint shocks, the same draws for every day. With
    # 20,000 draws the exceedance counts over seeds 1..5 spanned 7, 8 and 6 (SPY, IWM, EFA; Kupiec's p
    # for IWM from 0.03 to 0.44); with 500,000 they span 0, 3 and 0 on the free fit's variances, and 0, 4
    # and 5 on the targeted model's own (stop 30: more days sit near the quantile). Over seeds 1..40 they
    # span 0, 5 and 7, with numpy's normals as with the normals by inversion (0, 3 and 7 over 1..5):
    # international's days cluster at its quantile, so its count jumps by 7 (76 to 83). Tolerance: 7
    scenario = load_scenario(FIT_ETFS, ["model.marginals.dist=skewt", "model.dependence.kind=t"])
    model, data = build_model(scenario)
    assert data is not None and model.factor is not None and model.fit_index is not None
    counts = [
        var_backtest(model, data.returns, 0.01, np.random.default_rng(seed))["data"].to_numpy() * len(model.fit_index)
        for seed in range(1, 6)
    ]
    assert np.ptp(counts, axis=0).max() <= 7.0 + 1e-9, counts


# --- 8. moments of the shocks and the fourth-moment condition ----------------------------------------


def test_fourth_moment_factor_closed_form_for_gjr_t() -> None:
    # He and Terasvirta (1999), Ling and McAleer (2002): E[(beta + (alpha + gamma 1{z<0}) z^2)^2] < 1 is the
    # fourth-moment condition of a GJR-GARCH(1,1). With alpha = 0 and a symmetric law it is
    # beta^2 + beta gamma + gamma^2 E[z^4 1{z<0}], E[z^4] = 3 (nu - 2) / (nu - 4) for the unit-variance t.
    nu, gamma, beta = 6.69, 0.2254, 0.873
    scale = math.sqrt((nu - 2) / nu)
    # E[z^4 1{z<0}] by quadrature against scipy's t density, independently of the closed form
    negative_fourth = integrate.quad(lambda z: z**4 * stats.t.pdf(z / scale, nu) / scale, -np.inf, 0.0)[0]
    assert negative_fourth == pytest.approx(1.5 * (nu - 2) / (nu - 4), rel=1e-7)
    expected = beta**2 + beta * gamma + gamma**2 * negative_fourth
    assert expected == pytest.approx(1.092, abs=5e-4)
    model = FittedMarginal(
        "m",
        "gjr_garch",
        "t",
        "constant",
        {"mu": 0.0, "omega": 0.02, "alpha": 0.0} | {"gamma": gamma, "beta": beta, "nu": nu},
    )
    assert model.fourth_moment_factor == pytest.approx(expected, rel=1e-10)
    moments = InnovationLaw("t", nu).shock_moments()
    assert moments.fourth == pytest.approx(3 * (nu - 2) / (nu - 4), rel=1e-12)
    assert moments.negative_second == 0.5


def test_fourth_moment_factor_of_garch_normal_is_below_one() -> None:
    # GARCH(1,1)-normal: beta^2 + 2 alpha beta + 3 alpha^2 (Bollerslev 1986) = 0.81 + 0.09 + 0.0075
    model = FittedMarginal("g", "garch", "normal", "constant", {"mu": 0.0, "omega": 0.05, "alpha": 0.05, "beta": 0.9})
    assert model.fourth_moment_factor == pytest.approx(0.9075, rel=1e-12)
    assert model.fourth_moment_factor < 1.0


def test_sample_shock_moments_approach_the_normal_values() -> None:
    # E[z^2 1{z<0}] = 1/2, E[z^4] = 3, E[z^4 1{z<0}] = 3/2 for N(0, 1); standard errors from the
    # variances 1.25, 96 and 50.25 (E[z^8] = 105) over 10^6 draws: 0.0011, 0.0098, 0.0071; tolerance 4 of them
    draws = np.random.default_rng(81).standard_normal(1_000_000)
    moments = ShockMoments.of_sample(draws)
    assert moments.negative_second == pytest.approx(0.5, abs=4 * 0.0011)
    assert moments.fourth == pytest.approx(3.0, abs=4 * 0.0098)
    assert moments.negative_fourth == pytest.approx(1.5, abs=4 * 0.0071)
    assert InnovationLaw("normal").shock_moments() == ShockMoments(0.5, 3.0, 1.5)


# --- 9. dependence settings of a fit must reach the fitted model ----------------------------------------
# The schema accepts (and documents) these settings for these kinds: each must change the fitted model.

NAMES = ["sp500", "russell2000", "intl"]


@functools.cache
def lagged_market_data() -> MarketData:
    """2,500 days of three GJR series (shock correlation 0.5), intl also loading 0.5 on sp500's previous day."""
    marginals = tuple(gjr(name) for name in NAMES)
    copula = GaussianCopula(np.array([[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]]))
    path = JointModel(marginals, copula, UNCONDITIONAL).simulate(np.random.default_rng(91), 1, 2500)[0]
    path[1:, 2] += 0.5 * path[:-1, 0]
    returns = pd.DataFrame(path, index=pd.bdate_range("2005-01-03", periods=2500), columns=NAMES)
    return MarketData(returns=returns, levels=returns.cumsum().transform(np.exp), provenance=(), frequency="daily")


def fitted_model(kind: str, **dependence: Any) -> JointModel:
    config = ModelConfig.model_validate(
        {
            "source": "fit",
            "marginals": {"kind": "gjr_garch", "dist": "normal", "mean": "sample"},
            "dependence": {"kind": kind, **dependence},
        }
    )
    return fit_joint_model(config, lagged_market_data())


def fitted_correlation(kind: str, **dependence: Any) -> np.ndarray:
    model = fitted_model(kind, **dependence)
    source = model.baseline if model.baseline is not None else model.dependence
    return np.asarray(source.correlation)


@functools.cache
def fitted_residuals() -> tuple[np.ndarray, np.ndarray]:
    """The plain fit's standardised residuals (n_days, 3), the normal scores of normal-law marginals, and
    each day's fitted variance over its long-run level, averaged over the series (n_days,)."""
    marginals = fitted_model("gaussian").marginals
    residuals = np.column_stack([m.std_residuals for m in marginals])
    levels = np.column_stack([m.conditional_variance / m.unconditional_variance for m in marginals]).mean(axis=1)
    assert np.isfinite(residuals).all() and np.isfinite(levels).all()
    return residuals, levels


@pytest.mark.parametrize(
    "kind",
    [
        "gaussian",
        "t",
        "dcc",
    ],
)
def test_lead_lag_adds_the_previous_day_link_to_a_fitted_copula(kind: str) -> None:
    # docs/config.md: "Without a factor, lead_lag adds the cross-correlations at leads and lags (Dimson 1979)
    # to the copula correlation". intl's link to sp500's previous day (0.5) must raise their correlation.
    # Dimson's sum, computed here from the residuals: corr(x_i(t), x_j(t)) + corr(x_i(t), x_j(t - 1))
    # + corr(x_i(t - 1), x_j(t)); it is a valid correlation matrix here, so no projection changes it
    residuals, _ = fitted_residuals()
    same_day = np.corrcoef(residuals, rowvar=False)
    lagged = np.corrcoef(residuals[1:], residuals[:-1], rowvar=False)[:3, 3:]
    expected = same_day + lagged + lagged.T
    np.fill_diagonal(expected, 1.0)
    assert np.linalg.eigvalsh(expected).min() > 0.05
    # intl's 0.5 loading on sp500's previous day: from about 0.43 to about 0.87
    assert expected[0, 2] > same_day[0, 2] + 0.3
    np.testing.assert_allclose(fitted_correlation(kind, lead_lag=1), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kind",
    [
        "gaussian",
        "t",
        "dcc",
    ],
)
def test_worst_days_stress_is_the_correlation_of_the_most_volatile_days(kind: str) -> None:
    # model_schema.StressConfig: worst_days "replaces the correlation by the one measured on the worst share
    # of days" for gaussian, t and dcc; the days are the 5% with the highest fitted variance relative to its
    # long-run level (averaged over the series), chosen here from the fit's own variances
    residuals, levels = fitted_residuals()
    rows = levels >= np.quantile(levels, 0.95)
    assert rows.sum() == 125
    expected = np.corrcoef(residuals[rows], rowvar=False)
    worst = fitted_correlation(kind, stress={"worst_days": 0.05})
    np.testing.assert_allclose(worst, expected, rtol=0, atol=1e-12)
    # the check above has power only if the unstressed correlation differs from the worst days' one; in the
    # pair that differs most on these simulated days it does by 0.018 (t) to 0.028 (gaussian, dcc), noise of
    # 125 days around a constant 0.5, far beyond that check's 1e-12. Tolerance: 0.005
    assert np.abs(worst - fitted_correlation(kind))[UPPER].max() > 0.005


@pytest.mark.parametrize(
    "kind",
    [
        "iid_normal",
        "iid_t",
    ],
)
def test_correlation_blend_reaches_the_iid_baselines(kind: str) -> None:
    # the schema's error for fhs says correlation stress "applies to gaussian, t, dcc, iid_normal and iid_t":
    # (1 - blend) R + blend 11' of the unstressed baseline's correlation R
    plain = fitted_correlation(kind)
    stressed = fitted_correlation(kind, stress={"correlation_blend": 0.5})
    expected = 0.5 * plain + 0.5
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(stressed, expected, atol=1e-12)


def test_worst_days_correlation_is_not_biased_under_constant_dependence() -> None:
    # sp500 and russell2000 have Gaussian shock correlation 0.5 on every day, calm or not, so a crisis
    # correlation measured on them must stay near 0.5. Boyer, Gibson and Loretan (1999) and Forbes and
    # Rigobon (2002): correlations conditioned on extreme days are biased even when dependence is constant
    # (selected by large |returns|, upwards), which choosing days by their predetermined variance avoids.
    # Standard error of a correlation from 125 days: about (1 - 0.5^2) / sqrt(125) = 0.07; bound 3 SE on
    # either side (it is 0.48 here).
    worst = fitted_correlation("gaussian", stress={"worst_days": 0.05})
    assert abs(worst[0, 1] - 0.5) < 3 * 0.07, worst[0, 1]


def test_joint_count_of_statistics_outside_their_bands_against_closed_forms() -> None:
    # Independent statistics: each path's count is Binomial(K, 0.1) (each band holds 90% of its own values);
    # identical statistics: the count is 0 or K, K with probability 0.1. Tolerances: 5 standard errors.
    rng = np.random.default_rng(4)
    n_paths, k = 20_000, 24
    independent = outside_counts([rng.standard_normal(n_paths) for _ in range(k)], n_paths)
    expected = stats.binom.pmf(np.arange(k + 1), k, 0.1)
    observed = np.bincount(independent, minlength=k + 1) / n_paths
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n_paths) + 1e-4
    assert (np.abs(observed - expected) <= tolerance).all(), (observed, expected)
    same = rng.standard_normal(n_paths)
    identical = outside_counts([same] * k, n_paths)
    assert set(np.unique(identical)) == {0, k} and abs(np.mean(identical == k) - 0.1) < 1e-3
    # a missing value is never counted
    with_gap = same.copy()
    with_gap[:100] = np.nan
    assert outside_counts([with_gap], with_gap.size)[:100].sum() == 0


def test_each_window_is_placed_among_the_others_as_the_data_is() -> None:
    # the band a simulated window is judged by leaves it out: brute force (numpy's percentile of the rest),
    # ties and missing values included; with the window kept in, 200 windows fell outside 10.0% of the time
    # where a new draw (the data) falls outside about 10.9%
    rng = np.random.default_rng(11)
    values = np.round(rng.standard_normal(60), 1)  # ties
    values[[3, 17]] = np.nan
    brute = np.zeros(values.size, dtype=np.int64)
    for j in np.flatnonzero(~np.isnan(values)):
        rest = np.delete(values, j)
        low, high = np.percentile(rest[~np.isnan(rest)], [5.0, 95.0])
        brute[j] = values[j] < low or values[j] > high
    assert (outside_counts([values], values.size) == brute).all() and brute.sum() > 0
    # so a window falls outside as often as a new draw does among 199 others: below the interpolated 5th
    # percentile (order statistic 10.9 of 199) with chance 10.9 / 200, above the 95th likewise, 0.109 in all
    # (the window kept in its own band gave exactly 0.100); 400 x 200 windows, 5 standard errors (0.0011 each)
    n_paths = 200
    shares = [outside_counts([rng.standard_normal(n_paths)], n_paths).mean() for _ in range(400)]
    assert 0.103 < np.mean(shares) < 0.115, np.mean(shares)


def test_joint_p_value_is_the_upper_tail_of_the_null() -> None:
    from mcalloc.models.validation import _joint_row

    null = stats.binom.pmf(np.arange(25), 24, 0.1)
    row = _joint_row("w", 6, null)
    assert row["p_value"] == pytest.approx(stats.binom.sf(5, 24, 0.1), rel=1e-9)
    assert (row["sim_p05"], row["sim_p50"], row["sim_p95"]) == tuple(
        float(q) for q in stats.binom.ppf([0.05, 0.5, 0.95], 24, 0.1)
    )
    assert _joint_row("w", 0, null)["p_value"] == pytest.approx(1.0)


def test_a_persistence_tipped_over_one_by_the_residuals_skew_names_a_remedy_that_applies() -> None:
    # quasi-ML (normal) fits are what FHS assumes: a model already fitted so is not told to fit so
    from mcalloc.errors import ModelError
    from mcalloc.models.assembly import check_stationary

    shocks = np.concatenate([-np.full(40, 2.0), np.full(160, 0.5)])
    shocks = (shocks - shocks.mean()) / shocks.std()  # E[z^2 1(z<0)] = 0.8: most of the variance below zero
    params = {"mu": 0.0, "omega": 0.01, "alpha": 0.0, "gamma": 0.2, "beta": 0.86}
    for dist, remedy in (("normal", "try a longer data window"), ("t", "fit with dist: normal")):
        marginal = FittedMarginal("sp500", "gjr_garch", dist, "constant", params, empirical_shocks=shocks)
        assert marginal.persistence >= 1.0
        # a fit (with its max_persistence) is named as fitted: a fitting scenario has no params to change
        with pytest.raises(ModelError, match=rf"^model.marginals \(the fitted sp500\): .*{remedy}"):
            check_stationary([marginal], limit=0.9999)
        # parameters given in a calibrated file: the key and the numbers to change, not the data window
        with pytest.raises(ModelError, match=r"^model.marginals.params.sp500: .*lower alpha, gamma or beta there"):
            check_stationary([marginal])


def test_fitted_residuals_too_large_to_standardise_are_refused_not_zeroed() -> None:
    # a 1e300 overflows the column's standard deviation: standardised, the column would be all zeros and
    # its series would get no shocks at all, in a run that looks complete
    from mcalloc.errors import ModelError

    residuals = np.random.default_rng(1).standard_normal((400, 3))
    # 1e150 does not overflow but inflates the standard deviation so that it never stands out by it
    # (Samuelson: |z| <= sqrt(n - 1)); against the median absolute deviation it does
    for value, message in (
        (1e300, "column 2 .1e\\+300. is more than 100 robust standard deviations"),
        (1e150, "column 2 .1e\\+150. is more than 100 robust"),
        (np.inf, "infinite"),
        (None, "column 3 of the residuals is constant .0.5.; check the residual file"),
    ):
        broken = residuals.copy()
        if value is None:
            broken[:, 2] = 0.5
        else:
            broken[99, 1] = value
        with pytest.raises(ModelError, match=message):
            ResidualBootstrap.from_residuals(broken, 1.0)
    ResidualBootstrap.from_residuals(np.where(np.arange(400)[:, None] < 5, np.nan, residuals), 1.0)  # held back: fine
    # with the series' names, the column is named, not counted
    broken = residuals.copy()
    broken[:, 2] = 0.5
    with pytest.raises(ModelError, match="column intl of the residuals is constant"):
        ResidualBootstrap.from_residuals(broken, 1.0, names=["sp500", "russell2000", "intl"])
