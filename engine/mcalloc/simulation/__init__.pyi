"""Names of :mod:`mcalloc.simulation`, imported on first use (see ``__init__.py``)."""

from . import benchmark, collect, currency, distributed, kernels, parallel, paths, resources, workers
from .collect import ChunkResult
from .paths import SimulationPlan, chunk_sizes, run_simulation, simulate_chunk

__all__ = [
    "ChunkResult",
    "SimulationPlan",
    "benchmark",
    "chunk_sizes",
    "collect",
    "currency",
    "distributed",
    "kernels",
    "parallel",
    "paths",
    "resources",
    "run_simulation",
    "simulate_chunk",
    "workers",
]
