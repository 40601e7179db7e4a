"""The optimisation stage: every objective, its grid cross-check and stability, and the frontiers.

The pipeline hands over the optimiser's own scenarios (simulated apart from
the paths every portfolio is judged on) and gets back weights with what
the optimiser saw; the pipeline then judges the weights with everything
else on fresh paths (:func:`mcalloc.optimize.tables.optimization_table`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import cvxpy as cp
import numpy as np
import pandas as pd

from mcalloc.config.optimize_schema import MaxGrowthObjective, MaxSharpeObjective, Objective
from mcalloc.config.schema import Scenario
from mcalloc.errors import InfeasibleError
from mcalloc.optimize.common import (
    Feasible,
    OptimizedPortfolio,
    SolverFailedError,
    Solvers,
    fit_measures,
    solve,
)
from mcalloc.optimize.frontier import frontier_table
from mcalloc.optimize.objectives import (
    CONIC_OBJECTIVES,
    PATH_OBJECTIVES,
    Context,
    best_mean_return,
    maximised,
    objective_measure,
    solve_objective,
)
from mcalloc.optimize.scenarios import Scenarios
from mcalloc.optimize.tables import stability_table
from mcalloc.simulation.parallel import local_threads, thread_map

__all__ = [
    "Optimization",
    "context_of",
    "optimise",
    "scenarios_of",
]

MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "annual": 12}
"""Rebalancing periods in months; other policies are treated as monthly (daily, flows) or one period (never)."""


@dataclass(frozen=True)
class Optimization:
    portfolios: list[OptimizedPortfolio]
    frontier: pd.DataFrame
    stability: pd.DataFrame
    warnings: tuple[str, ...]


def scenarios_of(scenario: Scenario, month_growth: np.ndarray) -> Scenarios:
    """The optimiser's scenarios for the scenario's rebalancing policy."""
    rebalance = scenario.portfolio.rebalance
    n_months = month_growth.shape[1]
    per = n_months if rebalance == "never" else MONTHS_PER_PERIOD.get(rebalance, 1)
    return Scenarios(month_growth, per)


def context_of(scenario: Scenario) -> Context:
    """The constraints and solvers of the scenario's ``optimize`` section."""
    names = scenario.asset_names
    constraints = scenario.optimize.constraints
    lows, highs = constraints.weight_bounds(names)
    groups = tuple(
        (name, np.array([1.0 if asset in group.assets else 0.0 for asset in names]), group.min, group.max)
        for name, group in constraints.groups.items()
    )
    turnover = None
    if constraints.turnover is not None:
        current = np.array([constraints.turnover.current.get(asset, 0.0) for asset in names])
        turnover = (current, constraints.turnover.max)
    feasible = Feasible(np.array(lows), np.array(highs), tuple(names), groups, turnover)
    optimize = scenario.optimize
    solvers = Solvers(optimize.solver, optimize.lp_solver, optimize.fallback_solver)
    return Context(feasible, solvers, scenario.portfolio.risk_free, tuple(names), constraints.max_assets)


def check_constraints(scenario: Scenario) -> None:
    """Refuse constraints no weights can meet (bounds, groups, turnover, ``max_assets``) before any path exists.

    A linear feasibility problem per candidate set of assets (one set without
    ``max_assets``), so a conflict is found in a fraction of a second, not
    after the optimiser's paths are simulated.

    Raises
    ------
    InfeasibleError
        Naming the constraints in play.
    """
    if not scenario.optimize.objectives:
        return
    context = context_of(scenario)
    feasible = context.feasible
    n_assets = feasible.n_assets
    size = n_assets if context.max_assets is None else min(context.max_assets, n_assets)
    candidates = [np.ones(n_assets, dtype=bool)]
    if size < n_assets:
        candidates = [np.isin(np.arange(n_assets), chosen) for chosen in itertools.combinations(range(n_assets), size)]
    weights = cp.Variable(n_assets)
    for keep in candidates:
        restricted = feasible.only(keep)
        if restricted is None:
            continue
        problem = cp.Problem(cp.Minimize(0), restricted.constraints(weights))
        try:
            solve(problem, context.solvers, True, "optimize.constraints", "relax them")
        except SolverFailedError:
            return  # no solver could say: the optimiser will find out
        except InfeasibleError:
            continue
        return
    most = f"{context.max_assets} asset{'' if context.max_assets == 1 else 's'}"
    assets = f" with at most {most} (optimize.constraints.max_assets)" if size < n_assets else ""
    if size == n_assets and (feasible.groups or feasible.turnover is not None):
        # groups (or a turnover) that conflict whatever the weights' bounds: relaxing long_only or the bounds,
        # which the message named first, could not help
        unbounded = replace(feasible, lower=np.full(n_assets, -_FREE), upper=np.full(n_assets, _FREE))
        try:
            solve(cp.Problem(cp.Minimize(0), unbounded.constraints(weights)), context.solvers, True, "", "")
        except InfeasibleError:
            named = feasible.describe().split(", ")[1:]  # the first part is the bounds (or long_only)
            raise InfeasibleError(
                f"{', '.join(named)}: no weights that sum to 1 meet them all, whatever the bounds; relax them"
            ) from None
        except SolverFailedError:
            pass
    raise InfeasibleError(f"{feasible.describe()}: no weights that sum to 1 meet them all{assets}; relax them")


