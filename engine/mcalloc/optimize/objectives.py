"""Each configured objective: how it is solved on scenarios, and its measure recomputed from weights alone.

:func:`solve_objective` dispatches to the problem of the objective's kind
(:mod:`mcalloc.optimize.variance`, :mod:`mcalloc.optimize.cvar`,
:mod:`mcalloc.optimize.drawdown`); :func:`objective_measure` computes the
same quantity from the returned weights through :class:`Scenarios` only,
so the reported objective can be checked against it (they agree to solver
tolerance; the tests hold them to it).
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, replace

import cvxpy as cp
import numpy as np

from mcalloc.config.optimize_schema import (
    MaxGrowthObjective,
    MaxSharpeObjective,
    MeanVarianceObjective,
    MinCdarObjective,
    MinCvarMaxDrawdownObjective,
    MinCvarObjective,
    MinVarianceObjective,
    Objective,
    RiskParityObjective,
)
from mcalloc.errors import InfeasibleError
from mcalloc.optimize.common import Feasible, OptimizedWeights, SolverFailedError, Solvers, solve
from mcalloc.optimize.cutting import ConvexMeasure, CuttingPlane
from mcalloc.optimize.cvar import growth_measure, horizon_cvar_measure
from mcalloc.optimize.drawdown import cdar_measure, maxdd_cvar_measure
from mcalloc.optimize.scenarios import Scenarios
from mcalloc.optimize.variance import MaxSharpeProblem, MeanVarianceProblem, MinVarianceProblem, RiskParityProblem

__all__ = [
    "PATH_OBJECTIVES",
    "Context",
    "best_mean_return",
    "maximised",
    "objective_measure",
    "solve_objective",
]

CONIC_OBJECTIVES = ("min_variance", "mean_variance", "max_sharpe", "risk_parity")
"""Objectives solved as one conic program (``optimize.solver``); the rest are linear cutting planes (``lp_solver``)."""

PATH_OBJECTIVES = ("min_cdar", "min_cvar_maxdd")
"""Objectives whose cost grows with paths x months: solved on at most ``optimize.max_path_scenarios`` paths."""


@dataclass(frozen=True)
class Context:
    """What every objective needs besides its scenarios: constraints, solvers, the risk-free rate, asset names."""

    feasible: Feasible
    solvers: Solvers
    risk_free: float
    asset_names: tuple[str, ...]
    max_assets: int | None = None


def maximised(objective: Objective) -> bool:
    """True for objectives whose value is better when higher (utility, Sharpe ratio, growth)."""
    return objective.kind in ("mean_variance", "max_sharpe", "max_growth")


def objective_measure(
    objective: Objective,
    scenarios: Scenarios,
    weights: np.ndarray,
    risk_free: float,
    asset_names: tuple[str, ...] | None = None,
) -> float:
    """The objective's quantity for ``weights``, computed from the scenarios alone."""
    if isinstance(objective, MinVarianceObjective):
        return scenarios.volatility(weights)
    if isinstance(objective, MeanVarianceObjective):
        return scenarios.mean_return(weights) - 0.5 * objective.risk_aversion * scenarios.volatility(weights) ** 2
    if isinstance(objective, MaxSharpeObjective):
        rate = risk_free if objective.risk_free is None else objective.risk_free
        return (scenarios.mean_return(weights) - rate) / scenarios.volatility(weights)
    if isinstance(objective, RiskParityObjective):
        covariance = scenarios.annual_covariance()
        shares = weights * (covariance @ weights) / (weights @ covariance @ weights)
        return float(np.abs(shares - _budgets(objective, scenarios.n_assets, asset_names)).max())
    if isinstance(objective, MinCvarObjective):
        return scenarios.horizon_cvar(weights, objective.alpha, objective.form == "compounded")
    if isinstance(objective, MinCdarObjective):
        return scenarios.cdar(weights, objective.alpha, compounded=False)
    if isinstance(objective, MinCvarMaxDrawdownObjective):
        return scenarios.maxdd_cvar(weights, objective.alpha, compounded=False)
    assert isinstance(objective, MaxGrowthObjective)
    return scenarios.expected_growth(weights)


