"""Names of :mod:`mcalloc.simulation`, imported on first use (see ``__init__.py``)."""

from .paths import ChunkResult, SimulationPlan, chunk_sizes, run_simulation, simulate_chunk

__all__ = ["ChunkResult", "SimulationPlan", "chunk_sizes", "run_simulation", "simulate_chunk"]
