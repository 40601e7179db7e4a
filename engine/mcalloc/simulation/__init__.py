"""Monte Carlo simulation of asset paths and the portfolios run along them."""

from mcalloc.simulation.paths import ChunkResult, SimulationPlan, chunk_sizes, run_simulation, simulate_chunk

__all__ = ["ChunkResult", "SimulationPlan", "chunk_sizes", "run_simulation", "simulate_chunk"]
