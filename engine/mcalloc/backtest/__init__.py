"""Out-of-sample backtests of the generator: fit before a split, forecast after it, check what happened."""

from mcalloc.backtest.evaluate import (
    BacktestPlan,
    Variant,
    VariantResult,
    evaluate_variant,
    first_test_row,
    parse_splits,
)
from mcalloc.backtest.filtering import FilteredStates, filter_states
from mcalloc.backtest.forecasts import HorizonForecasts, Targets, forecast, window_rows
from mcalloc.backtest.tables import VALIDATION_COLUMNS, split_summary, verdicts

__all__ = [
    "VALIDATION_COLUMNS",
    "BacktestPlan",
    "FilteredStates",
    "HorizonForecasts",
    "Targets",
    "Variant",
    "VariantResult",
    "evaluate_variant",
    "filter_states",
    "first_test_row",
    "forecast",
    "parse_splits",
    "split_summary",
    "verdicts",
    "window_rows",
]
