"""Names of :mod:`mcalloc.optimize`, imported on first use (see ``__init__.py``)."""

from . import common, cutting, cvar, drawdown, objectives, run, scenarios, variance
from .common import Feasible, OptimizedWeights, Solvers
from .run import Optimization, OptimizedPortfolio, optimise, optimization_table
from .scenarios import Scenarios

__all__ = [
    "Feasible",
    "Optimization",
    "OptimizedPortfolio",
    "OptimizedWeights",
    "Scenarios",
    "Solvers",
    "common",
    "cutting",
    "cvar",
    "drawdown",
    "objectives",
    "optimise",
    "optimization_table",
    "run",
    "scenarios",
    "variance",
]
