"""The optimiser's tables: ``optimization.csv`` (each optimised mix judged on the main paths) and ``stability.csv``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mcalloc.config.optimize_schema import MaxGrowthObjective, Objective
from mcalloc.metrics.risk import cvar
from mcalloc.metrics.summary import book_cdar, book_volatility
from mcalloc.optimize.common import (
    FIT_MEASURES,
    OptimizedPortfolio,
)
from mcalloc.optimize.objectives import (
    maximised,
)
from mcalloc.portfolio.book_summary import BookSummary

__all__ = ["OPTIMIZATION_COLUMNS", "STABILITY_COLUMNS", "optimization_table", "stability_table"]

N_BOOTSTRAP = 200


PATH_MEASURES = frozenset({"horizon_cvar_95", "cdar_95", "maxdd_p95"})
"""The measures of a whole path: a parametric scenario's one period has none to set beside the paths' horizon."""


def _objective_alpha(objective: Objective) -> float:
    """The confidence level of the objective's own tail measure; NaN where it has none.

    ``max_growth`` has one only with a ``cvar_limit`` (its ``maxdd_limit`` has ``maxdd_alpha``).
    """
    if isinstance(objective, MaxGrowthObjective) and objective.cvar_limit is None:
        return math.nan
    return float(getattr(objective, "alpha", math.nan))


STABILITY_COLUMNS = [
    "portfolio",
    "asset",
    "weight",
    "batch_mean",
    "batch_sd",
    "batch_min",
    "batch_max",
    "n_batches",
    "n_paths_per_batch",
]


def stability_table(
    portfolios: Sequence[OptimizedPortfolio], asset_names: Sequence[str], n_paths: int, batches: int
) -> pd.DataFrame:
    """Each optimised weight beside its mean, spread and range over independent batches of paths."""
    rows = []
    for portfolio in portfolios:
        solved = portfolio.batch_weights[~np.isnan(portfolio.batch_weights).any(axis=1)]
        for asset, name in enumerate(asset_names):
            column = solved[:, asset] if solved.size else np.array([np.nan])
            rows.append(
                {
                    "portfolio": portfolio.name,
                    "asset": name,
                    "weight": float(portfolio.result.weights[asset]),
                    "batch_mean": float(np.mean(column)),
                    "batch_sd": float(np.std(column, ddof=1)) if column.size > 1 else math.nan,
                    "batch_min": float(np.min(column)),
                    "batch_max": float(np.max(column)),
                    "n_batches": int(solved.shape[0]),
                    "n_paths_per_batch": n_paths // batches if batches >= 2 else 0,  # 0 or 1: no batches
                }
            )
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


OPTIMIZATION_COLUMNS = [
    "portfolio",
    "objective",
    "alpha",
    "objective_value",
    "objective_recomputed",
    "optimality_gap",
    "grid_best",
    "grid_gap",
    "grid_points",
    "min_mean_return",
    *(f"{name}_fit" for name in FIT_MEASURES),
    *(f"{name}_new_paths" for name in FIT_MEASURES),
    "objective_new_paths",
    "objective_new_paths_se",
    "n_fit_paths",
    "n_objective_paths",
    "n_new_paths",
    "iterations",
    "status",
    "solver",
]


class _BookMeasures:
    """The measures of ``FIT_MEASURES`` for one portfolio from the full accounting on the evaluation paths."""

    def __init__(self, book: BookSummary, column: int, horizon_years: int, monthly_periods: bool = False) -> None:
        self.book, self.column, self.years = book, column, horizon_years
        self.monthly_periods = monthly_periods
        self.log_growth = np.log(np.maximum(book.performance[:, column], 1e-300))

    def mean_return(self, rows: np.ndarray | slice = slice(None)) -> float:
        book = self.book
        total = book.period_return_sum if book.period_return_sum is not None else book.log_return_sum
        return float(12.0 * total[rows, self.column].mean() / book.n_blocks)

    def volatility(self, rows: np.ndarray | slice = slice(None)) -> float:
        chosen = None if isinstance(rows, slice) else rows
        return book_volatility(self.book, self.years, self.column, chosen)

    def expected_growth(self, rows: np.ndarray | slice = slice(None)) -> float:
        return float(self.log_growth[rows].mean() / self.years)

    def horizon_cvar(self, rows: np.ndarray | slice = slice(None), alpha: float = 0.95) -> float:
        return cvar(-self.log_growth[rows], alpha)

    def all(self) -> dict[str, float]:
        """The measures, the drawdowns of month-end NAVs from month-end peaks as the optimiser's paths have them.

        The daily NAV's drawdowns (``metrics.csv``) run deeper by
        construction: set beside the optimiser's month-end ones they would
        read as the mix doing worse on paths it never saw.
        """
        month_end = self.book.month_end_max_drawdown
        return {
            "mean_return": self.mean_return(),
            "volatility": self.volatility(),
            "expected_growth": self.expected_growth(),
            "horizon_cvar_95": self.horizon_cvar(),
            "cdar_95": book_cdar(self.book, self.column, 0.95, month_end_peak=True),
            # never the daily drawdown in its place: a book without month-end ones has no like to give
            "maxdd_p95": math.nan if month_end is None else float(np.percentile(month_end[:, self.column], 95)),
        }

    def objective(self, objective: Objective, risk_free: float, rows: np.ndarray | slice = slice(None)) -> float:
        """The objective's own quantity where the full accounting defines it the same way (else NaN)."""
        kind = objective.kind
        if kind == "min_variance":
            return self.volatility(rows)
        if kind == "mean_variance":
            return self.mean_return(rows) - 0.5 * objective.risk_aversion * self.volatility(rows) ** 2  # type: ignore[union-attr]
        if kind == "max_sharpe":
            rate = risk_free if objective.risk_free is None else objective.risk_free  # type: ignore[union-attr]
            return (self.mean_return(rows) - rate) / self.volatility(rows)
        if kind == "min_cvar" and objective.form == "compounded":  # type: ignore[union-attr]
            return self.horizon_cvar(rows, objective.alpha)  # type: ignore[union-attr]
        if kind == "min_cvar" and self.monthly_periods and self.book.period_return_sum is not None:
            # uncompounded: minus the sum of the periods' simple returns, the book's months when they are the periods
            return cvar(-self.book.period_return_sum[rows, self.column], objective.alpha)  # type: ignore[union-attr]
        if kind == "max_growth":
            return self.expected_growth(rows)
        return math.nan


