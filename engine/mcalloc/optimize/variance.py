"""Objectives on the mean and covariance of monthly returns (annualised): the classics.

``mean`` is 12 x the mean monthly return and ``covariance`` 12 x the pooled
monthly covariance (:class:`mcalloc.optimize.scenarios.Scenarios`), so
``sqrt(w' C w)`` is exactly the volatility reported for a monthly
rebalanced mix.

* minimum variance, with an optional floor on the mean return;
* mean-variance utility ``mu' w - lambda / 2 w' C w`` (Markowitz 1952);
* maximum Sharpe ratio, homogenised: minimise ``y' C y`` s.t.
  ``(mu - r_f)' y = 1`` with the constraints scaled by ``kappa = sum(y)``,
  then ``w = y / kappa`` (Cornuejols and Tutuncu 2007, section 8.2);
* risk parity in the convex log-barrier form of Spinu (2013): minimise
  ``1/2 y' C y - sum_i b_i log y_i`` over ``y > 0``, then ``w = y / sum(y)``;
  each asset's share of volatility is then its budget ``b_i``.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from mcalloc.errors import InfeasibleError
from mcalloc.optimize.common import NO_TARGET, Feasible, OptimizedWeights, Solvers, solve

__all__ = ["MaxSharpeProblem", "MeanVarianceProblem", "MinVarianceProblem", "RiskParityProblem"]


def _psd(covariance: np.ndarray) -> cp.Expression:
    return cp.psd_wrap(0.5 * (covariance + covariance.T))


class MinVarianceProblem:
    """Minimise ``w' C w`` s.t. ``mu' w >= target``; the objective is reported as the volatility."""

    def __init__(self, mean: np.ndarray, covariance: np.ndarray, feasible: Feasible, solvers: Solvers) -> None:
        self.mean = mean
        self.solvers = solvers
        self.target = cp.Parameter(name="min_mean_return", value=NO_TARGET)
        self.weights = cp.Variable(mean.size, name="weights")
        constraints = [*feasible.constraints(self.weights), mean @ self.weights >= self.target]
        self.problem = cp.Problem(cp.Minimize(cp.quad_form(self.weights, _psd(covariance))), constraints)

    def solve(self, min_return: float | None, what: str, hint: str) -> OptimizedWeights:
        self.target.value = NO_TARGET if min_return is None else min_return
        status, solver = solve(self.problem, self.solvers, False, what, hint)
        weights = np.asarray(self.weights.value, dtype=float)
        return OptimizedWeights(weights, float(np.sqrt(max(self.problem.value, 0.0))), status, solver)


class MeanVarianceProblem:
    """Maximise ``mu' w - risk_aversion / 2 x w' C w``; the objective is that utility."""

    def __init__(
        self, mean: np.ndarray, covariance: np.ndarray, risk_aversion: float, feasible: Feasible, solvers: Solvers
    ) -> None:
        self.solvers = solvers
        self.target = cp.Parameter(name="min_mean_return", value=NO_TARGET)
        self.weights = cp.Variable(mean.size, name="weights")
        utility = mean @ self.weights - 0.5 * risk_aversion * cp.quad_form(self.weights, _psd(covariance))
        constraints = [*feasible.constraints(self.weights), mean @ self.weights >= self.target]
        self.problem = cp.Problem(cp.Maximize(utility), constraints)

    def solve(self, min_return: float | None, what: str, hint: str) -> OptimizedWeights:
        self.target.value = NO_TARGET if min_return is None else min_return
        status, solver = solve(self.problem, self.solvers, False, what, hint)
        return OptimizedWeights(np.asarray(self.weights.value, dtype=float), float(self.problem.value), status, solver)


class MaxSharpeProblem:
    """The tangency portfolio within the constraints; the objective is its Sharpe ratio."""

    def __init__(
        self, mean: np.ndarray, covariance: np.ndarray, risk_free: float, feasible: Feasible, solvers: Solvers
    ) -> None:
        self.mean, self.covariance, self.risk_free = mean, covariance, risk_free
        self.solvers = solvers
        self.target = cp.Parameter(name="min_mean_return", value=NO_TARGET)
        scaled = cp.Variable(mean.size, name="scaled_weights")
        kappa = cp.Variable(nonneg=True, name="scale")
        self.scaled, self.kappa = scaled, kappa
        constraints = [
            *feasible.constraints(scaled, kappa),
            (mean - risk_free) @ scaled == 1.0,
            mean @ scaled >= self.target * kappa,
        ]
        self.problem = cp.Problem(cp.Minimize(cp.quad_form(scaled, _psd(covariance))), constraints)

    def solve(self, min_return: float | None, what: str, hint: str) -> OptimizedWeights:
        self.target.value = NO_TARGET if min_return is None else min_return
        hint = f"no mix within the constraints returns more than the risk-free rate {self.risk_free:.4g}; {hint}"
        status, solver = solve(self.problem, self.solvers, False, what, hint)
        kappa = float(self.kappa.value)
        if kappa <= 1e-12:
            raise InfeasibleError(f"{what}: the tangency portfolio is not defined; {hint}")
        weights = np.asarray(self.scaled.value, dtype=float) / kappa
        sharpe = (self.mean @ weights - self.risk_free) / np.sqrt(weights @ self.covariance @ weights)
        return OptimizedWeights(weights, float(sharpe), status, solver)


class RiskParityProblem:
    """Weights whose volatility shares equal ``budgets``; the objective is the largest share's miss (about 0)."""

    def __init__(self, covariance: np.ndarray, budgets: np.ndarray, feasible: Feasible, solvers: Solvers) -> None:
        self.covariance, self.feasible, self.solvers = covariance, feasible, solvers
        self.active = budgets > 0
        self.budgets = budgets / budgets.sum()
        sub = covariance[np.ix_(self.active, self.active)]
        self.scaled = cp.Variable(int(self.active.sum()), pos=True, name="scaled_weights")
        barrier = 0.5 * cp.quad_form(self.scaled, _psd(sub)) - self.budgets[self.active] @ cp.log(self.scaled)
        self.problem = cp.Problem(cp.Minimize(barrier))

    def solve(self, min_return: float | None, what: str, hint: str) -> OptimizedWeights:
        status, solver = solve(self.problem, self.solvers, False, what, hint)
        weights = np.zeros(self.active.size)
        weights[self.active] = np.asarray(self.scaled.value, dtype=float)
        weights /= weights.sum()
        if not self.feasible.contains(weights, 1e-6):
            raise InfeasibleError(
                f"{what}: the risk-parity weights {np.round(weights, 4).tolist()} break "
                f"{self.feasible.describe(long_only_needed=True)}; "
                f"risk parity has no room for constraints: widen them or choose another objective"
            )
        shares = weights * (self.covariance @ weights) / (weights @ self.covariance @ weights)
        return OptimizedWeights(weights, float(np.abs(shares - self.budgets).max()), status, solver)
