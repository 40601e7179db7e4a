"""The optimisation stage: every objective, its grid cross-check and stability, and the frontiers.

The pipeline hands over the optimiser's own scenarios (simulated apart from
the paths every portfolio is judged on) and gets back weights with what
the optimiser saw; the pipeline then judges the weights with everything
else on fresh paths (:func:`optimization_table`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd

from mcalloc.config.optimize_schema import FRONTIER_PATHS, MaxGrowthObjective, MaxSharpeObjective, Objective
from mcalloc.config.schema import Scenario
from mcalloc.errors import InfeasibleError
from mcalloc.metrics.risk import cvar
from mcalloc.metrics.summary import book_cdar, book_volatility
from mcalloc.optimize.common import Feasible, OptimizedWeights, SolverFailedError, Solvers, solve
from mcalloc.optimize.cutting import CuttingPlane
from mcalloc.optimize.cvar import horizon_cvar_measure
from mcalloc.optimize.drawdown import cdar_measure, maxdd_cvar_measure
from mcalloc.optimize.objectives import (
    CONIC_OBJECTIVES,
    PATH_OBJECTIVES,
    TIDY,
    Context,
    best_mean_return,
    maximised,
    objective_measure,
    solve_objective,
)
from mcalloc.optimize.scenarios import Scenarios
from mcalloc.optimize.variance import MinVarianceProblem
from mcalloc.portfolio.accounting import BookSummary
from mcalloc.simulation.paths import local_threads, thread_map

__all__ = [
    "OPTIMIZATION_COLUMNS",
    "Optimization",
    "OptimizedPortfolio",
    "context_of",
    "optimise",
    "optimization_table",
    "scenarios_of",
]

MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "annual": 12}
"""Rebalancing periods in months; other policies are treated as monthly (daily, flows) or one period (never)."""

N_BOOTSTRAP = 200

FIT_MEASURES = ("mean_return", "volatility", "expected_growth", "horizon_cvar_95", "cdar_95", "maxdd_p95")
PATH_MEASURES = frozenset({"horizon_cvar_95", "cdar_95", "maxdd_p95"})
"""The measures of a whole path: a parametric scenario's one period has none to set beside the paths' horizon."""


@dataclass(frozen=True)
class OptimizedPortfolio:
    """One objective's solution and what it looked like on the optimiser's paths."""

    name: str
    objective: Objective
    floor: float | None
    result: OptimizedWeights
    recomputed: float
    n_objective_paths: int
    fit: dict[str, float]
    grid_best: float
    grid_points: int
    batch_weights: np.ndarray


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
    assets = f" with at most {context.max_assets} assets (optimize.constraints.max_assets)" if size < n_assets else ""
    raise InfeasibleError(f"{feasible.describe()}: no weights that sum to 1 meet them all{assets}; relax them")


def fit_measures(scenarios: Scenarios, weights: np.ndarray) -> dict[str, float]:
    """The compounded measures of a mix on the optimiser's scenarios (the ``*_fit`` columns)."""
    drawdowns = scenarios.drawdowns(weights)
    return {
        "mean_return": scenarios.mean_return(weights),
        "volatility": scenarios.volatility(weights),
        "expected_growth": scenarios.expected_growth(weights),
        "horizon_cvar_95": scenarios.horizon_cvar(weights, 0.95),
        "cdar_95": cvar(drawdowns, 0.95),
        "maxdd_p95": float(np.quantile(drawdowns.max(axis=1), 0.95)),
    }


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


def _alpha(objective: Objective) -> float:
    """The confidence level of the objective's own tail measure; NaN where it has none.

    ``max_growth`` has one only with a ``cvar_limit`` (its ``maxdd_limit`` has ``maxdd_alpha``).
    """
    if isinstance(objective, MaxGrowthObjective) and objective.cvar_limit is None:
        return math.nan
    return float(getattr(objective, "alpha", math.nan))


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


STABILITY_COLUMNS = [
    "portfolio",
    "asset",
    "weight",
    "batch_mean",
    "batch_sd",
    "batch_min",
    "batch_max",
    "n_batches",
    "n_paths_per_batch",
]


