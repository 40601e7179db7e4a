"""The per-portfolio metrics table written to ``metrics.csv``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mcalloc.metrics.risk import annualised_growth, cvar, pooled_volatility, tail_risk
from mcalloc.portfolio.book_summary import BookSummary

__all__ = ["METRIC_COLUMNS", "STANDARD_ERROR_COLUMNS", "annual_losses", "metrics_table", "with_standard_errors"]

METRIC_COLUMNS = [
    "portfolio",
    "cagr_median",
    "cagr_p05",
    "cagr_p95",
    "cagr_mean",
    "vol_ann",
    "vol_path_median",
    "maxdd_median",
    "maxdd_p90",
    "maxdd_p95",
    "maxdd_cvar95",
    "prob_drawdown_20",
    "prob_drawdown_30",
    "prob_drawdown_40",
    "cdar_95",
    "underwater_years_median",
    "underwater_years_p95",
    "prob_underwater_end",
    "sharpe",
    "sortino",
    "var_95_annual",
    "var_99_annual",
    "cvar_95_annual",
    "cvar_99_annual",
    "horizon_cvar_95",
    "prob_loss",
    "terminal_wealth_p05",
    "terminal_wealth_p50",
    "terminal_wealth_p95",
    "terminal_wealth_mean",
    "terminal_wealth_real_p05",
    "terminal_wealth_real_p50",
    "terminal_wealth_real_p95",
    "trading_costs_mean",
    "taxes_mean",
    "invested_mean",
    "mwr_median",
    "prob_shortfall",
    "prob_depleted",
    "rebalances_per_year",
    "n_paths",
]


Z_95 = 1.959963984540054
"""The standard normal's 97.5% quantile."""

STANDARD_ERROR_COLUMNS = [
    "cagr_median_se",
    "cagr_p05_se",
    "cagr_p95_se",
    "vol_ann_se",
    "maxdd_median_se",
    "maxdd_p95_se",
    "cvar_95_annual_se",
    "prob_loss_se",
]
"""Monte Carlo standard errors in ``metrics.csv``, each after its column (see :func:`with_standard_errors`)."""


