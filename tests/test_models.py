"""Volatility models and copula: oracles, closed forms and arch's documented fit."""

from __future__ import annotations

import numpy as np
import pytest
from mcalloc.config.model_schema import StartConfig
from mcalloc.config.schema import MarginalParams
from mcalloc.models import FittedMarginal, GaussianCopula, JointModel, MarginalSpec, ScoreTransform, simulate_gjr
from scipy import special, stats

UNCONDITIONAL = StartConfig(kind="unconditional")


def marginal(name: str = "a", dist: str = "t", **params: float) -> FittedMarginal:
    values = {"mu": 0.03, "omega": 0.02, "alpha": 0.02, "gamma": 0.15, "beta": 0.88, "nu": 6.5} | params
    if dist == "normal":
        values.pop("nu")
    return FittedMarginal.from_params(name, "gjr_garch", dist, "constant", MarginalParams(**values))


def test_score_transform_matches_exact_quantile() -> None:
    transform = ScoreTransform(marginal(nu=4.5))
    scores = np.concatenate([np.linspace(-9.5, 9.5, 20001), np.random.default_rng(0).standard_normal(20000)])
    # the exact transform mirrors the lower tail; there scipy's direct formula is accurate
    lower = scores[scores <= 0]
    direct = marginal(nu=4.5).innovation_ppf(special.ndtr(lower))
    np.testing.assert_allclose(transform.exact(lower), direct, rtol=1e-12)
    # linear interpolation on a 1/512 grid: relative error below 1e-4 even at
    # 8 standard deviations, far below Monte Carlo noise
    np.testing.assert_allclose(transform(scores), transform.exact(scores), rtol=1e-4, atol=1e-6)
    body = np.abs(scores) < 4
    np.testing.assert_allclose(transform(scores[body]), transform.exact(scores[body]), rtol=1e-6, atol=1e-7)
    assert np.all(np.diff(transform(np.sort(scores))) >= 0)


def test_standardised_t_innovations_have_unit_variance() -> None:
    nu = 6.0
    # variance of a Student-t with nu degrees of freedom is nu / (nu - 2)
    probabilities = np.linspace(1e-7, 1 - 1e-7, 2_000_001)
    values = marginal(nu=nu).innovation_ppf(probabilities)
    assert np.mean(values**2) == pytest.approx(1.0, rel=5e-3)
    # closed form: a Student-t scaled to unit variance, whose variance is nu / (nu - 2), so its quantiles
    # are t_nu's times sqrt((nu - 2) / nu)
    probes = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 0.999])
    expected = stats.t.ppf(probes, nu) * np.sqrt((nu - 2.0) / nu)
    np.testing.assert_allclose(marginal(nu=nu).innovation_ppf(probes), expected, rtol=1e-12, atol=1e-15)


def test_gjr_recursion_matches_explicit_loop() -> None:
    models = [marginal("a"), marginal("b", omega=0.05, alpha=0.05, gamma=0.0, beta=0.9, nu=8.0)]
    rng = np.random.default_rng(1)
    innovations = rng.standard_normal((4, 50, 2))
    start = np.array([[m.unconditional_variance for m in models]] * 4)
    result = simulate_gjr(models, innovations, start.copy())
    for path in range(4):
        for column, m in enumerate(models):
            p = m.params
            variance = m.unconditional_variance
            for step in range(50):
                shock = np.sqrt(variance) * innovations[path, step, column]
                assert result[path, step, column] == pytest.approx((p["mu"] + shock) / 100, rel=1e-12)
                variance = p["omega"] + (p["alpha"] + p["gamma"] * (shock < 0)) * shock**2 + p["beta"] * variance


def test_blocks_continue_one_path() -> None:
    model = JointModel(
        (marginal("a"), marginal("b")), GaussianCopula(np.array([[1.0, 0.5], [0.5, 1.0]])), UNCONDITIONAL
    )
    state = model.initial_state(3)
    first = model.simulate_block(np.random.default_rng(2), state, 10)
    assert not np.allclose(state.variance, model.initial_variance(3))
    assert np.all(np.isfinite(first)) and first.shape == (3, 10, 2)
    # two blocks continue one path: they equal one block of the same shocks
    second = model.simulate_block(np.random.default_rng(3), state, 7)
    whole = model._plan.simulate(
        np.concatenate(
            [
                model.copula.sample_innovations(np.random.default_rng(seed), 3, n, model._transforms)
                for seed, n in ((2, 10), (3, 7))
            ],
            axis=1,
        ),
        model.initial_state(3),
    )
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-13, atol=1e-17)


def test_copula_correlation_of_normal_innovations() -> None:
    correlation = np.array([[1.0, 0.88, 0.83], [0.88, 1.0, 0.74], [0.83, 0.74, 1.0]])
    copula = GaussianCopula(correlation)
    scores = copula.sample_scores(
        np.random.default_rng(4),
        2000,
        100,
    ).reshape(-1, 3)
    # standard error of a sample correlation ~ (1 - rho^2) / sqrt(n); n = 200,000
    np.testing.assert_allclose(np.corrcoef(scores, rowvar=False), correlation, atol=4 * (1 - 0.74**2) / np.sqrt(2e5))


def test_simulated_variance_matches_unconditional_formula() -> None:
    # E[e_t^2] = omega / (1 - alpha - gamma/2 - beta) for symmetric unit-variance shocks.
    # The standard error below needs a finite fourth moment:
    # E[(beta + (alpha + gamma 1[z<0]) z^2)^2] = beta^2 + 2 beta (alpha + gamma/2)
    #   + (alpha^2 + alpha gamma + gamma^2 / 2) E[z^4] = 0.875 < 1 here, with
    # E[z^4] = 3 (nu - 2) / (nu - 4) = 4 for a unit-variance t with nu = 10.
    m = marginal(omega=0.02, alpha=0.05, gamma=0.05, beta=0.85, nu=10.0)
    model = JointModel((m,), GaussianCopula(np.eye(1)), UNCONDITIONAL)
    returns = model.simulate(np.random.default_rng(5), 4000, 1000)[:, 200:, 0] * 100 - m.params["mu"]
    # paths are independent: the standard error comes from the spread of per-path means
    per_path = (returns**2).mean(axis=1)
    standard_error = per_path.std() / np.sqrt(per_path.size)
    assert per_path.mean() == pytest.approx(m.unconditional_variance, abs=4 * standard_error)


def test_garch_fit_reproduces_arch_documented_sp500_estimates() -> None:
    # arch documentation, "Univariate Volatility Modeling" example: GARCH(1,1),
    # normal, constant mean on 100 x S&P 500 simple returns 1999-2018 (arch.data.sp500):
    # mu 0.0564, omega 0.0175, alpha 0.1022, beta 0.8852, log-likelihood -6936.72.
    from arch.data import sp500

    prices = sp500.load()["Adj Close"]
    simple = prices.pct_change().dropna()
    # MarginalSpec scales what it is given by 100; here that is simple returns, as in arch's example
    fitted = MarginalSpec(kind="garch", dist="normal", mean="constant").fit(simple, "sp500")
    p = fitted.params
    assert p["mu"] == pytest.approx(0.0564, abs=5e-4)
    assert p["omega"] == pytest.approx(0.0175, abs=5e-4)
    assert p["alpha"] == pytest.approx(0.1022, abs=5e-4)
    assert p["beta"] == pytest.approx(0.8852, abs=5e-4)
    assert fitted.loglikelihood == pytest.approx(-6936.72, abs=0.01)
