"""Weight optimisation with cvxpy on the optimiser's own simulated paths (see :mod:`mcalloc.optimize.run`)."""

from mcalloc.optimize.common import Feasible, OptimizedWeights, Solvers
from mcalloc.optimize.run import Optimization, OptimizedPortfolio, optimise, optimization_table
from mcalloc.optimize.scenarios import Scenarios

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
