"""Names of :mod:`mcalloc.metrics`, imported on first use (see ``__init__.py``)."""

from . import calibration, distributions, diversification, fan, forecast_tests, horizons, risk, summary
from .risk import annualised_growth, cvar, value_at_risk
from .summary import METRIC_COLUMNS, annual_losses, metrics_table

__all__ = [
    "METRIC_COLUMNS",
    "annual_losses",
    "annualised_growth",
    "calibration",
    "cvar",
    "distributions",
    "diversification",
    "fan",
    "forecast_tests",
    "horizons",
    "metrics_table",
    "risk",
    "summary",
    "value_at_risk",
]
