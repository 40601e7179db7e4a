"""mcalloc: Monte Carlo portfolio allocation between US large caps, small caps and international stocks.

The stages are wired in :mod:`mcalloc.pipeline`; each has its own subpackage.
For notebooks and reports: :func:`run` a scenario or :func:`load` a finished
run's folder (:mod:`mcalloc.api`), or :func:`load_batch` a batch's index.

The package's names, and each subpackage's, are imported on first use (their
``__init__.pyi`` lists them): a simulation worker that unpickles a model loads
the modules it runs, not the fitting, reporting and optimising ones.
"""

from importlib import metadata

import lazy_loader

try:
    __version__ = metadata.version("mcalloc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__getattr__, _, _names = lazy_loader.attach_stub(__name__, __file__)
__all__ = [*_names, "__version__"]
del _names


def __dir__() -> list[str]:
    return list(__all__)
