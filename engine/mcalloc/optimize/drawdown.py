"""Drawdown risk across paths: CDaR pooled over paths and months, and CVaR of each path's maximum drawdown.

Drawdowns are in the uncompounded form (Chekhlov, Uryasev and Zabarankin
2005), convex in the weights: with ``C_pm = sum_{j<=m} r_pj @ w`` the
cumulative sum of a path's monthly returns and ``C_p0 = 0``, the drawdown
is ``max_{j<=m} C_pj - C_pm``. Single-path optimisers define drawdowns this
way; here the paths are many. The compounded drawdowns of the returned
weights (what an investor's wealth shows) are reported beside them.

The measures are minimised by cutting planes (:mod:`mcalloc.optimize.cutting`)
from exact values and subgradients: the subgradient of a drawdown is
``c_{p,j*} - c_pm`` with ``j*`` the month of the running peak and ``c`` the
assets' cumulative returns. :class:`DrawdownProgram` is the same problem
as one linear program with a variable per path and month (the textbook
form), kept as the reference the cutting planes are tested against.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from mcalloc.optimize.common import Feasible, OptimizedWeights, Solvers, solve
from mcalloc.optimize.cutting import ConvexMeasure, tail_mass
from mcalloc.optimize.scenarios import Scenarios

__all__ = ["DrawdownProgram", "cdar_measure", "maxdd_cvar_measure"]


class _Drawdowns:
    """Uncompounded drawdowns of a mix on every path and month, with the running peak's month."""

    def __init__(self, scenarios: Scenarios) -> None:
        self.cumulative = scenarios.cumulative_returns()
        n_paths, n_months, _ = self.cumulative.shape
        self.months = np.arange(n_months)
        self.paths = np.arange(n_paths)

    def at(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drawdowns (n_paths, n_months) and the month of each one's peak (-1: the start, at 0)."""
        wealth = self.cumulative @ weights
        running = np.maximum.accumulate(wealth, axis=1)
        peak_month = np.maximum.accumulate(np.where(wealth >= running, self.months, -1), axis=1)
        start = running <= 0.0
        peak_month[start] = -1
        drawdown = np.where(start, 0.0, running) - wealth
        return drawdown, peak_month

    def slopes(self, paths: np.ndarray, months: np.ndarray, peak_month: np.ndarray) -> np.ndarray:
        """Subgradients of the drawdowns at (paths, months), (count, n_assets)."""
        peaks = peak_month[paths, months]
        at_peak = np.where(peaks[:, None] >= 0, self.cumulative[paths, np.maximum(peaks, 0)], 0.0)
        return np.asarray(at_peak - self.cumulative[paths, months])


def cdar_measure(scenarios: Scenarios, alpha: float) -> ConvexMeasure:
    """CDaR at ``alpha`` of the uncompounded month-end drawdowns, pooled over paths and months."""
    drawdowns = _Drawdowns(scenarios)
    n_months = scenarios.n_months

    def oracle(weights: np.ndarray) -> tuple[float, np.ndarray]:
        drawdown, peak_month = drawdowns.at(weights)
        flat = drawdown.ravel()
        index, mass = tail_mass(flat, alpha)
        slopes = drawdowns.slopes(index // n_months, index % n_months, peak_month)
        return float(mass @ flat[index]), mass @ slopes

    return ConvexMeasure(f"CDaR{alpha * 100:g} (uncompounded)", oracle)


def maxdd_cvar_measure(scenarios: Scenarios, alpha: float) -> ConvexMeasure:
    """CVaR at ``alpha`` of each path's maximum uncompounded month-end drawdown."""
    drawdowns = _Drawdowns(scenarios)

    def oracle(weights: np.ndarray) -> tuple[float, np.ndarray]:
        drawdown, peak_month = drawdowns.at(weights)
        worst_month = drawdown.argmax(axis=1)
        deepest = drawdown[drawdowns.paths, worst_month]
        index, mass = tail_mass(deepest, alpha)
        slopes = drawdowns.slopes(index, worst_month[index], peak_month)
        return float(mass @ deepest[index]), mass @ slopes

    return ConvexMeasure(f"CVaR{alpha * 100:g} of max drawdown (uncompounded)", oracle)


class DrawdownProgram:
    """CDaR or CVaR of max drawdown as one linear program: a running-peak variable per path and month.

    A variable ``u_pm >= C_pm``, ``u_pm >= u_p,m-1``, ``u_pm >= 0`` bounds the
    running peak from above and equals it at the optimum. Its size grows
    with paths x months, so mcalloc solves by cutting planes and keeps this
    as their reference.
    """

    def __init__(self, scenarios: Scenarios, measure: str, alpha: float, feasible: Feasible, solvers: Solvers) -> None:
        n_paths, n_months, n_assets = scenarios.n_paths, scenarios.n_months, scenarios.n_assets
        self.solvers = solvers
        self.weights = cp.Variable(n_assets, name="weights")
        cumulative = scenarios.cumulative_returns().reshape(n_paths * n_months, n_assets)
        wealth = cp.reshape(cumulative @ self.weights, (n_paths, n_months), order="C")
        peak = cp.Variable((n_paths, n_months), nonneg=True, name="peak")
        drawdown = peak - wealth
        constraints = [*feasible.constraints(self.weights), peak >= wealth]
        if n_months > 1:
            constraints.append(peak[:, 1:] >= peak[:, :-1])
        threshold = cp.Variable(name="threshold")
        if measure == "cdar":
            excess = cp.Variable((n_paths, n_months), nonneg=True, name="excess")
            risk = threshold + cp.sum(excess) / ((1.0 - alpha) * n_paths * n_months)
            constraints.append(excess >= drawdown - threshold)
        else:
            deepest = cp.Variable((n_paths, 1), name="max_drawdown")
            excess = cp.Variable((n_paths, 1), nonneg=True, name="excess")
            risk = threshold + cp.sum(excess) / ((1.0 - alpha) * n_paths)
            constraints += [deepest >= drawdown, excess >= deepest - threshold]
        self.problem = cp.Problem(cp.Minimize(risk), constraints)

    def solve(self, what: str, hint: str) -> OptimizedWeights:
        status, solver = solve(self.problem, self.solvers, True, what, hint)
        return OptimizedWeights(np.asarray(self.weights.value, dtype=float), float(self.problem.value), status, solver)
