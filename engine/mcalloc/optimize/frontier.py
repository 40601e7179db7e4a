"""Efficient frontiers: the least risky mix for each floor on the mean return, up to the highest mean.

One frontier per measure of ``optimize.frontier`` over all assets and, for
the diversification view, over the first asset alone and with each other one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mcalloc.config.optimize_schema import FRONTIER_PATHS
from mcalloc.config.schema import Scenario
from mcalloc.errors import InfeasibleError
from mcalloc.optimize.common import (
    FIT_MEASURES,
    Feasible,
    OptimizedPortfolio,
    fit_measures,
)
from mcalloc.optimize.cutting import CuttingPlane
from mcalloc.optimize.cvar import horizon_cvar_measure
from mcalloc.optimize.drawdown import cdar_measure, maxdd_cvar_measure
from mcalloc.optimize.objectives import (
    TIDY,
    Context,
    best_mean_return,
)
from mcalloc.optimize.scenarios import Scenarios
from mcalloc.optimize.variance import MinVarianceProblem

__all__ = ["FRONTIER_COLUMNS", "frontier_table"]


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
            required = context.feasible.required(mask)
            which = "which has a minimum weight" if len(required) == 1 else "which have minimum weights"
            notes.append(f"frontier {label}: not drawn, it leaves out {', '.join(required)}, {which}")
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
