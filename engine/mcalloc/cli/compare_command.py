"""``mcalloc compare RUN_DIR RUN_DIR ...``: the same portfolios across runs, side by side.

For example the USD and the SEK investor, ISK against depot, monthly against
annual rebalancing: each run's key metrics per portfolio, with the settings
that differ between the runs as columns. The table is printed, and written
with a report (``compare.html``, figures) to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mcalloc.api import load
from mcalloc.cli.common import add_command
from mcalloc.errors import McallocError
from mcalloc.report.compare import KEY_METRICS, comparison_table

__all__ = ["register"]

EXAMPLES = """examples:
  mcalloc run configs/examples/sweden.yaml --out results/sek
  mcalloc run configs/default.yaml --out results/usd
  mcalloc compare results/usd results/sek --out results/usd-vs-sek
  mcalloc compare results/usd results/sek --csv comparison.csv --no-report
"""


def register(commands: Any) -> None:
    """Add ``compare`` to the top-level sub-parsers."""
    help_text = "compare the portfolios of finished runs side by side (table and report)"
    compare = add_command(commands, "compare", help_text, __doc__, EXAMPLES)
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="results folders of finished runs")
    compare.add_argument(
        "--out",
        type=Path,
        help="folder for comparison.csv, compare.html and figures/ (default: results/comparisons/<run>-vs-<run>)",
    )
    compare.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    compare.add_argument("--no-report", action="store_true", help="print (and --csv) the table only")
    compare.set_defaults(handler=_compare)


def _default_out(runs: list[Path]) -> Path:
    name = "-vs-".join(folder.resolve().name for folder in runs)
    return Path("results") / "comparisons" / name[:120]


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
    if not args.no_report:
        from mcalloc.report import build_comparison_report

        page = build_comparison_report(runs, table, args.out if args.out is not None else _default_out(args.runs))
        print(f"\nreport: {page}")
    return 0
