"""DCC(1,1) correlations: loop oracles, closed forms and parameter recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mcalloc.errors import ModelError
from mcalloc.models.dcc import (
    FittedDCC,
    _simulate_from_normals,
    check_dcc_parameters,
    dcc_loglikelihood,
    fit_dcc,
)
from mcalloc.models.inversion import standard_normals
from scipy import stats

CORRELATION = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.4], [0.3, 0.4, 1.0]])


def simulated_scores(a: float, b: float, correlation: np.ndarray, n_obs: int, seed: int) -> np.ndarray:
    model = FittedDCC(a, b, correlation)
    return model.sample_scores(np.random.default_rng(seed), model.initial_q(1), n_obs)[0]


def loglikelihood_loop(a: float, b: float, scores: np.ndarray, qbar: np.ndarray) -> float:
    """:func:`dcc_loglikelihood` as a plain loop over days with scipy's densities (slow)."""
    n_series = scores.shape[1]
    q = qbar.copy()
    total = 0.0
    for u in scores:
        scale = np.sqrt(np.diag(q))
        correlation = q / np.outer(scale, scale)
        joint = stats.multivariate_normal.logpdf(u, mean=np.zeros(n_series), cov=correlation)
        total += float(joint) - float(stats.norm.logpdf(u).sum())
        q = (1.0 - a - b) * qbar + a * np.outer(u, u) + b * q
    return total


