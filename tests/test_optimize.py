"""The optimisers against closed forms and the independently computed metric."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InfeasibleError
from engine.metrics import cvar
from engine.optimize import MinCvarProblem, MinVarianceProblem, WeightBounds

LONG_ONLY = WeightBounds(lower=np.zeros(3), upper=np.ones(3))


def scenarios(seed: int = 5, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    covariance = np.array([[0.04, 0.036, 0.03], [0.036, 0.0625, 0.03], [0.03, 0.03, 0.05]])
    return rng.multivariate_normal([0.06, 0.07, 0.05], covariance, size=n)


def test_min_cvar_reported_value_equals_metric_recomputed_from_weights() -> None:
    returns = scenarios()
    problem = MinCvarProblem(returns, alpha=0.95, bounds=LONG_ONLY)
    target = float(returns.mean(axis=0)[0])
    result = problem.solve(target, "test", "")
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(result.weights >= -1e-8)
    assert returns.mean(axis=0) @ result.weights >= target - 1e-7
    assert result.objective_value == pytest.approx(cvar(-(returns @ result.weights), 0.95), abs=1e-6)


def test_min_cvar_beats_every_benchmark_mix_meeting_the_target() -> None:
    returns = scenarios()
    result = MinCvarProblem(returns, alpha=0.95, bounds=LONG_ONLY).solve(None, "test", "")
    for weights in np.random.default_rng(0).dirichlet(np.ones(3), size=200):
        assert result.objective_value <= cvar(-(returns @ weights), 0.95) + 1e-7


def test_min_variance_matches_closed_form() -> None:
    # Unconstrained global minimum variance: w = C^-1 1 / (1' C^-1 1); with
    # this covariance every weight is positive, so long-only bounds do not bind.
    covariance = np.array([[0.04, 0.006, 0.004], [0.006, 0.09, 0.01], [0.004, 0.01, 0.0625]])
    ones = np.ones(3)
    inverse = np.linalg.solve(covariance, ones)
    closed_form = inverse / inverse.sum()
    assert np.all(closed_form > 0)
    result = MinVarianceProblem(covariance, np.zeros(3), LONG_ONLY).solve(None, "test", "")
    np.testing.assert_allclose(result.weights, closed_form, atol=1e-6)
    assert result.objective_value == pytest.approx(1.0 / (ones @ inverse), rel=1e-6)


def test_min_variance_with_binding_bound() -> None:
    covariance = np.diag([0.01, 0.04, 0.09])
    bounds = WeightBounds(lower=np.zeros(3), upper=np.array([0.5, 1.0, 1.0]))
    result = MinVarianceProblem(covariance, np.zeros(3), bounds).solve(None, "test", "")
    # with w1 = 0.5 fixed, the rest split in inverse-variance proportions 9:4
    np.testing.assert_allclose(result.weights, [0.5, 0.5 * 9 / 13, 0.5 * 4 / 13], atol=1e-6)


def test_unreachable_target_is_a_domain_error() -> None:
    returns = scenarios(n=500)
    problem = MinCvarProblem(returns, alpha=0.95, bounds=LONG_ONLY)
    with pytest.raises(InfeasibleError, match="lower min_return"):
        problem.solve(1.0, "optimize.objectives.0", "lower min_return")
