"""Batches: many scenarios from a sweep file, resumable and failure-isolated, with an index of results."""

from mcalloc.batch.runner import INDEX_METRICS, BatchOutcome, estimate, index_table, run_batch, run_key
from mcalloc.batch.sweep import Batch, BatchRun, batch_from_inputs, read_sweep

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
]
