"""mcalloc: Monte Carlo portfolio allocation between US large caps, small caps and international stocks.

The stages are wired in :mod:`mcalloc.pipeline`; each has its own subpackage.
For notebooks and reports: :func:`run` a scenario or :func:`load` a finished
run's folder (:mod:`mcalloc.api`), or :func:`load_batch` a batch's index.
"""

from importlib import metadata

try:
    __version__ = metadata.version("mcalloc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from mcalloc.api import Run, RunFolderError, load, load_batch, run

__all__ = ["Run", "RunFolderError", "__version__", "load", "load_batch", "run"]