def stability_table(
    portfolios: Sequence[OptimizedPortfolio], asset_names: Sequence[str], n_paths: int, batches: int
) -> pd.DataFrame:
    """Each optimised weight beside its mean, spread and range over independent batches of paths."""
    rows = []
    for portfolio in portfolios:
        solved = portfolio.batch_weights[~np.isnan(portfolio.batch_weights).any(axis=1)]
        for asset, name in enumerate(asset_names):
            column = solved[:, asset] if solved.size else np.array([np.nan])
            rows.append(
                {
                    "portfolio": portfolio.name,
                    "asset": name,
                    "weight": float(portfolio.result.weights[asset]),
                    "batch_mean": float(np.mean(column)),
                    "batch_sd": float(np.std(column, ddof=1)) if column.size > 1 else math.nan,
                    "batch_min": float(np.min(column)),
                    "batch_max": float(np.max(column)),
                    "n_batches": int(solved.shape[0]),
                    "n_paths_per_batch": n_paths // batches if batches else 0,
                }
            )
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def _asset_sets(scenario: Scenario) -> list[tuple[str, np.ndarray]]:
    """The frontiers drawn: all assets, and (diversification) the first asset alone and with each other one."""
    names = scenario.asset_names
    n = len(names)
    every = [("+".join(names), np.ones(n, dtype=bool))]
    if not scenario.optimize.frontier.diversification or n < 2:
        return every
    anchor = np.zeros(n, dtype=bool)
    anchor[0] = True
    sets = [(names[0], anchor)]
    for other in range(1, n):
        mask = anchor.copy()
        mask[other] = True
        sets.append((f"{names[0]}+{names[other]}", mask))
    return sets + (every if n > 2 else [])


def _frontier_points(
    measure: str, scenarios: Scenarios, feasible: Feasible, context: Context, points: int, notes: list[str], label: str
) -> list[tuple[float | None, np.ndarray, float]]:
    """(floor, weights, objective) from the least risky mix to the highest mean return.

    A point the solver did not solve to optimality, or solved with a warning, adds a line to ``notes``.
    """
    solvers = context.solvers
    what = f"optimize.frontier {label} ({measure})"
    # the user's constraints: a diversification frontier's own zero bounds on the assets it leaves out are not theirs
    hint = f"relax {context.feasible.describe()}"
    if np.any((feasible.upper == 0.0) & (context.feasible.upper != 0.0)):
        hint = f"its assets alone cannot meet them; {hint}, or set optimize.frontier.diversification: false"
    mean = scenarios.annual_mean()
    if measure == "volatility":
        problem = MinVarianceProblem(mean, scenarios.annual_covariance(), feasible, solvers)
        solve = problem.solve
    else:
        measures = {
            "cvar": lambda: horizon_cvar_measure(scenarios, 0.95),
            "cdar": lambda: cdar_measure(scenarios, 0.95),
            "maxdd": lambda: maxdd_cvar_measure(scenarios, 0.95),
        }
        plane = CuttingPlane(measures[measure](), [], feasible, mean, solvers, feasible.start())
        solve = plane.solve
    lowest = solve(None, what, hint)
    low = float(mean @ lowest.weights)
    high = best_mean_return(scenarios, feasible, solvers)
    found: list[tuple[float | None, np.ndarray, float]] = [(None, lowest.weights, lowest.objective_value)]
    solved = [lowest]
    if high - low > 1e-9:
        for floor in np.linspace(low, high, points)[1:]:
            result = solve(float(floor) - 1e-10, what, hint)
            found.append((float(floor), result.weights, result.objective_value))
            solved.append(result)
    for point, result in enumerate(solved):
        if result.status != "optimal":
            notes.append(f"{what}: point_{point}: the solver's status is {result.status}")
        notes += [f"{what}: point_{point}: {warning}" for warning in result.warnings]
    return found


FRONTIER_COLUMNS = [
    "frontier",
    "measure",
    "kind",
    "portfolio",
    "min_mean_return",
    "objective_value",
    *FIT_MEASURES,
    "cdar_95_uncompounded",
    "maxdd_cvar_95_uncompounded",
]


def _drawdown_measures(scenarios: Scenarios, weights: np.ndarray) -> dict[str, float]:
    """The quantities the ``cdar`` and ``maxdd`` frontiers minimise, for any mix: their panels' axes."""
    return {
        "cdar_95_uncompounded": scenarios.cdar(weights, 0.95, compounded=False),
        "maxdd_cvar_95_uncompounded": scenarios.maxdd_cvar(weights, 0.95, compounded=False),
    }


