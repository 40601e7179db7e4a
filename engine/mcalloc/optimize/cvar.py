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
"""

from __future__ import annotations

import numpy as np

from mcalloc.optimize.cutting import ConvexMeasure, tail_mass
from mcalloc.optimize.scenarios import Scenarios

__all__ = ["growth_measure", "horizon_cvar_measure"]


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
        growth = periods @ weights
        losses = -np.log(growth).sum(axis=1)
        index, mass = tail_mass(losses, alpha)
        gradients = (periods[index] / growth[index][:, :, None]).sum(axis=1)
        return float(mass @ losses[index]), -(mass @ gradients)

    return ConvexMeasure(f"CVaR{alpha * 100:g} of the horizon log loss", oracle)


def growth_measure(scenarios: Scenarios) -> ConvexMeasure:
    """Minus the expected annualised log growth (:meth:`Scenarios.expected_growth`), for maximising it."""
    periods = scenarios.periods()
    scale = 1.0 / (scenarios.n_paths * scenarios.years)

    def oracle(weights: np.ndarray) -> tuple[float, np.ndarray]:
        growth = periods @ weights
        value = -float(np.log(growth).sum()) * scale
        gradient = -np.einsum("pka,pk->a", periods, 1.0 / growth) * scale
        return value, gradient

    return ConvexMeasure("minus the expected log growth", oracle)
