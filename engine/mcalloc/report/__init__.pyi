"""Names of :mod:`mcalloc.report`, imported on first use (see ``__init__.py``)."""

from .compare import KEY_METRICS, comparison_table
from .page import build_comparison_report, build_report, write_report
from .validation import write_backtest_report

__all__ = [
    "KEY_METRICS",
    "build_comparison_report",
    "build_report",
    "comparison_table",
    "write_backtest_report",
    "write_report",
]
