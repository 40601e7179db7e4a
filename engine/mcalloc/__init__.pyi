"""Names of :mod:`mcalloc`, imported on first use (see ``__init__.py``)."""

from .api import Run, RunFolderError, load, load_batch, run

__version__: str

__all__ = ["Run", "RunFolderError", "__version__", "load", "load_batch", "run"]