def _budgets(objective: RiskParityObjective, n_assets: int, names: tuple[str, ...] | None) -> np.ndarray:
    if objective.budgets is None:
        return np.full(n_assets, 1.0 / n_assets)
    assert names is not None, "budgets by asset need the asset names"
    budgets = np.array([objective.budgets.get(name, 0.0) for name in names])
    return np.asarray(budgets / budgets.sum())


def best_mean_return(
    scenarios: Scenarios, feasible: Feasible, solvers: Solvers, means: np.ndarray | None = None
) -> float:
    """The highest annualised mean return within the linear constraints (a small LP); ``means`` for the assets'."""
    weights = cp.Variable(feasible.n_assets)
    mean = scenarios.annual_mean() if means is None else means
    problem = cp.Problem(cp.Maximize(mean @ weights), feasible.constraints(weights))
    solve(problem, solvers, True, "optimize.constraints", f"check {feasible.describe()}")
    return float(problem.value)


def _measure_for(objective: Objective, scenarios: Scenarios) -> ConvexMeasure:
    if isinstance(objective, MinCvarObjective):
        return horizon_cvar_measure(scenarios, objective.alpha, objective.form == "compounded")
    if isinstance(objective, MinCdarObjective):
        return cdar_measure(scenarios, objective.alpha)
    assert isinstance(objective, MinCvarMaxDrawdownObjective)
    return maxdd_cvar_measure(scenarios, objective.alpha)


NO_CONSTRAINT_TO_RELAX = "try another solver (optimize.solver, optimize.lp_solver)"
"""The advice when an objective's only constraint is a long_only it needs: its problem always has a solution."""


def _solve_on(
    objective: Objective,
    scenarios: Scenarios,
    context: Context,
    feasible: Feasible,
    floor: float | None,
    what: str,
    hint: str,
) -> OptimizedWeights:
    mean = scenarios.annual_mean()
    covariance = scenarios.annual_covariance()
    solvers = context.solvers
    start = feasible.start()
    # empty only for an objective whose one constraint is the long_only it needs: its problem has a solution
    advice = hint or NO_CONSTRAINT_TO_RELAX
    if isinstance(objective, MinVarianceObjective):
        return MinVarianceProblem(scenarios.floor_means(), covariance, feasible, solvers).solve(floor, what, hint)
    if isinstance(objective, MeanVarianceObjective):
        problem = MeanVarianceProblem(mean, covariance, objective.risk_aversion, feasible, solvers)
        return problem.solve(floor, what, hint)
    if isinstance(objective, MaxSharpeObjective):
        rate = context.risk_free if objective.risk_free is None else objective.risk_free
        return MaxSharpeProblem(mean, covariance, rate, feasible, solvers).solve(floor, what, hint)
    if isinstance(objective, RiskParityObjective):
        budgets = _budgets(objective, feasible.n_assets, context.asset_names)
        return RiskParityProblem(covariance, budgets, feasible, solvers).solve(floor, what, advice)
    if isinstance(objective, MaxGrowthObjective):
        limits: list[tuple[ConvexMeasure, float]] = []
        keys = []
        if objective.cvar_limit is not None:
            limits.append((horizon_cvar_measure(scenarios, objective.alpha), objective.cvar_limit))
            keys.append("cvar_limit")
        if objective.maxdd_limit is not None:
            limits.append((maxdd_cvar_measure(scenarios, objective.maxdd_alpha), objective.maxdd_limit))
            keys.append("maxdd_limit")
        if keys:
            advice = f"raise {' or '.join(keys)}" + (f", or {hint}" if hint else "")
        plane = CuttingPlane(growth_measure(scenarios), limits, feasible, scenarios.floor_means(), solvers, start)
        result = plane.solve(floor, what, advice)
        return replace(result, objective_value=-result.objective_value)  # the growth, not its negative
    plane = CuttingPlane(_measure_for(objective, scenarios), [], feasible, scenarios.floor_means(), solvers, start)
    return plane.solve(floor, what, advice)


