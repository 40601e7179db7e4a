"""Names of :mod:`mcalloc.batch`, imported on first use (see ``__init__.py``)."""

from . import runner, sweep
from .runner import INDEX_METRICS, BatchOutcome, estimate, index_table, run_batch, run_key
from .sweep import Batch, BatchRun, batch_from_inputs, read_sweep

__all__ = [
    "INDEX_METRICS",
    "Batch",
    "BatchOutcome",
    "BatchRun",
    "batch_from_inputs",
    "estimate",
    "index_table",
    "read_sweep",
    "run_batch",
    "run_key",
    "runner",
    "sweep",
]
