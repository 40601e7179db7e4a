"""Names of :mod:`mcalloc.backtest`, imported on first use (see ``__init__.py``)."""

from . import evaluate, filtering, forecasts, run, tables
from .evaluate import (
    BacktestPlan,
    Variant,
    VariantResult,
    evaluate_variant,
    first_test_row,
    parse_splits,
)
from .filtering import FilteredStates, filter_states
from .forecasts import HorizonForecasts, Targets, forecast, window_rows
from .run import BacktestOutcome, run_backtest
from .tables import VALIDATION_COLUMNS, split_summary, verdicts

__all__ = [
    "VALIDATION_COLUMNS",
    "BacktestOutcome",
    "BacktestPlan",
    "FilteredStates",
    "HorizonForecasts",
    "Targets",
    "Variant",
    "VariantResult",
    "evaluate",
    "evaluate_variant",
    "filter_states",
    "filtering",
    "first_test_row",
    "forecast",
    "forecasts",
    "parse_splits",
    "run",
    "run_backtest",
    "split_summary",
    "tables",
    "verdicts",
    "window_rows",
]
