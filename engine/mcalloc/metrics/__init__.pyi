"""Names of :mod:`mcalloc.metrics`, imported on first use (see ``__init__.py``)."""

from .risk import annualised_growth, cvar, value_at_risk
from .summary import METRIC_COLUMNS, annual_losses, metrics_table

__all__ = ["METRIC_COLUMNS", "annual_losses", "annualised_growth", "cvar", "metrics_table", "value_at_risk"]
