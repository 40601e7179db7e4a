"""Portfolio optimisation with cvxpy: minimum CVaR and minimum variance.

Each problem is built once with cvxpy ``Parameter``s for what changes between
solves (the return target), so a frontier re-solves the same problem.

Scenarios for CVaR are each asset's after-fee growth over the whole horizon
along each simulated path (``ChunkResult.asset_growth``), so a portfolio's
horizon return is linear in its weights: exactly the return of holding the
weights without rebalancing. The chosen weights are then run through the
full path accounting (with rebalancing) like every other portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from engine.errors import InfeasibleError

__all__ = ["MinCvarProblem", "MinVarianceProblem", "OptimizedWeights", "WeightBounds"]

SOLVER = "CLARABEL"

# A return target the problem always meets, even with leveraged short bounds.
_NO_TARGET = -1.0e3


@dataclass(frozen=True)
class WeightBounds:
    """Per-asset weight limits; weights always sum to one."""

    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class OptimizedWeights:
    """The solution of one objective.

    ``objective_value`` is in the objective's units: CVaR as a positive
    fraction of the horizon return, variance of daily returns.
    """

    weights: np.ndarray
    objective_value: float
    status: str
    solver: str


def _weights_with_bounds(bounds: WeightBounds) -> tuple[cp.Variable, list[cp.Constraint]]:
    weights = cp.Variable(bounds.lower.size, name="weights")
    constraints = [cp.sum(weights) == 1, weights >= bounds.lower, weights <= bounds.upper]
    return weights, constraints


def _solve(problem: cp.Problem, weights: cp.Variable, what: str, hint: str) -> OptimizedWeights:
    try:
        problem.solve(solver=SOLVER)
    except cp.error.SolverError as exc:
        raise InfeasibleError(f"{what}: the solver failed ({exc}); {hint}") from None
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or weights.value is None:
        raise InfeasibleError(f"{what}: no solution ({problem.status}); {hint}")
    solution = np.asarray(weights.value, dtype=float)
    return OptimizedWeights(
        weights=solution,
        objective_value=float(problem.value),
        status=str(problem.status),
        solver=SOLVER,
    )


class MinCvarProblem:
    """Minimise CVaR of horizon losses s.t. expected horizon return >= target.

    Rockafellar & Uryasev (2000): minimise ``t + mean((L_s - t)^+) / (1 - alpha)``
    over weights and ``t``, with scenario losses ``L_s = -R_s @ w``.

    Parameters
    ----------
    scenario_returns
        ndarray of shape (n_scenarios, n_assets): horizon returns (decimal).
    """

    def __init__(self, scenario_returns: np.ndarray, alpha: float, bounds: WeightBounds) -> None:
        n_scenarios = scenario_returns.shape[0]
        self.alpha = alpha
        self.expected_returns = scenario_returns.mean(axis=0)
        self.target = cp.Parameter(name="min_expected_return", value=_NO_TARGET)
        self.weights, constraints = _weights_with_bounds(bounds)
        threshold = cp.Variable(name="value_at_risk")
        excess = cp.Variable(n_scenarios, nonneg=True, name="excess_loss")
        losses = -scenario_returns @ self.weights
        constraints += [
            excess >= losses - threshold,
            self.expected_returns @ self.weights >= self.target,
        ]
        objective = threshold + cp.sum(excess) / ((1.0 - alpha) * n_scenarios)
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, min_expected_return: float | None, what: str, hint: str) -> OptimizedWeights:
        self.target.value = _NO_TARGET if min_expected_return is None else min_expected_return
        return _solve(self.problem, self.weights, what, hint)


class MinVarianceProblem:
    """Minimise ``w' C w`` s.t. expected return ``m @ w >= target``.

    Parameters
    ----------
    covariance
        ndarray of shape (n_assets, n_assets).
    expected_returns
        ndarray of shape (n_assets,): used only by the return target, in the
        same units as the target.
    """

    def __init__(self, covariance: np.ndarray, expected_returns: np.ndarray, bounds: WeightBounds) -> None:
        self.expected_returns = expected_returns
        self.target = cp.Parameter(name="min_expected_return", value=_NO_TARGET)
        self.weights, constraints = _weights_with_bounds(bounds)
        symmetric = 0.5 * (covariance + covariance.T)
        constraints.append(expected_returns @ self.weights >= self.target)
        objective = cp.quad_form(self.weights, cp.psd_wrap(symmetric))
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, min_expected_return: float | None, what: str, hint: str) -> OptimizedWeights:
        self.target.value = _NO_TARGET if min_expected_return is None else min_expected_return
        return _solve(self.problem, self.weights, what, hint)
