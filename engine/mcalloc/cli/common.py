"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_config_command"]


def add_config_command(
    commands: Any,
    name: str,
    help_text: str,
    config_help: str = "scenario YAML file",
    example: str = "simulation.n_paths=2000",
) -> argparse.ArgumentParser:
    """A sub-command taking a scenario file and repeatable ``--set KEY=VALUE`` overrides."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("config", type=Path, help=config_help)
    sub.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. {example} (repeatable)",
    )
    return sub
