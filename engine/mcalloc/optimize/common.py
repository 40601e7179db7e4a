"""What every objective shares: the feasible weights, the solvers, the shape of a solution and its measures."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace

import cvxpy as cp
import numpy as np

from mcalloc.config.optimize_schema import Objective
from mcalloc.errors import InfeasibleError
from mcalloc.metrics.risk import cvar
from mcalloc.optimize.scenarios import Scenarios

__all__ = [
    "FIT_MEASURES",
    "NO_TARGET",
    "Feasible",
    "OptimizedPortfolio",
    "OptimizedWeights",
    "SolverFailedError",
    "Solvers",
    "fit_measures",
    "solve",
]

NO_TARGET = -1.0e3
"""A return floor every portfolio meets: the value of a return-floor Parameter when there is none."""


@dataclass(frozen=True)
class Feasible:
    """Linear constraints on the weights, which always sum to one.

    ``lower``/``upper`` (n_assets,) bound each weight; ``groups`` are
    ``(name, mask, min, max)`` on summed weights; ``turnover`` is
    ``(current weights, max one-way turnover)``. ``names`` label the
    constraints in messages.
    """

    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...] = ()
    groups: tuple[tuple[str, np.ndarray, float, float], ...] = ()
    turnover: tuple[np.ndarray, float] | None = None

    @property
    def n_assets(self) -> int:
        return int(self.lower.size)

    def only(self, keep: np.ndarray) -> Feasible | None:
        """The same constraints with the assets outside ``keep`` (boolean mask) held at zero.

        None when that breaks a bound: an asset left out has a minimum weight above zero.
        """
        if np.any(~keep & (self.lower > 0.0)):
            return None
        lower = np.where(keep, self.lower, 0.0)
        upper = np.where(keep, self.upper, 0.0)
        return replace(self, lower=lower, upper=upper)

    def required(self, keep: np.ndarray) -> list[str]:
        """The assets outside ``keep`` that have a minimum weight above zero, by name."""
        return [name for name, low, kept in zip(self.names, self.lower, keep, strict=True) if low > 0.0 and not kept]

    def start(self) -> np.ndarray:
        """Equal weights moved into the bounds: where iterative solvers take their first look."""
        return np.asarray(np.clip(np.full(self.n_assets, 1.0 / self.n_assets), self.lower, self.upper))

    def constraints(self, weights: cp.Expression, total: cp.Expression | float = 1.0) -> list[cp.Constraint]:
        """cvxpy constraints on ``weights`` summing to ``total`` (a scale for homogenised problems)."""
        found: list[cp.Constraint] = [cp.sum(weights) == total]
        found += [weights >= self.lower * total, weights <= self.upper * total]
        for _, mask, low, high in self.groups:
            found += [mask @ weights >= low * total, mask @ weights <= high * total]
        if self.turnover is not None:
            current, most = self.turnover
            found.append(cp.sum(cp.abs(weights - current * total)) <= 2.0 * most * total)
        return found

    def contains(self, weights: np.ndarray, tolerance: float = 1e-9) -> bool:
        """True if ``weights`` (n_assets,) meets every constraint."""
        ok = abs(weights.sum() - 1.0) <= tolerance
        ok &= bool(np.all(weights >= self.lower - tolerance) and np.all(weights <= self.upper + tolerance))
        for _, mask, low, high in self.groups:
            ok &= low - tolerance <= mask @ weights <= high + tolerance
        if self.turnover is not None:
            current, most = self.turnover
            ok &= np.abs(weights - current).sum() / 2.0 <= most + tolerance
        return bool(ok)

    def describe(self, long_only_needed: bool = False) -> str:
        """The constraints in play that a user may relax, for the message of an infeasible problem.

        Weights left at long-only's 0 to 1 name ``long_only``: a user who set
        no bounds is not sent to relax them. With ``long_only_needed`` (an
        objective of log growth, which the schema allows only long-only)
        ``long_only`` is not named, as relaxing it would only be refused; the
        result may then be empty.
        """
        if np.all(self.lower == 0.0) and np.all(self.upper == 1.0):
            parts = [] if long_only_needed else ["optimize.constraints.long_only"]
        elif np.all(self.lower == -1.0) and np.all(self.upper == 2.0):
            parts = ["optimize.constraints.bounds (-1..2 each, the default without long_only)"]
        else:
            parts = ["optimize.constraints.bounds"]
        parts += [f"optimize.constraints.groups.{name}" for name, *_ in self.groups]
        if self.turnover is not None:
            parts.append("optimize.constraints.turnover")
        return ", ".join(parts)


@dataclass(frozen=True)
class Solvers:
    """Which cvxpy solver handles conic and quadratic problems, which linear programs, and the fallback."""

    conic: str = "CLARABEL"
    linear: str = "HIGHS"
    fallback: str | None = "SCS"


@dataclass(frozen=True)
class OptimizedWeights:
    """One solution: the weights, the objective in its measure's units, the solver's status and notes.

    ``iterations`` counts the programs solved; ``gap`` is how far the
    objective may still be from the optimum (cutting planes; 0 otherwise):
    above it for a minimised measure, below it for ``max_growth``'s growth.
    """

    weights: np.ndarray
    objective_value: float
    status: str
    solver: str
    iterations: int = 1
    warnings: tuple[str, ...] = field(default_factory=tuple)
    gap: float = 0.0


_highs_quiet = False


def _quiet_highs() -> None:
    """HiGHS prints a banner to stdout (file descriptor 1) when its first instance is made; make that one unseen.

    ``mcalloc run -q`` prints only the results folder on stdout, for scripts.
    """
    global _highs_quiet
    if _highs_quiet:
        return
    _highs_quiet = True
    try:
        import highspy
    except ImportError:
        return
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


def solve(problem: cp.Problem, solvers: Solvers, linear: bool, what: str, hint: str) -> tuple[str, str]:
    """Solve ``problem`` in place; returns (status, solver used) or raises :class:`InfeasibleError`.

    The configured solver first, the fallback if it fails outright.
    ``OPTIMAL_INACCURATE`` is accepted; the caller reports it as a warning.
    """
    first = solvers.linear if linear else solvers.conic
    if "HIGHS" in (first, solvers.fallback):
        _quiet_highs()
    order = [first] + ([solvers.fallback] if solvers.fallback and solvers.fallback != first else [])
    failure = ""
    for name in order:
        try:
            problem.solve(solver=name)
        except cp.error.SolverError as exc:
            failure = f"{name} failed ({str(exc).splitlines()[0]})"
            continue
        except ValueError as exc:
            # cvxpy cannot unpack a solver status it has no name for (HiGHS's "unknown" after numerical trouble)
            if not str(exc).startswith("Cannot unpack invalid solution"):
                raise
            failure = f"{name} stopped with an unknown status"
            continue
        status = str(problem.status)
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return status, name
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise InfeasibleError(f"{what}: the constraints cannot all hold ({status}); {hint}")
        if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
            raise InfeasibleError(f"{what}: the problem is unbounded ({status}); {hint}")
        failure = f"{name} ended with status {status}"
    raise SolverFailedError(f"{what}: no solution ({failure}); {hint}")


class SolverFailedError(InfeasibleError):
    """Every solver failed or stopped short: no solution found, which is not proof that none exists."""


FIT_MEASURES = ("mean_return", "volatility", "expected_growth", "horizon_cvar_95", "cdar_95", "maxdd_p95")


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
