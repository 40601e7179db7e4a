"""Horizon analysis and per-path results: the tables a notebook or report draws its own pictures from.

``horizons.csv`` answers "how long must I hold this for it to be likely to
pay?": for every whole year ``h`` of the horizon, the share of paths losing
money over the first ``h`` years, the share ending below the reference
portfolio on the same path, and the median and 5th-percentile CAGR over
those ``h`` years. It reads each path's value at the end of each year (the
unit value, after fees and taxes), so it costs no extra simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.metrics.risk import annualised_growth
from engine.portfolio.accounting import BookSummary

__all__ = ["HORIZON_COLUMNS", "PATH_COLUMNS", "horizons_table", "paths_table"]

HORIZON_COLUMNS = [
    "portfolio",
    "years",
    "prob_loss",
    "prob_below_reference",
    "cagr_median",
    "cagr_p05",
    "n_paths",
]

PATH_COLUMNS = ["path", "portfolio", "terminal_wealth", "cagr", "max_drawdown", "taxes_paid", "trading_costs"]


def horizons_table(book: BookSummary, names: Sequence[str], reference: str | None) -> pd.DataFrame:
    """One row per portfolio and whole year of the horizon, see :data:`HORIZON_COLUMNS`."""
    values = book.year_end_values
    n_paths, n_years, _ = values.shape
    base = list(names).index(reference) if reference is not None else None
    rows = []
    for column, name in enumerate(names):
        for year in range(n_years):
            value = values[:, year, column]
            growth = annualised_growth(value, year + 1)
            below = float("nan") if base is None else float(np.mean(value < values[:, year, base] * (1 - 1e-6)))
            rows.append(
                {
                    "portfolio": name,
                    "years": year + 1,
                    "prob_loss": float(np.mean(value < 1.0)),
                    "prob_below_reference": below,
                    "cagr_median": float(np.median(growth)),
                    "cagr_p05": float(np.percentile(growth, 5)),
                    "n_paths": n_paths,
                }
            )
    return pd.DataFrame(rows, columns=HORIZON_COLUMNS)


def paths_table(book: BookSummary, names: Sequence[str], initial_wealth: float, horizon_years: int) -> pd.DataFrame:
    """One row per path and portfolio, see :data:`PATH_COLUMNS` (wealth and costs in currency)."""
    n_paths, n_portfolios = book.terminal_value.shape
    zeros = np.zeros((n_paths, n_portfolios))
    taxes = book.taxes_paid if book.taxes_paid is not None else zeros
    costs = book.costs_paid if book.costs_paid is not None else zeros
    return pd.DataFrame(
        {
            "path": np.repeat(np.arange(n_paths, dtype=np.int64), n_portfolios),
            "portfolio": pd.Categorical(np.tile(np.array(names, dtype=object), n_paths), categories=list(names)),
            "terminal_wealth": (initial_wealth * book.terminal_value).ravel(),
            "cagr": annualised_growth(book.performance, horizon_years).ravel(),
            "max_drawdown": book.max_drawdown.ravel(),
            "taxes_paid": (initial_wealth * taxes).ravel(),
            "trading_costs": (initial_wealth * costs).ravel(),
        },
        columns=PATH_COLUMNS,
    )
