"""mcalloc: Monte Carlo portfolio allocation between US large caps, small caps and international stocks.

The stages are wired in :mod:`mcalloc.pipeline`; each has its own subpackage.
"""

from importlib import metadata

try:
    __version__ = metadata.version("mcalloc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