def frontier_table(
    scenario: Scenario,
    scenarios: Scenarios,
    context: Context,
    benchmarks: dict[str, np.ndarray],
    portfolios: Sequence[OptimizedPortfolio],
    warnings: list[str] | None = None,
) -> pd.DataFrame:
    """``frontier.csv``: each risk measure's frontier for each asset set, with benchmarks and optima marked.

    A frontier that cannot be drawn (an asset set the constraints rule out,
    or no solution) is left out, with a line in ``warnings``.
    """
    notes = warnings if warnings is not None else []
    settings = scenario.optimize.frontier
    names = scenario.asset_names
    weight_columns = [f"w_{name}" for name in names]
    columns = FRONTIER_COLUMNS + weight_columns
    rows: list[dict[str, object]] = []
    if settings.points == 0:
        return pd.DataFrame(rows, columns=columns)
    scenarios = scenarios.subset(slice(0, FRONTIER_PATHS))
    for label, mask in _asset_sets(scenario):
        feasible = context.feasible.only(mask)
        if feasible is None:
            left_out = ", ".join(context.feasible.required(mask))
            notes.append(f"frontier {label}: not drawn, it leaves out {left_out}, which has a minimum weight")
            continue
        if feasible.lower.sum() > 1.0 + 1e-12 or feasible.upper.sum() < 1.0 - 1e-12:
            notes.append(f"frontier {label}: not drawn, the weight bounds cannot sum to 1 with only these assets")
            continue
        for measure in settings.measures:
            if measure == "cvar" and feasible.lower.min() < 0:
                notes.append(
                    f"frontier {label} (cvar): not drawn, the horizon CVaR is of log growth, which short positions "
                    "can leave undefined (a weight's lower bound is negative)"
                )
                continue
            try:
                found = _frontier_points(measure, scenarios, feasible, context, settings.points, notes, label)
            except InfeasibleError as error:  # its message names the frontier already (optimize.frontier ...)
                reason = str(error).removeprefix(f"optimize.frontier {label} ({measure}): ")
                notes.append(f"frontier {label} ({measure}): not drawn, {reason}")
                continue
            for point, (floor, weights, value) in enumerate(found):
                row: dict[str, object] = {
                    "frontier": label,
                    "measure": measure,
                    "kind": "frontier",
                    "portfolio": f"point_{point}",
                    "min_mean_return": math.nan if floor is None else floor,
                    "objective_value": value,
                    **fit_measures(scenarios, weights),
                    **_drawdown_measures(scenarios, weights),
                }
                # weights a solver left at +-1e-12 are zero, as in weights.csv
                row.update(
                    zip(weight_columns, (0.0 if abs(w) < TIDY else float(w) + 0.0 for w in weights), strict=True)
                )
                rows.append(row)
    marked = [(name, "benchmark", w) for name, w in benchmarks.items()]
    marked += [(p.name, "optimised", p.result.weights) for p in portfolios]
    for name, kind, weights in marked:
        row = {"frontier": "", "measure": "", "kind": kind, "portfolio": name, "min_mean_return": math.nan}
        row["objective_value"] = math.nan
        row.update(fit_measures(scenarios, weights))
        row.update(_drawdown_measures(scenarios, weights))
        row.update(zip(weight_columns, (float(w) for w in weights), strict=True))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


OPTIMIZATION_COLUMNS = [
    "portfolio",
    "objective",
    "alpha",
    "objective_value",
    "objective_recomputed",
    "optimality_gap",
    "grid_best",
    "grid_gap",
    "grid_points",
    "min_mean_return",
    *(f"{name}_fit" for name in FIT_MEASURES),
    *(f"{name}_new_paths" for name in FIT_MEASURES),
    "objective_new_paths",
    "objective_new_paths_se",
    "n_fit_paths",
    "n_objective_paths",
    "n_new_paths",
    "iterations",
    "status",
    "solver",
]


class _BookMeasures:
    """The measures of ``FIT_MEASURES`` for one portfolio from the full accounting on the evaluation paths."""

    def __init__(self, book: BookSummary, column: int, horizon_years: int, monthly_periods: bool = False) -> None:
        self.book, self.column, self.years = book, column, horizon_years
        self.monthly_periods = monthly_periods
        self.log_growth = np.log(np.maximum(book.performance[:, column], 1e-300))

    def mean_return(self, rows: np.ndarray | slice = slice(None)) -> float:
        book = self.book
        total = book.period_return_sum if book.period_return_sum is not None else book.log_return_sum
        return float(12.0 * total[rows, self.column].mean() / book.n_blocks)

    def volatility(self, rows: np.ndarray | slice = slice(None)) -> float:
        chosen = None if isinstance(rows, slice) else rows
        return book_volatility(self.book, self.years, self.column, chosen)

    def expected_growth(self, rows: np.ndarray | slice = slice(None)) -> float:
        return float(self.log_growth[rows].mean() / self.years)

    def horizon_cvar(self, rows: np.ndarray | slice = slice(None), alpha: float = 0.95) -> float:
        return cvar(-self.log_growth[rows], alpha)

    def all(self) -> dict[str, float]:
        """The measures, the drawdowns of month-end NAVs from month-end peaks as the optimiser's paths have them.

        The daily NAV's drawdowns (``metrics.csv``) run deeper by
        construction: set beside the optimiser's month-end ones they would
        read as the mix doing worse on paths it never saw.
        """
        month_end = self.book.month_end_max_drawdown
        return {
            "mean_return": self.mean_return(),
            "volatility": self.volatility(),
            "expected_growth": self.expected_growth(),
            "horizon_cvar_95": self.horizon_cvar(),
            "cdar_95": book_cdar(self.book, self.column, 0.95, month_end_peak=True),
            # never the daily drawdown in its place: a book without month-end ones has no like to give
            "maxdd_p95": math.nan if month_end is None else float(np.percentile(month_end[:, self.column], 95)),
        }

    def objective(self, objective: Objective, risk_free: float, rows: np.ndarray | slice = slice(None)) -> float:
        """The objective's own quantity where the full accounting defines it the same way (else NaN)."""
        kind = objective.kind
        if kind == "min_variance":
            return self.volatility(rows)
        if kind == "mean_variance":
            return self.mean_return(rows) - 0.5 * objective.risk_aversion * self.volatility(rows) ** 2  # type: ignore[union-attr]
        if kind == "max_sharpe":
            rate = risk_free if objective.risk_free is None else objective.risk_free  # type: ignore[union-attr]
            return (self.mean_return(rows) - rate) / self.volatility(rows)
        if kind == "min_cvar" and objective.form == "compounded":  # type: ignore[union-attr]
            return self.horizon_cvar(rows, objective.alpha)  # type: ignore[union-attr]
        if kind == "min_cvar" and self.monthly_periods and self.book.period_return_sum is not None:
            # uncompounded: minus the sum of the periods' simple returns, the book's months when they are the periods
            return cvar(-self.book.period_return_sum[rows, self.column], objective.alpha)  # type: ignore[union-attr]
        if kind == "max_growth":
            return self.expected_growth(rows)
        return math.nan


