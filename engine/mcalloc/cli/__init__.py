"""Command-line interface."""

from mcalloc.hugepages import advise_numpy

# before anything imports numpy, which reads the choice once (see mcalloc.hugepages)
advise_numpy()

from mcalloc.cli.main import main  # noqa: E402

__all__ = ["main"]
