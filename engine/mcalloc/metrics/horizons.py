"""Horizon analysis and per-path results: the tables a notebook or report draws its own pictures from.

``horizons.csv`` answers "how long must I hold this for it to be likely to
pay?": for every whole year ``h`` of the horizon, the share of paths losing
money over the first ``h`` years, the share ending below the reference
portfolio on the same path, and the median and 5th-percentile CAGR over
those ``h`` years. It reads each path's value at the end of each year (the
unit value, after fees and taxes), so it costs no extra simulation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
import pandas as pd

from mcalloc.metrics.risk import annualised_growth
from mcalloc.portfolio.book_summary import BookSummary

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

PATH_COLUMNS = [
    "path",
    "portfolio",
    "terminal_wealth",
    "cagr",
    "max_drawdown",
    "longest_underwater_years",
    "taxes_paid",
    "trading_costs",
]


def horizons_table(book: BookSummary, names: Sequence[str], reference: str | None, n_jobs: int = 1) -> pd.DataFrame:
    """One row per portfolio and whole year of the horizon, see :data:`HORIZON_COLUMNS`.

    The year-end values are read a year at a time and copied to one
    contiguous row per portfolio (a path's year holds every portfolio side
    by side, so this reads the array once); each year's portfolios run on
    ``n_jobs`` threads, the table not depending on it. At a million paths and
    eight portfolios this took 12 s read in place, portfolio by portfolio.
    """
    from mcalloc.simulation.parallel import thread_map

    values = book.year_end_values
    n_years = values.shape[1]
    base = list(names).index(reference) if reference is not None else None
    by_year = []
    # one buffer for every year: a fresh one a year costs more in page faults than the copy itself
    # float64 whatever the stored values' precision (float32): growth rates and quantiles at full precision
    portfolios = np.empty((values.shape[2], values.shape[0]))
    # the horizon's own year end is read at full precision, as metrics.csv reads it (book.performance), so the
    # last year's row and metrics.csv agree to the last digit; the stored year ends are float32
    horizon_end = n_years - 1 if book.n_blocks == 12 * n_years else None
    for year in range(n_years):
        np.copyto(portfolios, (book.performance if year == horizon_end else values[:, year, :]).T)
        floor = None if base is None else portfolios[base] * (1 - 1e-6)
        cell = partial(_horizon_row, portfolios, floor, year + 1, names)
        by_year.append(thread_map(cell, range(len(names)), n_jobs, "mcalloc-horizons"))
    rows = [by_year[year][column] for column in range(len(names)) for year in range(n_years)]
    return pd.DataFrame(rows, columns=HORIZON_COLUMNS)


def _horizon_row(
    portfolios: np.ndarray, floor: np.ndarray | None, years: int, names: Sequence[str], column: int
) -> dict[str, object]:
    """The row of ``horizons.csv`` for portfolio ``column`` over the first ``years`` years."""
    value = portfolios[column]
    growth = annualised_growth(value, years)
    return {
        "portfolio": names[column],
        "years": years,
        "prob_loss": float(np.mean(value < 1.0)),
        "prob_below_reference": float("nan") if floor is None else float(np.mean(value < floor)),
        "cagr_median": float(np.median(growth)),
        "cagr_p05": float(np.percentile(growth, 5)),
        "n_paths": value.size,
    }


def paths_table(
    book: BookSummary, names: Sequence[str], initial_wealth: float, horizon_years: int
) -> Iterator[pd.DataFrame]:
    """One table per portfolio, a row per path, see :data:`PATH_COLUMNS` (wealth and costs in currency).

    Yielded portfolio by portfolio so that a million-path run never holds
    all rows at once; the writer appends each as a row group.
    """
    n_paths = book.terminal_value.shape[0]
    zeros = np.zeros(n_paths)
    for column in range(len(names)):
        taxes = book.taxes_paid[:, column] if book.taxes_paid is not None else zeros
        costs = book.costs_paid[:, column] if book.costs_paid is not None else zeros
        yield pd.DataFrame(
            {
                "path": np.arange(n_paths, dtype=np.int64),
                "portfolio": pd.Categorical.from_codes(
                    np.full(n_paths, column, dtype=np.int32), categories=pd.Index(list(names))
                ),
                "terminal_wealth": initial_wealth * book.terminal_value[:, column],
                "cagr": annualised_growth(book.performance[:, column], horizon_years),
                "max_drawdown": book.max_drawdown[:, column],
                "longest_underwater_years": (
                    book.longest_underwater[:, column] * horizon_years / book.n_steps
                    if book.longest_underwater is not None
                    else np.full(n_paths, np.nan)
                ),
                "taxes_paid": initial_wealth * taxes,
                "trading_costs": initial_wealth * costs,
            },
            columns=PATH_COLUMNS,
        )
