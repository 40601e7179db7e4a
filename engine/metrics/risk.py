"""Risk and return metrics: pure functions of simulated outcomes.

Conventions: returns and losses are decimal fractions; a loss is a negative
return (``loss = -return``); drawdowns and CVaR are reported as positive
fractions. ``alpha`` is the confidence level (0.95 looks at the worst 5%).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["annualised_growth", "cvar", "value_at_risk"]


def _tail_index(n: int, alpha: float) -> int:
    # the guard keeps alpha * n = 9500.000000000002 from rounding up to 9501
    return max(math.ceil(alpha * n - 1e-9), 1) - 1


def value_at_risk(losses: np.ndarray, alpha: float) -> float:
    """The ``alpha``-quantile of ``losses``: the smallest loss ``v`` with P(L <= v) >= alpha."""
    flat = np.asarray(losses, dtype=float).ravel()
    return float(np.partition(flat, _tail_index(flat.size, alpha))[_tail_index(flat.size, alpha)])


def cvar(losses: np.ndarray, alpha: float) -> float:
    """Conditional value at risk of equally likely scenario losses.

    Uses the Rockafellar-Uryasev (2000) form
    ``CVaR = VaR + E[(L - VaR)^+] / (1 - alpha)``, which equals the minimum
    over ``t`` of ``t + E[(L - t)^+] / (1 - alpha)``: exactly what a
    scenario-based CVaR optimiser minimises.

    Parameters
    ----------
    losses
        ndarray of any shape; every entry is one equally likely scenario.
    alpha
        Confidence level in (0, 1).
    """
    flat = np.asarray(losses, dtype=float).ravel()
    var = value_at_risk(flat, alpha)
    excess = np.maximum(flat - var, 0.0).mean()
    return float(var + excess / (1.0 - alpha))


def annualised_growth(growth: np.ndarray, years: float) -> np.ndarray:
    """Compound annual growth rate from total growth factors over ``years``."""
    return np.asarray(np.power(np.maximum(growth, 0.0), 1.0 / years) - 1.0)
