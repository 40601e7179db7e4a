"""Weight optimisation with cvxpy on the optimiser's own simulated paths (see :mod:`engine.optimize.run`)."""

from engine.optimize.common import Feasible, OptimizedWeights, Solvers
from engine.optimize.run import Optimization, OptimizedPortfolio, optimise, optimization_table
from engine.optimize.scenarios import Scenarios

__all__ = [
    "Feasible",
    "Optimization",
    "OptimizedPortfolio",
    "OptimizedWeights",
    "Scenarios",
    "Solvers",
    "optimise",
    "optimization_table",
]
