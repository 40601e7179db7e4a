"""Names of :mod:`mcalloc.optimize`, imported on first use (see ``__init__.py``)."""

from . import common, cutting, cvar, drawdown, frontier, objectives, run, scenarios, tables, variance
from .common import Feasible, OptimizedPortfolio, OptimizedWeights, Solvers
from .run import Optimization, optimise
from .scenarios import Scenarios
from .tables import optimization_table

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
    "frontier",
    "objectives",
    "optimise",
    "optimization_table",
    "run",
    "scenarios",
    "tables",
    "variance",
]
