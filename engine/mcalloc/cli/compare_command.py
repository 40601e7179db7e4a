"""``mcalloc compare RUN_DIR RUN_DIR ...``: the same portfolios across runs, side by side.

For example the USD and the SEK investor, ISK against depot, monthly against
annual rebalancing: each run's key metrics per portfolio, with the settings
that differ between the runs as columns. The table is printed, and written
with a report (``compare.html``, figures) to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Any

from mcalloc.api import load
from mcalloc.cli.common import add_command, check_output_file
from mcalloc.errors import McallocError, OutputError
from mcalloc.report.compare import KEY_METRICS, MONEY_METRICS, comparison_table, is_money

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
    """``results/comparisons/<run>-vs-<run>...``; a name too long for a folder is cut, with a digest of it all.

    Cut alone, two comparisons whose names differed past the cut shared a
    folder, and the second replaced the first.
    """
    name = "-vs-".join(folder.resolve().name for folder in runs)
    if len(name) > _LONGEST_NAME:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        name = f"{name[: _LONGEST_NAME - 9]}-{digest}"
    return Path("results") / "comparisons" / name


_LONGEST_NAME = 120
"""Characters of a comparison's default folder name at most (file systems allow 255 bytes)."""


def _check_csv_target(target: Path) -> None:
    """Refuse a ``--csv`` that names a folder, or a file in a folder that does not exist, before any work."""
    check_output_file("--csv", target, "comparison.csv")
    if not target.parent.is_dir():
        raise OutputError(f"--csv {target}: the folder {target.parent} does not exist; create it or give another")


def _check_outside_runs(option: str, target: Path, runs: list[Path]) -> None:
    """Refuse a target inside one of the compared runs' folders: their files are checksummed, and
    a comparison's files (figures/ has names of its own) would change them or sit among them."""
    resolved = target.resolve()
    for folder in runs:
        if resolved.is_relative_to(folder.resolve()):
            raise OutputError(
                f"{option} {target}: inside the run folder {folder}, whose files are its results; "
                "give a folder outside it"
            )


def _compare(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise McallocError("compare: give at least two run folders")
    if args.csv is not None:
        _check_csv_target(args.csv)
    out = args.out if args.out is not None else _default_out(args.runs)
    # the comparison shows no single path: the per-path tables (the largest files) stay unread
    runs = [load(folder, with_paths=False) for folder in args.runs]
    # the checks below come after they are known to be runs (a folder that is not one is named as such),
    # before anything is written
    seen: dict[Path, Path] = {}
    for folder in args.runs:
        earlier = seen.setdefault(folder.resolve(), folder)
        if earlier is not folder:
            raise McallocError(f"compare: {folder} is given twice (as {earlier}); give each run folder once")
    # a --csv inside a run's folder was refused with any results folder (check_output_file)
    if args.out is not None and not args.no_report:
        _check_outside_runs("--out", args.out, args.runs)
    if not args.no_report:
        from mcalloc.results.writer import check_final

        # before the table is printed: a report that cannot be written is known now, not after
        check_final(out, "comparison.csv", "comparison folder")
    table = comparison_table(runs)
    shown = table.copy()
    for column in [*KEY_METRICS, *MONEY_METRICS]:
        if column in shown:
            style = "{:,.0f}" if is_money(column) else "{:.2%}"
            shown[column] = shown[column].map(style.format)
    print(shown.to_string(index=False))
    if args.csv is not None:
        temporary = args.csv.with_name(f".{args.csv.name}.tmp")
        try:
            table.to_csv(temporary, index=False, float_format="%.10g")
            os.replace(temporary, args.csv)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise OutputError(f"--csv {args.csv}: cannot be written ({error.strerror or error})") from None
        print(f"\ncomparison: {args.csv}")
    if not args.no_report:
        from mcalloc.report import build_comparison_report

        page = build_comparison_report(runs, table, out)
        print(f"\nreport: {page}")
    return 0
