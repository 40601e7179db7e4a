"""CVaR of horizon outcomes across paths, and expected growth under risk limits.

The compounded loss of a path is minus its horizon log growth
``G(w) = sum_k log(P_k @ w)`` (:mod:`mcalloc.optimize.scenarios`), convex in
the weights, with gradient ``-sum_k P_k / (P_k @ w)``; the uncompounded loss
is minus the sum of the period returns, linear. Their CVaR (Rockafellar and
Uryasev 2000) is convex; its subgradient is the tail's average gradient
(:func:`mcalloc.optimize.cutting.tail_mass`). Expected growth ``E[G] / years``
is concave. All are solved by cutting planes, exactly: the reported
objective is the measure of the returned weights, the ``gap`` its distance
from a proven lower bound.

``log`` is not defined where a period's growth ``P_k @ w`` is zero or
negative, which short positions can reach. The oracles continue it below
:data:`GROWTH_FLOOR` along its tangent there: still concave, finite and
steep, so a mix that loses everything on a path has that path among the
worst (its NaN would otherwise be sorted out of the tail as the best), and
the cuts lead the solver away from it. Above the floor nothing changes.
"""

from __future__ import annotations

import numpy as np

from mcalloc.optimize.cutting import ConvexMeasure, tail_mass
from mcalloc.optimize.scenarios import Scenarios

__all__ = ["GROWTH_FLOOR", "continued_log", "growth_measure", "horizon_cvar_measure"]

GROWTH_FLOOR = 1e-6
"""The growth factor below which :func:`continued_log` follows the tangent of ``log`` (a period losing 99.9999%)."""


def continued_log(growth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(growth)`` and its derivative, continued linearly below :data:`GROWTH_FLOOR` (any sign)."""
    held = np.maximum(growth, GROWTH_FLOOR)
    slopes = 1.0 / held
    logs = np.log(held)
    below = growth < GROWTH_FLOOR
    if below.any():
        logs += np.where(below, (growth - GROWTH_FLOOR) * slopes, 0.0)
    return logs, slopes


def horizon_cvar_measure(scenarios: Scenarios, alpha: float, compounded: bool = True) -> ConvexMeasure:
    """CVaR at ``alpha`` of the horizon loss, as :meth:`Scenarios.horizon_cvar` computes it."""
    periods = scenarios.periods()
    if not compounded:
        sums = (periods - 1.0).sum(axis=1)

        def linear(weights: np.ndarray) -> tuple[float, np.ndarray]:
            losses = -(sums @ weights)
            index, mass = tail_mass(losses, alpha)
            return float(mass @ losses[index]), -(mass @ sums[index])

        return ConvexMeasure(f"CVaR{alpha * 100:g} of the summed period returns", linear)

    def oracle(weights: np.ndarray) -> tuple[float, np.ndarray]:
        logs, slopes = continued_log(periods @ weights)
        losses = -logs.sum(axis=1)
        index, mass = tail_mass(losses, alpha)
        gradients = (periods[index] * slopes[index][:, :, None]).sum(axis=1)
        return float(mass @ losses[index]), -(mass @ gradients)

    return ConvexMeasure(f"CVaR{alpha * 100:g} of the horizon log loss", oracle)


def growth_measure(scenarios: Scenarios) -> ConvexMeasure:
    """Minus the expected annualised log growth (:meth:`Scenarios.expected_growth`), for maximising it."""
    periods = scenarios.periods()
    scale = 1.0 / (scenarios.n_paths * scenarios.years)

    def oracle(weights: np.ndarray) -> tuple[float, np.ndarray]:
        logs, slopes = continued_log(periods @ weights)
        value = -float(logs.sum()) * scale
        gradient = -np.einsum("pka,pk->a", periods, slopes) * scale
        return value, gradient

    return ConvexMeasure("minus the expected log growth", oracle)
