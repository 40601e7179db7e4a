"""``mcalloc report RUN_DIR``: draw a finished run's report.html and figures again from its saved results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mcalloc.cli.common import add_command

__all__ = ["register"]

EXAMPLES = """examples:
  mcalloc report results/default/20261201T120000Z-6e107716
  mcalloc run configs/default.yaml --set output.report=false -q | xargs mcalloc report
"""


def register(commands: Any) -> None:
    """Add ``report`` to the top-level sub-parsers."""
    help_text = "rebuild a finished run's report.html and figures/ from its saved results"
    report = add_command(commands, "report", help_text, __doc__, EXAMPLES)
    report.add_argument("run", type=Path, metavar="RUN_DIR", help="results folder of a finished run")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from mcalloc.report import build_report

    print(f"report: {build_report(args.run)}")
    return 0
