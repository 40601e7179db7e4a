"""Metrics of simulated outcomes: pure functions and the results table."""

from mcalloc.metrics.risk import annualised_growth, cvar, value_at_risk
from mcalloc.metrics.summary import METRIC_COLUMNS, annual_losses, metrics_table

__all__ = ["METRIC_COLUMNS", "annual_losses", "annualised_growth", "cvar", "metrics_table", "value_at_risk"]
