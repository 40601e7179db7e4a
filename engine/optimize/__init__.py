"""Weight optimisation with cvxpy."""

from engine.optimize.problems import MinCvarProblem, MinVarianceProblem, OptimizedWeights, WeightBounds

__all__ = ["MinCvarProblem", "MinVarianceProblem", "OptimizedWeights", "WeightBounds"]