def optimization_table(
    portfolios: Sequence[OptimizedPortfolio],
    book: BookSummary,
    columns: dict[str, int],
    n_fit_paths: int,
    horizon_years: int,
    risk_free: float,
    seed: int,
    single_period: bool = False,
    monthly_periods: bool = False,
) -> pd.DataFrame:
    """One row per optimised portfolio: what the optimiser saw, and the same on the paths it never saw.

    ``single_period``: the optimiser's scenarios were one period each
    (``optimize.scenarios.kind: parametric``), so a horizon measure (the
    compounded ``min_cvar``) has no like on the paths, and the path
    measures of :data:`PATH_MEASURES` on the scenarios (of one period) none
    on the horizon: left empty. ``monthly_periods``: the scenarios' periods
    are months (monthly rebalancing), as the book's blocks are, so an
    uncompounded ``min_cvar`` (of the sum of period returns) has its like.

    ``*_new_paths`` come from the full accounting (daily steps, costs,
    taxes, flows) on the evaluation paths; ``objective_new_paths_se`` is
    the bootstrap standard error of ``objective_new_paths`` over those paths.
    """
    rows = []
    n_paths = book.terminal_value.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence((seed, 5)))
    m = min(n_paths, 20_000)
    samples = [rng.integers(0, n_paths, m) for _ in range(N_BOOTSTRAP)]
    for portfolio in portfolios:
        objective = portfolio.objective
        measures = _BookMeasures(book, columns[portfolio.name], horizon_years, monthly_periods and not single_period)
        value = portfolio.result.objective_value
        sign = -1.0 if maximised(objective) else 1.0
        horizon_measure = objective.kind == "min_cvar" and objective.form == "compounded"
        out_of_sample = math.nan if single_period and horizon_measure else measures.objective(objective, risk_free)
        se = math.nan
        if math.isfinite(out_of_sample):
            spread = np.std([measures.objective(objective, risk_free, rows) for rows in samples], ddof=1)
            se = float(spread) * math.sqrt(m / n_paths)
        row: dict[str, object] = {
            "portfolio": portfolio.name,
            "objective": objective.kind,
            "alpha": _objective_alpha(objective),
            "objective_value": value,
            "objective_recomputed": portfolio.recomputed,
            "optimality_gap": portfolio.result.gap,
            "grid_best": portfolio.grid_best,
            "grid_gap": sign * (value - portfolio.grid_best) if math.isfinite(portfolio.grid_best) else math.nan,
            "grid_points": portfolio.grid_points,
            "min_mean_return": math.nan if portfolio.floor is None else portfolio.floor,
            **{
                f"{name}_fit": math.nan if single_period and name in PATH_MEASURES else v
                for name, v in portfolio.fit.items()
            },
            **{f"{name}_new_paths": v for name, v in measures.all().items()},
            "objective_new_paths": out_of_sample,
            "objective_new_paths_se": se,
            "n_fit_paths": n_fit_paths,
            "n_objective_paths": portfolio.n_objective_paths,
            "n_new_paths": n_paths,
            "iterations": portfolio.result.iterations,
            "status": portfolio.result.status,
            "solver": portfolio.result.solver,
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=OPTIMIZATION_COLUMNS)