def solve_objective(
    objective: Objective, scenarios: Scenarios, context: Context, floor: float | None, what: str, hint: str
) -> OptimizedWeights:
    """The objective's optimum on ``scenarios`` under the context's constraints and the return ``floor``.

    With ``max_assets``, every set of at most that many assets is solved
    (the others held at zero) and the best kept: exact for the few assets
    mcalloc is built for.
    """
    feasible = context.feasible
    floor_means = scenarios.floor_means()
    relaxable = feasible.describe(objective.needs_long_only)
    if relaxable not in hint:
        hint = f"{hint}; the constraints in play: {relaxable}" if hint else f"relax {relaxable}"
    if context.max_assets is None or context.max_assets >= feasible.n_assets:
        return _tidy(_solve_on(objective, scenarios, context, feasible, floor, what, hint))
    best: OptimizedWeights | None = None
    failed: list[tuple[str, SolverFailedError]] = []
    refused: list[InfeasibleError] = []
    reachable = -np.inf  # the highest mean return of a set that met the constraints but not the objective
    sharpe = isinstance(objective, MaxSharpeObjective)
    sign = -1.0 if maximised(objective) else 1.0
    for size in range(1, context.max_assets + 1):
        for chosen in itertools.combinations(range(feasible.n_assets), size):
            keep = np.zeros(feasible.n_assets, dtype=bool)
            keep[list(chosen)] = True
            subset = feasible.only(keep)
            if subset is None:  # leaves out an asset with a minimum weight
                continue
            try:
                result = _solve_on(objective, scenarios, context, subset, floor, what, hint)
            except SolverFailedError as error:
                failed.append(("+".join(context.asset_names[i] for i in chosen), error))
                continue
            except InfeasibleError as error:
                refused.append(error)
                if floor is not None or sharpe:
                    # the floor's means; the tangency portfolio's are the annual means
                    means = floor_means if floor is not None else None
                    with contextlib.suppress(InfeasibleError, SolverFailedError):
                        reachable = max(reachable, best_mean_return(scenarios, subset, context.solvers, means))
                continue
            if best is None or sign * result.objective_value < sign * best.objective_value:
                best = result
    if best is None and failed:
        raise failed[0][1]
    if best is None:
        assets = f"mixes of at most {context.max_assets} asset{'' if context.max_assets == 1 else 's'}"
        if floor is not None and floor > reachable + 1e-9 and np.isfinite(reachable):
            # the floor was checked against every mix, not against those of at most max_assets assets
            raise InfeasibleError(
                f"{what}: min_return needs a mean return of {floor:.4f} a year, and {assets} reach at most "
                f"{reachable:.4f}; lower min_return or raise optimize.constraints.max_assets"
            )
        own = objective.risk_free if isinstance(objective, MaxSharpeObjective) else None
        rate = own if own is not None else context.risk_free
        if floor is None and sharpe and np.isfinite(reachable) and reachable <= rate:
            # the rate was checked against every mix, not against those of at most max_assets assets
            key = f"{what.split(' ')[0]}.risk_free" if own is not None else "portfolio.risk_free"
            raise InfeasibleError(
                f"{what}: {assets} reach a mean return of at most {reachable:.4f} a year, not above the risk-free "
                f"rate {rate:.4f}, so their tangency portfolio (max_sharpe) does not exist; set {key} below "
                f"{reachable:.4f} or raise optimize.constraints.max_assets"
            )
        if refused:
            # the objective's own limits, say: what one set's refusal advises, and max_assets
            raise InfeasibleError(f"{refused[0]} (with {assets}; or raise optimize.constraints.max_assets)")
        raise InfeasibleError(
            f"{what}: no set of {assets} meets the constraints; raise optimize.constraints.max_assets"
            + (f" or relax {relaxable}" if relaxable else "")
        )
    unsolved = [f"{label}: left out of the max_assets search, {error}" for label, error in failed]
    return _tidy(replace(best, warnings=(*best.warnings, *unsolved)))


TIDY = 1e-8
"""Weights closer to zero than this are a solver's tolerance (CLARABEL leaves -3e-10 under long_only), not a holding."""


def _tidy(result: OptimizedWeights) -> OptimizedWeights:
    """Weights a solver left within :data:`TIDY` of zero set to exactly zero, the rest rescaled to sum to 1.

    (No "-0.0%" in tables, and no short position of 3e-10 under ``long_only``.)
    """
    weights = np.where(np.abs(result.weights) < TIDY, 0.0, result.weights) + 0.0
    if np.any(weights != result.weights) and weights.sum() > 0:
        weights = weights / weights.sum()
    return replace(result, weights=weights)
