"""Reports: ``report.html`` and its figures for a run, and a page comparing runs (matplotlib, Jinja2)."""

from mcalloc.report.compare import KEY_METRICS, comparison_table
from mcalloc.report.page import build_comparison_report, build_report, write_report
from mcalloc.report.validation import write_backtest_report

__all__ = [
    "KEY_METRICS",
    "build_comparison_report",
    "build_report",
    "comparison_table",
    "write_backtest_report",
    "write_report",
]