_FREE = 1e6
"""Bounds wide enough to be none: a conflict that remains is the groups' (and the turnover's) own."""


def _objective_paths(objective: Objective, scenarios: Scenarios, limit: int) -> Scenarios:
    path_kind = objective.kind in PATH_OBJECTIVES or (
        isinstance(objective, MaxGrowthObjective) and objective.maxdd_limit is not None
    )
    # chunks are seeded independently, so the first paths are a random sample of them
    return scenarios.subset(slice(0, limit)) if path_kind and scenarios.n_paths > limit else scenarios


def simplex_grid(n_assets: int, step: float) -> np.ndarray:
    """Every long-only mix with weights on multiples of ``step`` (which must divide 1), (n_points, n_assets)."""
    parts = round(1.0 / step)
    points = [
        np.array(c, dtype=float) / parts
        for c in itertools.product(range(parts + 1), repeat=n_assets - 1)
        if sum(c) <= parts
    ]
    return np.array([np.append(p, 1.0 - p.sum()) for p in points])


def _grid_best(
    objective: Objective,
    scenarios: Scenarios,
    context: Context,
    floor: float | None,
    step: float | None,
    threads: int = 1,
) -> tuple[float, int]:
    """The best objective over the feasible grid points (NaN without a grid), and how many points were feasible.

    The points are measured on ``threads`` threads (numpy's array work releases the GIL); the best is
    taken over them in grid order, so the result does not depend on the count.
    """
    n_assets = scenarios.n_assets
    if step is None or n_assets > 4 or objective.kind == "risk_parity" or abs(round(1 / step) * step - 1) > 1e-9:
        return math.nan, 0
    sign = -1.0 if maximised(objective) else 1.0
    points = [
        point
        for point in simplex_grid(n_assets, step)
        if context.feasible.contains(point, 1e-12)
        and (context.max_assets is None or np.count_nonzero(point) <= context.max_assets)
        and (floor is None or float(scenarios.floor_means() @ point) >= floor)
        and (not isinstance(objective, MaxGrowthObjective) or _within_limits(objective, scenarios, point))
    ]

    def measure(point: np.ndarray) -> float:
        return objective_measure(objective, scenarios, point, context.risk_free, context.asset_names)

    best = math.inf
    for value in thread_map(measure, points, threads, "mcalloc-grid"):
        best = min(best, sign * value)
    return (sign * best if points else math.nan), len(points)


def _within_limits(objective: MaxGrowthObjective, scenarios: Scenarios, weights: np.ndarray) -> bool:
    """True if ``weights`` meets the objective's CVaR and drawdown limits (as the solver measures them)."""
    if objective.cvar_limit is not None and scenarios.horizon_cvar(weights, objective.alpha) > objective.cvar_limit:
        return False
    limit = objective.maxdd_limit
    return limit is None or scenarios.maxdd_cvar(weights, objective.maxdd_alpha, compounded=False) <= limit


def _floor(objective: Objective, scenarios: Scenarios, benchmarks: dict[str, np.ndarray]) -> float | None:
    target = objective.min_return
    if target is None:
        return None
    if isinstance(target, str):
        return scenarios.mean_return(benchmarks[target.removeprefix("benchmark:")])
    return float(target)


def _check_risk_free(objective: MaxSharpeObjective, index: int, risk_free: float, best_mean: float, what: str) -> None:
    """Refuse a risk-free rate that no mix within the constraints beats: the tangency portfolio then does not exist.

    The homogenised problem needs some mix whose mean return exceeds the
    rate; without one the solver reports the problem infeasible, which would
    send the user to the constraints instead of the rate.
    """
    rate, key = risk_free, "portfolio.risk_free"
    if objective.risk_free is not None:
        rate, key = objective.risk_free, f"optimize.objectives.{index}.risk_free"
    if best_mean <= rate:
        raise InfeasibleError(
            f"{what}: {key} is {rate:.4f} a year, but the highest mean return within the constraints is "
            f"{best_mean:.4f}: no mix beats the risk-free rate, so the tangency portfolio (max_sharpe) does not exist; "
            f"set {key} below {best_mean:.4f}, or choose another objective"
        )


