"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLES", "add_command", "add_config_command"]

EXAMPLES = {
    "run": [
        "mcalloc run configs/default.yaml",
        "mcalloc run configs/default.yaml --set simulation.n_paths=100000 --out results/big",
        "mcalloc run configs/examples/sweden.yaml --set portfolio.rebalance=annual -q",
        "mcalloc run configs/default.yaml --log-file run.log 2> progress.log",
    ],
    "validate": ["mcalloc validate configs/default.yaml", "mcalloc validate my.yaml --set simulation.n_paths=500"],
    "show-config": ["mcalloc show-config configs/examples/sweden.yaml"],
    "fit": ["mcalloc fit configs/examples/fit_etfs.yaml", "mcalloc fit configs/examples/fit_etfs.yaml --csv fit.csv"],
    "calibrate": ["mcalloc calibrate configs/examples/fit_etfs.yaml --out configs/my_calibrated.yaml"],
    "backtest": [
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2015-01-01",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2012-01-01 --refit-every 12 --models fhs,dcc",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2015-01-01 --models dcc,fhs --marginals t,skewt",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2008-01-01,2012-01-01,2016-01-01 --refit-every 12",
    ],
}
"""Shown under each command's ``--help``."""


def add_config_command(
    commands: Any,
    name: str,
    help_text: str,
    config_help: str = "scenario YAML file",
    example: str = "simulation.n_paths=2000",
) -> argparse.ArgumentParser:
    """A sub-command taking a scenario file and repeatable ``--set KEY=VALUE`` overrides."""
    examples = EXAMPLES.get(name)
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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


def add_command(commands: Any, name: str, help_text: str, description: str | None, examples: str) -> Any:
    """A sub-command whose ``--help`` shows ``description`` as written and ends with ``examples``."""
    return commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
