"""The per-portfolio metrics table written to ``metrics.csv``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.metrics.risk import annualised_growth, cvar
from engine.portfolio.accounting import BookSummary

__all__ = ["METRIC_COLUMNS", "annual_returns", "metrics_table"]

METRIC_COLUMNS = [
    "portfolio",
    "cagr_median",
    "cagr_p05",
    "cagr_p95",
    "cagr_mean",
    "vol_ann",
    "maxdd_median",
    "maxdd_p95",
    "cvar_95_annual",
    "prob_loss",
    "terminal_wealth_p05",
    "terminal_wealth_p50",
    "terminal_wealth_p95",
    "terminal_wealth_mean",
    "n_paths",
]


def annual_returns(book: BookSummary) -> np.ndarray:
    """Calendar-year simple returns, shape (n_paths, n_years, n_portfolios)."""
    values = book.year_end_values
    previous = np.concatenate([np.ones_like(values[:, :1, :]), values[:, :-1, :]], axis=1)
    return np.asarray(values / previous - 1.0)


def _annualised_volatility(book: BookSummary, horizon_years: int) -> np.ndarray:
    """Per-path volatility of monthly log returns, annualised; (n_paths, n_portfolios)."""
    n = book.n_blocks
    mean = book.log_return_sum / n
    variance = (book.log_return_sumsq - n * mean * mean) / (n - 1)
    blocks_per_year = n / horizon_years
    return np.asarray(np.sqrt(np.maximum(variance, 0.0) * blocks_per_year))


def metrics_table(
    book: BookSummary,
    names: Sequence[str],
    initial_wealth: float,
    horizon_years: int,
) -> pd.DataFrame:
    """One row per portfolio with the columns in :data:`METRIC_COLUMNS`.

    ``vol_ann`` is the median over paths of the annualised volatility of
    monthly returns; ``cvar_95_annual`` pools every path's calendar-year
    returns; ``prob_loss`` is the share of paths ending below the initial
    wealth.
    """
    cagr = annualised_growth(book.terminal_value, horizon_years)
    yearly = annual_returns(book)
    volatility = _annualised_volatility(book, horizon_years)
    rows = []
    for column, name in enumerate(names):
        wealth = initial_wealth * book.terminal_value[:, column]
        drawdown = book.max_drawdown[:, column]
        rows.append(
            {
                "portfolio": name,
                "cagr_median": float(np.median(cagr[:, column])),
                "cagr_p05": float(np.percentile(cagr[:, column], 5)),
                "cagr_p95": float(np.percentile(cagr[:, column], 95)),
                "cagr_mean": float(np.mean(cagr[:, column])),
                "vol_ann": float(np.median(volatility[:, column])),
                "maxdd_median": float(np.median(drawdown)),
                "maxdd_p95": float(np.percentile(drawdown, 95)),
                "cvar_95_annual": cvar(-yearly[:, :, column], 0.95),
                "prob_loss": float(np.mean(wealth < initial_wealth)),
                "terminal_wealth_p05": float(np.percentile(wealth, 5)),
                "terminal_wealth_p50": float(np.percentile(wealth, 50)),
                "terminal_wealth_p95": float(np.percentile(wealth, 95)),
                "terminal_wealth_mean": float(np.mean(wealth)),
                "n_paths": int(wealth.size),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