def optimise(scenario: Scenario, scenarios: Scenarios, benchmarks: dict[str, np.ndarray]) -> Optimization:
    """Solve every objective of the scenario on the optimiser's scenarios; then the frontiers."""
    optimize = scenario.optimize
    context = context_of(scenario)
    best_mean = best_mean_return(scenarios, context.feasible, context.solvers)
    portfolios: list[OptimizedPortfolio] = []
    warnings: list[str] = []
    for index, objective in enumerate(optimize.objectives):
        what = f"optimize.objectives.{index} ({objective.label})"
        floor = _floor(objective, scenarios, benchmarks)
        relaxable = context.feasible.describe(objective.needs_long_only)
        hint = f"relax {relaxable}" if relaxable else ""
        if floor is not None:
            hint = f"the highest mean return within the constraints is {best_mean:.4f} a year; lower min_return" + (
                f" or {hint}" if hint else ""
            )
        if floor is not None and floor > best_mean + 1e-9:
            raise InfeasibleError(f"{what}: min_return needs a mean return of {floor:.4f} a year; {hint}")
        if isinstance(objective, MaxSharpeObjective):
            _check_risk_free(objective, index, context.risk_free, best_mean, what)
        used = _objective_paths(objective, scenarios, optimize.max_path_scenarios)
        result = solve_objective(objective, used, context, floor, what, hint)
        if result.status != "optimal":
            warnings.append(f"{what}: the solver's status is {result.status}")
        conic = objective.kind in CONIC_OBJECTIVES
        expected = optimize.solver if conic else optimize.lp_solver
        if result.solver != expected:
            warnings.append(
                f"{what}: solved by the fallback solver {result.solver}: "
                f"{'optimize.solver' if conic else 'optimize.lp_solver'} {expected} failed on it"
            )
        wiped = scenarios.wiped_out(result.weights)
        if wiped:
            mix = ", ".join(f"{n} {w:.2f}" for n, w in zip(context.asset_names, result.weights, strict=True))
            raise InfeasibleError(
                f"{what}: its weights ({mix}) lose everything on {wiped} of the optimiser's {scenarios.n_paths} "
                "paths (a short position held between rebalancing dates); rebalance more often, narrow the weight "
                "bounds or set optimize.constraints.long_only: true"
            )
        warnings += result.warnings
        recomputed = objective_measure(objective, used, result.weights, context.risk_free, context.asset_names)
        grid_best, grid_points = _grid_best(
            objective, used, context, floor, optimize.grid_step, local_threads(scenario.simulation.n_jobs)
        )
        batch_weights = _batch_weights(
            objective, scenarios, context, floor, optimize.batches, optimize.max_path_scenarios
        )
        unsolved = int(np.isnan(batch_weights).any(axis=1).sum()) if optimize.batches >= 2 else 0
        if unsolved:
            causes = []
            if floor is not None:
                causes.append("a min_return floor is measured on all paths, and a batch's own means can fall short")
            if getattr(objective, "cvar_limit", None) is not None or getattr(objective, "maxdd_limit", None):
                causes.append("no mix may meet the objective's limit on a batch's own paths")
            cause = "; or ".join(causes or ["the solver failed"])
            warnings.append(
                f"{what}: {unsolved} of {optimize.batches} batches of paths have no solution ({cause}); "
                f"stability.csv describes the {optimize.batches - unsolved} that solved"
            )
        portfolios.append(
            OptimizedPortfolio(
                name=objective.label,
                objective=objective,
                floor=floor,
                result=result,
                recomputed=recomputed,
                n_objective_paths=used.n_paths,
                fit=fit_measures(scenarios, result.weights),
                grid_best=grid_best,
                grid_points=grid_points,
                batch_weights=batch_weights,
            )
        )
    frontier = frontier_table(scenario, scenarios, context, benchmarks, portfolios, warnings)
    stability = stability_table(portfolios, scenario.asset_names, scenarios.n_paths, optimize.batches)
    return Optimization(portfolios, frontier, stability, tuple(warnings))


def _batch_weights(
    objective: Objective, scenarios: Scenarios, context: Context, floor: float | None, batches: int, limit: int
) -> np.ndarray:
    """The objective solved again on each of ``batches`` disjoint parts of the paths, (batches, n_assets)."""
    found = np.full((batches, scenarios.n_assets), np.nan)
    if batches < 2:
        return found
    for batch, part in enumerate(scenarios.batches(batches)):
        used = _objective_paths(objective, part, limit)
        try:
            found[batch] = solve_objective(objective, used, context, floor, "batch", "").weights
        except InfeasibleError:
            continue
    return found