def with_standard_errors(metrics: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` with bootstrap standard errors (from :func:`mcalloc.metrics.diversification.standard_errors`).

    Adds ``prob_loss_se``, the binomial standard error with Agresti and
    Coull's (1998) adjustment: ``sqrt(q (1 - q) / (n + z^2))`` for ``q = (n p +
    z^2 / 2) / (n + z^2)``, ``z = 1.96``. It is the plain ``sqrt(p (1 - p) / n)``
    for many paths, and unlike it is not 0 when no path or every path loses.
    Each ``<column>_se`` goes right after its column.
    """
    merged = metrics.merge(errors, on="portfolio", how="left")
    n = merged["n_paths"] + Z_95**2
    adjusted = (merged["prob_loss"] * merged["n_paths"] + Z_95**2 / 2) / n
    merged["prob_loss_se"] = np.sqrt(adjusted * (1.0 - adjusted) / n)
    order: list[str] = []
    for column in metrics.columns:
        order.append(column)
        if f"{column}_se" in merged.columns:
            order.append(f"{column}_se")
    return merged[order]


def annual_losses(book: BookSummary, column: int) -> np.ndarray:
    """Minus the calendar-year simple returns of one portfolio, (n_paths, n_years).

    One portfolio at a time, into one array: the pooled CVaR of millions of
    paths then needs no temporaries of the size of all portfolios' returns.
    """
    values = book.year_end_values[:, :, column]
    losses = np.empty(values.shape)
    losses[:, 0] = values[:, 0]
    # in float64 whatever the values' precision (they are kept in float32)
    np.divide(values[:, 1:], values[:, :-1], out=losses[:, 1:], dtype=np.float64)
    np.subtract(1.0, losses, out=losses)
    return losses


def book_volatility(
    book: BookSummary, horizon_years: int, column: int, rows: np.ndarray | slice | None = None
) -> float:
    """``vol_ann``: :func:`pooled_volatility` of one portfolio's monthly NAV returns (over ``rows`` of paths).

    Books built without the period sums fall back on the monthly log returns.
    """
    total = book.period_return_sum if book.period_return_sum is not None else book.log_return_sum
    squares = book.period_return_sumsq if book.period_return_sumsq is not None else book.log_return_sumsq
    chosen = slice(None) if rows is None else rows
    per_year = book.n_blocks / horizon_years
    return pooled_volatility(total[chosen, column], squares[chosen, column], book.n_blocks, per_year)


def _annualised_volatility(book: BookSummary, horizon_years: int, column: int) -> np.ndarray:
    """Per-path volatility of one portfolio's monthly log returns, annualised; (n_paths,)."""
    n = book.n_blocks
    mean = book.log_return_sum[:, column] / n
    variance = (book.log_return_sumsq[:, column] - n * mean * mean) / (n - 1)
    blocks_per_year = n / horizon_years
    return np.asarray(np.sqrt(np.maximum(variance, 0.0) * blocks_per_year))


def book_cdar(book: BookSummary, column: int, alpha: float, month_end_peak: bool = False) -> float:
    """Conditional drawdown at risk: the mean of the worst ``1 - alpha`` of month-end drawdowns, all paths pooled.

    Chekhlov, Uryasev and Zabarankin (2005) define CDaR on a path's
    drawdowns over time; here the drawdowns at every month end of every path
    form one sample. They are counted in bins of width ``1 / DRAWDOWN_BINS``
    (bin midpoints, the boundary bin taken in part), so the value is exact
    to within that width. Drawdowns are from the daily NAV's running peak,
    or with ``month_end_peak`` from the highest month-end NAV, as on the
    optimiser's monthly paths.
    """
    if book.drawdown_histogram is None:
        return float("nan")
    counts = book.drawdown_histogram[column, int(month_end_peak)].astype(float)[::-1]  # deepest first
    bins = counts.size
    tail = (1.0 - alpha) * counts.sum()
    before = np.cumsum(counts) - counts  # observations in deeper bins
    taken = np.clip(tail - before, 0.0, counts)
    midpoints = (np.arange(bins - 1, -1, -1) + 0.5) / bins
    midpoints[-1] = 0.0  # the shallowest bin mostly holds month ends at a peak: no drawdown, not half a bin
    return float(taken @ midpoints / taken.sum()) if taken.sum() > 0 else 0.0


def _underwater(book: BookSummary, column: int, horizon_years: int) -> dict[str, float]:
    """The longest time under water (years below a previous peak, in a row) and the share of paths ending there."""
    if book.longest_underwater is None or book.underwater_at_end is None:
        nan = float("nan")
        return {"underwater_years_median": nan, "underwater_years_p95": nan, "prob_underwater_end": nan}
    steps_per_year = book.n_steps / horizon_years
    years = book.longest_underwater[:, column] / steps_per_year
    return {
        "underwater_years_median": float(np.median(years)),
        "underwater_years_p95": float(np.percentile(years, 95)),
        "prob_underwater_end": float(np.mean(book.underwater_at_end[:, column] > 0)),
    }


def _ratios(losses: np.ndarray, risk_free: float) -> dict[str, float]:
    """Sharpe and Sortino ratios of calendar-year log returns (from ``losses``), pooled over paths and years.

    Excess return ``y = log(1 + R) - log(1 + r_f)`` for each year; Sharpe is
    ``mean(y) / sd(y)``, Sortino ``mean(y) / sqrt(mean(min(y, 0)^2))`` (the
    downside deviation below the risk-free rate, Sortino and Price 1994).
    """
    excess = np.log1p(-losses) - math.log1p(risk_free)
    spread = float(np.std(excess, ddof=1)) if excess.size > 1 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    mean = float(np.mean(excess))
    return {
        "sharpe": mean / spread if spread > 0 else float("nan"),
        "sortino": mean / downside if downside > 0 else float("nan"),
    }


def _flow_metrics(book: BookSummary, column: int, initial_wealth: float, horizon_years: int) -> dict[str, float]:
    """Money put in, money-weighted return, shortfall and depletion.

    Without flows the money put in is the initial wealth, the money-weighted
    return of a path is its CAGR, a shortfall is a loss, and nothing is
    depleted.
    """
    if book.invested is None or book.money_weighted is None or book.depleted is None:
        terminal = book.terminal_value[:, column]
        return {
            "invested_mean": initial_wealth,
            "mwr_median": float(np.median(annualised_growth(terminal, horizon_years))),
            "prob_shortfall": float(np.mean(terminal < 1.0)),
            "prob_depleted": 0.0,
        }
    invested = book.invested[:, column]
    return {
        "invested_mean": initial_wealth * float(np.mean(invested)),
        "mwr_median": float(np.nanmedian(book.money_weighted[:, column])),
        "prob_shortfall": float(np.mean(book.terminal_value[:, column] < invested)),
        "prob_depleted": float(np.mean(book.depleted[:, column])),
    }


def metrics_table(
    book: BookSummary,
    names: Sequence[str],
    initial_wealth: float,
    horizon_years: int,
    risk_free: float = 0.0,
    inflation: float = 0.0,
) -> pd.DataFrame:
    """One row per portfolio with the columns in :data:`METRIC_COLUMNS`.

    ``risk_free`` and ``inflation`` are yearly rates; real wealth is nominal
    wealth divided by ``(1 + inflation) ** horizon_years``.

    ``vol_ann`` is the annualised volatility of monthly returns pooled over
    paths and months (:func:`book_volatility`), ``vol_path_median`` the
    median over paths of each path's own; ``cvar_95_annual`` pools every path's calendar-year
    returns; ``prob_loss`` is the share of paths ending below the initial
    wealth.
    """
    deflator = (1.0 + inflation) ** horizon_years
    rows: list[dict[str, object]] = []
    same = book.repeated_columns
    # one portfolio at a time: temporaries of (n_paths,) rather than (n_paths, n_portfolios)
    for column, name in enumerate(names):
        if same[column] != column:  # the same paths' results as an earlier portfolio: the same metrics
            rows.append({**rows[same[column]], "portfolio": name})
            continue
        cagr = annualised_growth(book.performance[:, column], horizon_years)
        volatility = _annualised_volatility(book, horizon_years, column)
        wealth = initial_wealth * book.terminal_value[:, column]
        drawdown = book.max_drawdown[:, column]
        losses = annual_losses(book, column)
        # several percentiles of one array from one partition: the same values as one call each
        cagr_p05, cagr_p95 = (float(v) for v in np.percentile(cagr, [5, 95]))
        maxdd_p90, maxdd_p95 = (float(v) for v in np.percentile(drawdown, [90, 95]))
        wealth_p05, wealth_p50, wealth_p95 = (float(v) for v in np.percentile(wealth, [5, 50, 95]))
        (var_95, cvar_95), (var_99, cvar_99) = tail_risk(losses, (0.95, 0.99))
        rows.append(
            {
                "portfolio": name,
                "cagr_median": float(np.median(cagr)),
                "cagr_p05": cagr_p05,
                "cagr_p95": cagr_p95,
                "cagr_mean": float(np.mean(cagr)),
                "vol_ann": book_volatility(book, horizon_years, column),
                "vol_path_median": float(np.median(volatility)),
                "maxdd_median": float(np.median(drawdown)),
                "maxdd_p90": maxdd_p90,
                "maxdd_p95": maxdd_p95,
                "maxdd_cvar95": cvar(drawdown, 0.95),
                "prob_drawdown_20": float(np.mean(drawdown > 0.20)),
                "prob_drawdown_30": float(np.mean(drawdown > 0.30)),
                "prob_drawdown_40": float(np.mean(drawdown > 0.40)),
                "cdar_95": book_cdar(book, column, 0.95),
                **_underwater(book, column, horizon_years),
                **_ratios(losses, risk_free),
                "var_95_annual": var_95,
                "var_99_annual": var_99,
                "cvar_95_annual": cvar_95,
                "cvar_99_annual": cvar_99,
                "horizon_cvar_95": cvar(1.0 - book.performance[:, column], 0.95),
                "prob_loss": float(np.mean(book.performance[:, column] < 1.0)),
                "terminal_wealth_p05": wealth_p05,
                "terminal_wealth_p50": wealth_p50,
                "terminal_wealth_p95": wealth_p95,
                "terminal_wealth_mean": float(np.mean(wealth)),
                "terminal_wealth_real_p05": wealth_p05 / deflator,
                "terminal_wealth_real_p50": wealth_p50 / deflator,
                "terminal_wealth_real_p95": wealth_p95 / deflator,
                "trading_costs_mean": (
                    initial_wealth * float(np.mean(book.costs_paid[:, column])) if book.costs_paid is not None else 0.0
                ),
                "taxes_mean": (
                    initial_wealth * float(np.mean(book.taxes_paid[:, column])) if book.taxes_paid is not None else 0.0
                ),
                "rebalances_per_year": (
                    float(np.mean(book.rebalances[:, column], dtype=np.float64)) / horizon_years
                    if book.rebalances is not None
                    else 0.0
                ),
                **_flow_metrics(book, column, initial_wealth, horizon_years),
                "n_paths": int(wealth.size),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