def loop_oracle(
    normals: np.ndarray, q: np.ndarray, a: float, b: float, qbar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and final Q of each path, written out from the model's equations one day at a time."""
    scores = np.empty_like(normals)
    final = np.empty_like(q)
    for path in range(normals.shape[0]):
        current = q[path].copy()
        for step in range(normals.shape[1]):
            scale = np.sqrt(np.diag(current))
            correlation = current / np.outer(scale, scale)
            u = np.linalg.cholesky(correlation) @ normals[path, step]
            scores[path, step] = u
            current = (1 - a - b) * qbar + a * np.outer(u, u) + b * current
        final[path] = current
    return scores, final


@pytest.mark.parametrize(("a", "b"), [(0.0, 0.0), (0.05, 0.9), (0.2, 0.7), (0.01, 0.98), (0.3, 0.0)])
def test_loglikelihood_matches_reference_loop(a: float, b: float) -> None:
    scores = simulated_scores(0.05, 0.9, CORRELATION, 300, seed=1)
    qbar = np.corrcoef(scores, rowvar=False)
    fast = dcc_loglikelihood(a, b, scores, qbar)
    reference = loglikelihood_loop(a, b, scores, qbar)
    assert fast == pytest.approx(reference, rel=1e-8)


def test_constant_correlation_matches_gaussian_copula_closed_forms() -> None:
    # with a = b = 0, R_t = Qbar every day: the Gaussian copula log density
    scores = np.random.default_rng(2).multivariate_normal(np.zeros(3), CORRELATION, size=500)
    qbar = np.corrcoef(scores, rowvar=False)
    expected = (
        stats.multivariate_normal.logpdf(scores, mean=np.zeros(3), cov=qbar).sum() - stats.norm.logpdf(scores).sum()
    )
    assert dcc_loglikelihood(0.0, 0.0, scores, qbar) == pytest.approx(expected, rel=1e-10)
    # bivariate Gaussian copula density written out (e.g. Cherubini et al., Copula Methods in Finance, 2004):
    # log c(x, y) = -log(1 - rho^2) / 2 - (rho^2 (x^2 + y^2) - 2 rho x y) / (2 (1 - rho^2))
    x, y = scores[:, 0], scores[:, 1]
    rho = qbar[0, 1]
    closed_form = np.sum(-0.5 * math.log(1 - rho**2) - (rho**2 * (x**2 + y**2) - 2 * rho * x * y) / (2 * (1 - rho**2)))
    assert dcc_loglikelihood(0.0, 0.0, scores[:, :2], qbar[:2, :2]) == pytest.approx(closed_form, rel=1e-10)


def test_parameters_are_recovered_from_simulated_scores() -> None:
    # source: simulation from known parameters; over seeds 0-39 the z-scores of both estimates had
    # mean within 0.25 and standard deviation below 0.9, and none of the 40 fits failed these bounds
    scores = simulated_scores(0.04, 0.93, CORRELATION, 4000, seed=0)
    fitted = fit_dcc(scores)
    assert fitted.std_errors is not None
    se_a, se_b = fitted.std_errors
    assert abs(fitted.a - 0.04) < min(3 * se_a, 0.02)
    assert abs(fitted.b - 0.93) < min(3 * se_b, 0.04)
    assert 0.001 < se_a < 0.02 and 0.002 < se_b < 0.04
    assert fitted.n_obs == 4000
    np.testing.assert_allclose(fitted.qbar, np.corrcoef(scores, rowvar=False))
    # the long-run correlation is the sample's: over seeds 0-199 its spread about the true one was 0.021,
    # 0.033 and 0.031 for the three pairs (2-3 times the i.i.d. 0.012, since the correlation itself moves),
    # so 0.08 is 2.4 to 3.8 of them; seed 0 is off by at most 0.043
    np.testing.assert_allclose(fitted.correlation, CORRELATION, atol=0.08)
    assert fitted.loglikelihood == pytest.approx(dcc_loglikelihood(fitted.a, fitted.b, scores, fitted.qbar))
    # the fit is a maximum: nearby admissible parameters do worse
    for da, db in [(0.005, 0.0), (-0.005, 0.0), (0.0, 0.005), (0.0, -0.005)]:
        assert dcc_loglikelihood(fitted.a + da, fitted.b + db, scores, fitted.qbar) < fitted.loglikelihood


def test_last_q_is_the_recursion_one_day_past_the_data() -> None:
    scores = simulated_scores(0.05, 0.9, CORRELATION, 200, seed=3)
    fitted = fit_dcc(scores)
    assert fitted.last_q is not None
    q = fitted.qbar.copy()
    for u in scores:
        q = (1 - fitted.a - fitted.b) * fitted.qbar + fitted.a * np.outer(u, u) + fitted.b * q
    np.testing.assert_allclose(fitted.last_q, q, rtol=1e-12)
    np.testing.assert_allclose(fitted.initial_q(4, "last"), np.tile(q, (4, 1, 1)), rtol=1e-12)


def test_simulation_matches_loop_oracle_across_blocks() -> None:
    a, b = 0.06, 0.9
    rng = np.random.default_rng(4)
    normals = rng.standard_normal((4, 50, 3))
    q_start = np.tile(CORRELATION, (4, 1, 1))
    q_start[1] *= 2.5  # a Q that is not a correlation exercises the normalisation
    q_start[2] = np.array([[1.5, -0.3, 0.1], [-0.3, 0.8, 0.2], [0.1, 0.2, 1.1]])
    expected_scores, expected_q = loop_oracle(normals, q_start, a, b, CORRELATION)
    q = q_start.copy()
    first = _simulate_from_normals(normals[:, :30].copy(), q, a, b, CORRELATION)
    second = _simulate_from_normals(normals[:, 30:].copy(), q, a, b, CORRELATION)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected_scores, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(q, expected_q, rtol=1e-10)


def test_sample_scores_draws_all_normals_in_one_call() -> None:
    model = FittedDCC(0.05, 0.9, CORRELATION)
    q = model.initial_q(6)
    scores = model.sample_scores(np.random.default_rng(5), q, 20)
    expected_q = model.initial_q(6)
    normals = standard_normals(np.random.default_rng(5), (6, 20, 3))
    expected = _simulate_from_normals(normals, expected_q, 0.05, 0.9, model.qbar)
    np.testing.assert_array_equal(scores, expected)
    np.testing.assert_array_equal(q, expected_q)
    out = np.empty((6, 20, 3))
    assert model.sample_scores(np.random.default_rng(5), model.initial_q(6), 20, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_pooled_correlation_is_near_the_long_run_correlation() -> None:
    # E[R_t] is not exactly Qbar in DCC (Aielli 2013, "Dynamic conditional correlation: on properties and
    # estimation"); with 4000 paths the gap here measured about -0.008, hence 0.01 on top of 4 standard errors
    rho = 0.5
    model = FittedDCC(0.04, 0.93, np.array([[1.0, rho], [rho, 1.0]]))
    scores = model.sample_scores(np.random.default_rng(6), model.initial_q(2000), 300)[:, 100:]
    per_path = (scores[:, :, 0] * scores[:, :, 1]).mean(axis=1)  # unit variances, so this is a correlation
    standard_error = per_path.std() / math.sqrt(per_path.size)
    assert abs(per_path.mean() - rho) < 4 * standard_error + 0.01
    # given the past each score is N(0, 1) whatever R_t, so each series is i.i.d. N(0, 1): the mean of
    # its 2000 x 200 squares has standard error sqrt(2 / 400000)
    np.testing.assert_allclose((scores**2).mean(axis=(0, 1)), 1.0, atol=4 * math.sqrt(2 / scores[..., 0].size))


def test_correlation_moves_over_time_only_with_dynamics() -> None:
    # the same normals through DCC and through a constant correlation: the spread of 60-day
    # correlations is sampling noise alone for the latter (about (1 - rho^2) / sqrt(60) = 0.097)
    correlation = np.array([[1.0, 0.5], [0.5, 1.0]])
    normals = np.random.default_rng(7).standard_normal((1, 3000, 2))

    def window_spread(a: float, b: float) -> float:
        scores = _simulate_from_normals(normals.copy(), np.tile(correlation, (1, 1, 1)), a, b, correlation)[0]
        windows = scores.reshape(-1, 60, 2)
        return float(np.std([np.corrcoef(window, rowvar=False)[0, 1] for window in windows]))

    assert window_spread(0.04, 0.93) > 1.3 * window_spread(0.0, 0.0)


def test_check_dcc_parameters_names_the_key() -> None:
    key = "model.dependence.dcc"
    assert check_dcc_parameters(0.05, 0.9, key) is None
    assert check_dcc_parameters(0.0, 0.0, key) is None
    for a, b in [(0.07, 0.95), (0.5, 0.5), (-0.01, 0.9), (0.05, -0.1), (math.nan, 0.9)]:
        message = check_dcc_parameters(a, b, key)
        assert message is not None and message.startswith(f"{key}: ") and "\n" not in message
    assert "a + b = 1.02" in str(check_dcc_parameters(0.07, 0.95, key))
    with pytest.raises(ValueError, match="must be below 1"):
        dcc_loglikelihood(0.5, 0.5, np.zeros((10, 2)), np.eye(2))


def test_fit_needs_enough_rows() -> None:
    scores = simulated_scores(0.05, 0.9, CORRELATION, 50, seed=8)
    with pytest.raises(ModelError, match=r"at least 100 days.*got 50"):
        fit_dcc(scores)
    with pytest.raises(ModelError, match="two series"):
        fit_dcc(np.random.default_rng(8).standard_normal((500, 1)))


def test_config_round_trip_and_validation() -> None:
    fitted = fit_dcc(simulated_scores(0.05, 0.9, CORRELATION, 300, seed=9))
    config = fitted.to_config()
    assert isinstance(config["a"], float) and isinstance(config["correlation"][0][1], float)
    rebuilt = FittedDCC.from_config(**config)
    assert (rebuilt.a, rebuilt.b) == (fitted.a, fitted.b)
    np.testing.assert_array_equal(rebuilt.qbar, fitted.qbar)
    assert fitted.last_q is not None and rebuilt.last_q is not None
    np.testing.assert_array_equal(rebuilt.last_q, fitted.last_q)
    plain = FittedDCC.from_config(0.03, 0.95, CORRELATION.tolist())
    assert plain.initial_q(2).shape == (2, 3, 3)
    with pytest.raises(ModelError, match=r"model\.dependence\.dcc\.last_q: unknown"):
        plain.initial_q(2, "last")
    with pytest.raises(ModelError, match=r"^model\.dependence\.dcc: a \+ b"):
        FittedDCC.from_config(0.1, 0.95, CORRELATION)
    with pytest.raises(ModelError, match=r"model\.dependence\.dcc\.correlation: must be positive definite"):
        FittedDCC.from_config(0.05, 0.9, [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
