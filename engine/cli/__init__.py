"""Command-line interface."""

from engine.cli.main import main

__all__ = ["main"]
