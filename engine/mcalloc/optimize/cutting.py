"""Convex risk over many paths with a few weights: Kelley's cutting-plane method.

Minimising the CVaR of a loss over N paths as one linear program needs a
variable per path (and, for drawdowns, per path and month: 1.2 million
for 10,000 paths of 120 months), which is slow to solve and grows with
the paths. But the weights are few, and every measure here is a convex
function of them whose value and subgradient numpy computes exactly in
one pass over the paths. So the program is solved as a sequence of tiny
linear programs in the weights alone (Kelley 1960; for CVaR, Kuenzi-Bay and
Mayer 2006): each evaluation adds a cut ``f(w) >= f(w_k) + g_k (w - w_k)``,
the master program minimises the largest cut within the constraints, and
its value is a lower bound on the optimum while the best point evaluated
is an upper bound. The loop stops when they meet, so every solution comes
with a certificate: ``gap`` (upper minus lower bound) in the objective's units.

The cuts live in cvxpy ``Parameter`` arrays of a fixed size, so the master
program is compiled once and re-solved cheaply. Cuts stay valid when the
return floor changes, so a frontier keeps them from point to point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from mcalloc.errors import InfeasibleError
from mcalloc.optimize.common import NO_TARGET, Feasible, OptimizedWeights, SolverFailedError, Solvers, solve

__all__ = ["ConvexMeasure", "CuttingPlane", "tail_mass"]

MAX_CUTS = 400
"""Cuts kept per function; the oldest (least binding) are recycled beyond this."""

TOLERANCE = 1e-7
"""Stop when the upper and lower bounds are this close (absolute, in the objective's units)."""

FEASIBILITY = 1e-7
"""How far a nonlinear limit may be exceeded by a returned point."""

FLOOR_SLACK = 1e-9
"""How far a returned point's mean return may fall below the return floor."""

CONSTRAINT_SLACK = 1e-7
"""How far a returned point may stray outside the linear constraints (bounds, budget, groups)."""

Oracle = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class ConvexMeasure:
    """A convex function of the weights: ``oracle(w) -> (value, subgradient)``, with a name for messages."""

    name: str
    oracle: Oracle


def tail_mass(losses: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probability weights of the CVaR tail of equally likely ``losses`` (flat).

    ``sum(mass * losses[index])`` is the CVaR of
    :func:`mcalloc.metrics.risk.cvar` exactly: the worst ``floor((1 - alpha) n)``
    scenarios in full and the next one in part. The same weights applied to
    the losses' subgradients give a subgradient of the CVaR.
    """
    n = losses.size
    tail = (1.0 - alpha) * n
    whole = int(np.floor(tail + 1e-9))
    count = min(whole + 1, n)
    index = np.argpartition(-losses, count - 1)[:count]
    index = index[np.argsort(-losses[index], kind="stable")]
    mass = np.ones(count)
    if count > whole:
        mass[-1] = max(tail - whole, 0.0)
    return index, mass / tail


class _Cuts:
    """Affine minorants ``value >= b + a @ w`` of one function, in Parameters of a fixed size."""

    def __init__(self, n_assets: int, name: str) -> None:
        self.slopes = cp.Parameter((MAX_CUTS, n_assets), name=f"{name}_slopes", value=np.zeros((MAX_CUTS, n_assets)))
        self.intercepts = cp.Parameter(MAX_CUTS, name=f"{name}_intercepts", value=np.full(MAX_CUTS, NO_TARGET))
        self.count = 0

    def add(self, weights: np.ndarray, value: float, gradient: np.ndarray) -> None:
        row = self.count % MAX_CUTS
        slopes, intercepts = self.slopes.value, self.intercepts.value
        assert slopes is not None and intercepts is not None
        slopes[row] = gradient
        intercepts[row] = value - gradient @ weights
        self.slopes.value, self.intercepts.value = slopes, intercepts
        self.count += 1

    def model(self, weights: cp.Expression) -> cp.Expression:
        return self.intercepts + self.slopes @ weights


class CuttingPlane:
    """Minimise a convex ``objective`` s.t. convex ``limits`` (measure, bound), linear constraints and a return floor.

    Parameters
    ----------
    objective
        The measure minimised.
    limits
        Measures that must stay at or below their bound.
    feasible, mean
        The linear constraints, and each asset's annualised mean return for the floor.
    start
        A point the first cuts are taken at (any, feasible or not).
    """

    def __init__(
        self,
        objective: ConvexMeasure,
        limits: Sequence[tuple[ConvexMeasure, float]],
        feasible: Feasible,
        mean: np.ndarray,
        solvers: Solvers,
        start: np.ndarray,
    ) -> None:
        self.objective, self.limits, self.solvers = objective, list(limits), solvers
        self.feasible, self.mean = feasible, mean
        n = feasible.n_assets
        self.weights = cp.Variable(n, name="weights")
        self.level = cp.Variable(name="objective_level")
        self.target = cp.Parameter(name="min_mean_return", value=NO_TARGET)
        self.objective_cuts = _Cuts(n, "objective")
        self.limit_cuts = [_Cuts(n, f"limit{k}") for k in range(len(self.limits))]
        constraints = [
            *feasible.constraints(self.weights),
            mean @ self.weights >= self.target,
            self.level >= self.objective_cuts.model(self.weights),
        ]
        for cuts, (_, bound) in zip(self.limit_cuts, self.limits, strict=True):
            constraints.append(cuts.model(self.weights) <= bound)
        self.problem = cp.Problem(cp.Minimize(self.level), constraints)
        self.evaluated: list[tuple[np.ndarray, float, float]] = []
        self._evaluate(np.asarray(start, dtype=float))

    def _evaluate(self, weights: np.ndarray) -> tuple[float, float]:
        value, gradient = self.objective.oracle(weights)
        self.objective_cuts.add(weights, value, gradient)
        violation = 0.0
        for cuts, (measure, bound) in zip(self.limit_cuts, self.limits, strict=True):
            level, slope = measure.oracle(weights)
            cuts.add(weights, level, slope)
            violation = max(violation, level - bound)
        self.evaluated.append((weights, value, violation))
        return value, violation

    def solve(self, min_return: float | None, what: str, hint: str, max_iterations: int = 300) -> OptimizedWeights:
        """Iterate until the bounds meet; the best feasible point evaluated, with the gap as a warning if open."""
        self.target.value = NO_TARGET if min_return is None else min_return
        best: tuple[np.ndarray, float] | None = None
        status, solver = "optimal", self.solvers.linear
        lower = -np.inf
        iterations = 0
        limits = ", ".join(f"{m.name} <= {b:.4g}" for m, b in self.limits)
        first = len(self.evaluated)  # the points this solve's programs find (a frontier reuses the plane)
        while iterations < max_iterations:
            iterations += 1
            try:
                status, solver = solve(self.problem, self.solvers, True, what, hint)
            except SolverFailedError:
                raise
            except InfeasibleError:
                if not self.limits:
                    raise
                # the constraints and the floor hold (checked before); the cuts of the limits rule out every mix
                raise InfeasibleError(f"{what}: no mix meets {limits} within the constraints; {hint}") from None
            lower = float(self.level.value)
            point = np.asarray(self.weights.value, dtype=float)
            self._evaluate(point)
            best = self._best(min_return)
            if best is not None and best[1] - lower <= TOLERANCE:
                break
        if best is None:
            # the cuts never ruled every mix out (that is the InfeasibleError above): the solver's points missed the
            # limits, the floor or the constraints by more than the tolerances (SCS's do at its default accuracy),
            # and a mix that meets them may exist
            missed = self._missed(self.evaluated[first:], min_return, limits)
            advice = hint if solver == "HIGHS" else f"use optimize.lp_solver: HIGHS, or {hint}"
            raise SolverFailedError(
                f"{what}: none of the {iterations} mixes {solver} found met {missed}, which is not proof that no "
                f"mix does; {advice}"
            )
        warnings: tuple[str, ...] = ()
        gap = best[1] - lower
        if gap > TOLERANCE:
            warnings = (f"{what}: stopped after {iterations} cuts {gap:.2g} above the lower bound",)
        return OptimizedWeights(best[0], best[1], status, solver, iterations, warnings, gap=max(gap, 0.0))

    def _missed(self, points: list[tuple[np.ndarray, float, float]], min_return: float | None, limits: str) -> str:
        """What ``points`` missed, and the nearest miss of each: the limits, the return floor, the constraints."""
        floor = NO_TARGET if min_return is None else min_return
        parts = []
        over = [violation for _, _, violation in points if violation > FEASIBILITY]
        if over:
            parts.append(f"{limits} (the nearest by {min(over):.2g})")
        short = [
            floor - float(self.mean @ weights) for weights, _, _ in points if self.mean @ weights < floor - FLOOR_SLACK
        ]
        if short:
            parts.append(f"the return floor {floor:.4g} (the nearest by {min(short):.2g})")
        if any(not self.feasible.contains(weights, CONSTRAINT_SLACK) for weights, _, _ in points):
            parts.append(f"{self.feasible.describe()} to within {CONSTRAINT_SLACK:g}")
        return " and ".join(parts) or "the limits"

    def _best(self, min_return: float | None) -> tuple[np.ndarray, float] | None:
        """The lowest objective among evaluated points that meet the limits and the current floor."""
        chosen: tuple[np.ndarray, float] | None = None
        floor = NO_TARGET if min_return is None else min_return
        for weights, value, violation in self.evaluated:
            if violation > FEASIBILITY or self.mean @ weights < floor - FLOOR_SLACK:
                continue
            if not self.feasible.contains(weights, CONSTRAINT_SLACK):
                continue
            if chosen is None or value < chosen[1]:
                chosen = (weights, value)
        return chosen
