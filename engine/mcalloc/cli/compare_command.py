"""``mcalloc compare RUN_DIR RUN_DIR ...``: the same portfolios across runs, side by side.

For example the USD and the SEK investor, ISK against depot, monthly against
annual rebalancing: each run's key metrics per portfolio, with the settings
that differ between the runs as columns, printed and (``--csv``) written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from mcalloc.api import Run, load
from mcalloc.errors import McallocError

__all__ = ["comparison_table", "register"]

KEY_METRICS = [
    "cagr_median",
    "cagr_p05",
    "vol_ann",
    "maxdd_median",
    "maxdd_p95",
    "cvar_95_annual",
    "prob_loss",
    "terminal_wealth_p50",
]

EXAMPLES = """examples:
  mcalloc run configs/examples/sweden.yaml --out results/sek
  mcalloc run configs/default.yaml --out results/usd
  mcalloc compare results/usd results/sek --csv comparison.csv
"""


def register(commands: Any) -> None:
    """Add ``compare`` to the top-level sub-parsers."""
    compare = commands.add_parser(
        "compare",
        help="compare the portfolios of finished runs side by side",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="results folders of finished runs")
    compare.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    compare.set_defaults(handler=_compare)


def _flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Dotted keys as ``--set`` writes them (list items by index), the model summarised by a hash."""
    if prefix == "model.":
        text = json.dumps(data, sort_keys=True, default=str)
        return {"model": hashlib.sha256(text.encode()).hexdigest()[:8]}
    if isinstance(data, dict):
        flat: dict[str, object] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        flat = {}
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}{index}."))
        return flat
    return {prefix.rstrip("."): data if not isinstance(data, list) else str(data)}


IGNORED = ("output.", "description", "name")
"""Settings that do not change the numbers."""


def _differences(runs: list[Run]) -> list[str]:
    """Config keys whose values are not the same in every run (labels, names and the output folder aside)."""
    flat = [_flatten(run.config) for run in runs]
    keys = list(dict.fromkeys(key for one in flat for key in one))
    return [
        key
        for key in keys
        if not key.startswith(IGNORED) and not key.endswith(".label") and len({repr(one.get(key)) for one in flat}) > 1
    ]


def comparison_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run, portfolio and currency: the run, the settings that differ, the key metrics."""
    differing = _differences(runs)
    frames = []
    for run in runs:
        flat = _flatten(run.config)
        metrics = run.metrics.copy()
        if "currency" not in metrics:
            metrics.insert(1, "currency", run.config.get("currency", {}).get("base", "USD"))
        table = metrics[["portfolio", "currency", *(m for m in KEY_METRICS if m in metrics)]].copy()
        table.insert(0, "run", run.folder.name)
        table.insert(1, "scenario", run.manifest.get("scenario"))
        for position, key in enumerate(differing, start=2):
            table.insert(position, key, str(flat.get(key)))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _compare(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise McallocError("compare: give at least two run folders")
    runs = [load(folder) for folder in args.runs]
    table = comparison_table(runs)
    shown = table.copy()
    for column in KEY_METRICS:
        if column in shown:
            style = "{:,.0f}" if column.startswith("terminal_wealth") else "{:.2%}"
            shown[column] = shown[column].map(style.format)
    print(shown.to_string(index=False))
    if args.csv is not None:
        table.to_csv(args.csv, index=False, float_format="%.10g")
        print(f"\ncomparison: {args.csv}")
    return 0
