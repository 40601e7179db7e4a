"""Command-line interface."""

from mcalloc.cli.main import main

__all__ = ["main"]
