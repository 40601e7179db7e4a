"""Names of :mod:`mcalloc.report`, imported on first use (see ``__init__.py``)."""

from . import answer, compare, figures, frontier, page, tables, validation
from .compare import KEY_METRICS, MONEY_METRICS, comparison_table
from .page import build_comparison_report, build_report, write_report
from .validation import write_backtest_report

__all__ = [
    "KEY_METRICS",
    "MONEY_METRICS",
    "answer",
    "build_comparison_report",
    "build_report",
    "compare",
    "comparison_table",
    "figures",
    "frontier",
    "page",
    "tables",
    "validation",
    "write_backtest_report",
    "write_report",
]
