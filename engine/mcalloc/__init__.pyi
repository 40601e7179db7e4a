"""Names of :mod:`mcalloc`, imported on first use (see ``__init__.py``)."""

from . import (
    api,
    backtest,
    batch,
    cli,
    config,
    data,
    errors,
    metrics,
    models,
    optimize,
    pipeline,
    portfolio,
    report,
    results,
    scenario_warnings,
    simulation,
)
from .api import Run, RunFolderError, load, load_batch, run
from .errors import ConfigError, McallocError

__version__: str

__all__ = [
    "ConfigError",
    "McallocError",
    "Run",
    "RunFolderError",
    "__version__",
    "api",
    "backtest",
    "batch",
    "cli",
    "config",
    "data",
    "errors",
    "load",
    "load_batch",
    "metrics",
    "models",
    "optimize",
    "pipeline",
    "portfolio",
    "report",
    "results",
    "run",
    "scenario_warnings",
    "simulation",
]
