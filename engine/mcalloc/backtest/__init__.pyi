"""Names of :mod:`mcalloc.backtest`, imported on first use (see ``__init__.py``)."""

from . import evaluate, filtering, forecasts, tables
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
from .tables import VALIDATION_COLUMNS, split_summary, verdicts

__all__ = [
    "VALIDATION_COLUMNS",
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
    "split_summary",
    "tables",
    "verdicts",
    "window_rows",
]