def optimization_table(
    portfolios: Sequence[OptimizedPortfolio],
    book: BookSummary,
    columns: dict[str, int],
    n_fit_paths: int,
    horizon_years: int,
    risk_free: float,
    seed: int,
    single_period: bool = False,
    monthly_periods: bool = False,
) -> pd.DataFrame:
    """One row per optimised portfolio: what the optimiser saw, and the same on the paths it never saw.

    ``single_period``: the optimiser's scenarios were one period each
    (``optimize.scenarios.kind: parametric``), so a horizon measure (the
    compounded ``min_cvar``) has no like on the paths, and the path
    measures of :data:`PATH_MEASURES` on the scenarios (of one period) none
    on the horizon: left empty. ``monthly_periods``: the scenarios' periods
    are months (monthly rebalancing), as the book's blocks are, so an
    uncompounded ``min_cvar`` (of the sum of period returns) has its like.

    ``*_new_paths`` come from the full accounting (daily steps, costs,
    taxes, flows) on the evaluation paths; ``objective_new_paths_se`` is
    the bootstrap standard error of ``objective_new_paths`` over those paths.
    """
    rows = []
    n_paths = book.terminal_value.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence((seed, 5)))
    m = min(n_paths, 20_000)
    samples = [rng.integers(0, n_paths, m) for _ in range(N_BOOTSTRAP)]
    for portfolio in portfolios:
        objective = portfolio.objective
        measures = _BookMeasures(book, columns[portfolio.name], horizon_years, monthly_periods and not single_period)
        value = portfolio.result.objective_value
        sign = -1.0 if maximised(objective) else 1.0
        horizon_measure = objective.kind == "min_cvar" and objective.form == "compounded"
        out_of_sample = math.nan if single_period and horizon_measure else measures.objective(objective, risk_free)
        se = math.nan
        if math.isfinite(out_of_sample):
            spread = np.std([measures.objective(objective, risk_free, rows) for rows in samples], ddof=1)
            se = float(spread) * math.sqrt(m / n_paths)
        row: dict[str, object] = {
            "portfolio": portfolio.name,
            "objective": objective.kind,
            "alpha": _alpha(objective),
            "objective_value": value,
            "objective_recomputed": portfolio.recomputed,
            "optimality_gap": portfolio.result.gap,
            "grid_best": portfolio.grid_best,
            "grid_gap": sign * (value - portfolio.grid_best) if math.isfinite(portfolio.grid_best) else math.nan,
            "grid_points": portfolio.grid_points,
            "min_mean_return": math.nan if portfolio.floor is None else portfolio.floor,
            **{
                f"{name}_fit": math.nan if single_period and name in PATH_MEASURES else v
                for name, v in portfolio.fit.items()
            },
            **{f"{name}_new_paths": v for name, v in measures.all().items()},
            "objective_new_paths": out_of_sample,
            "objective_new_paths_se": se,
            "n_fit_paths": n_fit_paths,
            "n_objective_paths": portfolio.n_objective_paths,
            "n_new_paths": n_paths,
            "iterations": portfolio.result.iterations,
            "status": portfolio.result.status,
            "solver": portfolio.result.solver,
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=OPTIMIZATION_COLUMNS)
