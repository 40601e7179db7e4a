"""What a mix buys over a reference portfolio, with confidence intervals from the paths.

Every portfolio is compared with the reference (by default 100% S&P 500) on
the *same* paths: each statistic is computed for both, and the difference
(portfolio minus reference) gets a 95% interval from a paired bootstrap over
paths (Efron and Tibshirani 1993): resample whole paths with replacement,
recompute both statistics on the same resampled paths, take the standard
deviation of the difference over the resamples and report the estimate
plus or minus 1.96 of them. Pairing cancels the noise the two portfolios
share, which is most of it for portfolios that hold the same assets.

For contrast, the same difference is also computed *unpaired*: the
portfolio on the first half of the chunks, the reference on the second half
(independent seeds), with an unpaired bootstrap. Its interval is what the
comparison would look like if the two had been simulated separately: a user
sees how much of an apparent benefit is signal and how much simulation noise.

Above ``MAX_BOOTSTRAP_PATHS`` paths each resample draws that many paths and
the spread is scaled by ``sqrt(m / n)`` (the m-out-of-n bootstrap, valid for
statistics whose error shrinks like one over the square root of the number
of paths), which keeps the cost bounded for million-path runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.metrics.risk import annualised_growth, cvar
from engine.portfolio.accounting import BookSummary

__all__ = [
    "DIVERSIFICATION_COLUMNS",
    "MAX_BOOTSTRAP_PATHS",
    "N_BOOTSTRAP",
    "PathStatistics",
    "diversification_table",
    "risk_contributions",
]

N_BOOTSTRAP = 200
"""Bootstrap resamples: enough for the standard deviation of a difference to about 5%."""

MAX_BOOTSTRAP_PATHS = 100_000
"""Paths per resample above which the m-out-of-n bootstrap is used."""

WEALTHIER_TOLERANCE = 1e-6
"""Relative margin by which a terminal wealth must exceed the reference's to count as wealthier."""

Z_95 = 1.959963984540054
"""The standard normal's 97.5% quantile."""

DIVERSIFICATION_COLUMNS = [
    "portfolio",
    "reference",
    "statistic",
    "portfolio_value",
    "reference_value",
    "difference",
    "ci_low",
    "ci_high",
    "unpaired_difference",
    "unpaired_ci_low",
    "unpaired_ci_high",
    "n_paths",
    "method",
]


class PathStatistics:
    """Per-path quantities of every portfolio in a book, from which the compared statistics are computed.

    Attributes
    ----------
    cagr, max_drawdown, volatility, terminal
        ndarrays of shape (n_paths, n_portfolios).
    annual_loss
        ndarray of shape (n_paths, n_years, n_portfolios): minus the calendar-year simple returns.
    """

    def __init__(self, book: BookSummary, horizon_years: int) -> None:
        self.terminal = book.terminal_value
        self.cagr = annualised_growth(book.performance, horizon_years)
        self.max_drawdown = book.max_drawdown
        n = book.n_blocks
        mean = book.log_return_sum / n
        variance = (book.log_return_sumsq - n * mean * mean) / (n - 1)
        self.volatility = np.sqrt(np.maximum(variance, 0.0) * n / horizon_years)
        values = book.year_end_values
        previous = np.concatenate([np.ones_like(values[:, :1, :]), values[:, :-1, :]], axis=1)
        self.annual_loss = 1.0 - values / previous


Statistic = Callable[[PathStatistics, np.ndarray, int], float]


def _median_cagr(stats: PathStatistics, rows: np.ndarray, column: int) -> float:
    return float(np.median(stats.cagr[rows, column]))


def _maxdd_p95(stats: PathStatistics, rows: np.ndarray, column: int) -> float:
    return float(np.percentile(stats.max_drawdown[rows, column], 95))


def _cvar95_annual(stats: PathStatistics, rows: np.ndarray, column: int) -> float:
    return cvar(stats.annual_loss[rows, :, column], 0.95)


def _median_volatility(stats: PathStatistics, rows: np.ndarray, column: int) -> float:
    return float(np.median(stats.volatility[rows, column]))


STATISTICS: dict[str, Statistic] = {
    "cagr_median": _median_cagr,
    "maxdd_p95": _maxdd_p95,
    "cvar_95_annual": _cvar95_annual,
    "vol_ann": _median_volatility,
}
"""The compared statistics, each defined as in ``metrics.csv``."""


def _bootstrap_sd(
    n_paths: int, replicate: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """Standard deviations over resamples of the vector ``replicate(rows)``, scaled for m-out-of-n."""
    m = min(n_paths, MAX_BOOTSTRAP_PATHS)
    draws = np.array([replicate(rng.integers(0, n_paths, m)) for _ in range(n_boot)])
    sd: np.ndarray = draws.std(axis=0, ddof=1) * math.sqrt(m / n_paths)
    return sd


def diversification_table(
    book: BookSummary,
    names: Sequence[str],
    reference: str,
    horizon_years: int,
    seed: int,
    chunk_size: int,
    weights: np.ndarray,
    covariance: np.ndarray,
    asset_names: Sequence[str],
    n_boot: int = N_BOOTSTRAP,
) -> pd.DataFrame:
    """One row per portfolio (other than ``reference``) and statistic, see :data:`DIVERSIFICATION_COLUMNS`.

    ``seed`` fixes the bootstrap's resamples; ``chunk_size`` splits the
    paths into the halves of the unpaired comparison along chunk bounds
    (each half then comes from its own independently seeded chunks).
    ``weights`` (n_portfolios, n_assets) and the assets' daily
    ``covariance`` give the risk-budget rows (:func:`risk_contributions`).
    """
    stats = PathStatistics(book, horizon_years)
    n_paths = book.terminal_value.shape[0]
    base = list(names).index(reference)
    others = [index for index, name in enumerate(names) if index != base]
    if not others:
        return pd.DataFrame(columns=DIVERSIFICATION_COLUMNS)
    rng = np.random.default_rng(np.random.SeedSequence((seed, 2)))
    every = np.arange(n_paths)
    n_chunks = -(-n_paths // chunk_size)
    cut = min(n_paths, (n_chunks // 2) * chunk_size) if n_chunks > 1 else n_paths // 2
    first, second = every[:cut], every[cut:]
    rows = []
    for label, statistic in STATISTICS.items():

        def paired(sample: np.ndarray, statistic: Statistic = statistic) -> np.ndarray:
            reference_value = statistic(stats, sample, base)
            return np.array([statistic(stats, sample, column) - reference_value for column in others])

        estimate = paired(every)
        paired_sd = _bootstrap_sd(n_paths, paired, rng, n_boot)
        split = np.array([statistic(stats, first, column) - statistic(stats, second, base) for column in others])
        unpaired_sd = _unpaired_sd(first.size, second.size, statistic, stats, base, others, rng, n_boot)
        reference_value = statistic(stats, every, base)
        for position, column in enumerate(others):
            rows.append(
                {
                    "portfolio": names[column],
                    "reference": reference,
                    "statistic": label,
                    "portfolio_value": reference_value + estimate[position],
                    "reference_value": reference_value,
                    "difference": estimate[position],
                    "ci_low": estimate[position] - Z_95 * paired_sd[position],
                    "ci_high": estimate[position] + Z_95 * paired_sd[position],
                    "unpaired_difference": split[position],
                    "unpaired_ci_low": split[position] - Z_95 * unpaired_sd[position],
                    "unpaired_ci_high": split[position] + Z_95 * unpaired_sd[position],
                    "n_paths": n_paths,
                    "method": "paired bootstrap",
                }
            )
    rows += _wealthier_rows(stats, names, reference, base, others)
    rows += _budget_rows(weights, covariance, asset_names, names, reference, base, n_paths)
    table = pd.DataFrame(rows, columns=DIVERSIFICATION_COLUMNS)
    order = {name: position for position, name in enumerate(names)}
    return table.sort_values("portfolio", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _unpaired_sd(
    n_first: int,
    n_second: int,
    statistic: Statistic,
    stats: PathStatistics,
    base: int,
    others: list[int],
    rng: np.random.Generator,
    n_boot: int,
) -> np.ndarray:
    """Bootstrap standard deviation of (portfolio on the first half) - (reference on the second half)."""
    m_first, m_second = min(n_first, MAX_BOOTSTRAP_PATHS), min(n_second, MAX_BOOTSTRAP_PATHS)
    draws = []
    for _ in range(n_boot):
        ours = rng.integers(0, n_first, m_first)
        theirs = n_first + rng.integers(0, n_second, m_second)
        reference_value = statistic(stats, theirs, base)
        draws.append([statistic(stats, ours, column) - reference_value for column in others])
    # each half scaled by its own m-out-of-n factor: the two are independent
    spread = np.array(draws).std(axis=0, ddof=1)
    return np.asarray(spread * math.sqrt(max(m_first / n_first, m_second / n_second)))


def _wealthier_rows(
    stats: PathStatistics, names: Sequence[str], reference: str, base: int, others: list[int]
) -> list[dict[str, object]]:
    """P(portfolio ends wealthier than the reference on the same path), with a Wilson 95% interval.

    Wealthier means by more than ``WEALTHIER_TOLERANCE`` (relative), so that a
    portfolio equal to the reference up to solver rounding is not counted.
    """
    n = stats.terminal.shape[0]
    rows: list[dict[str, object]] = []
    for column in others:
        share = float(np.mean(stats.terminal[:, column] > stats.terminal[:, base] * (1.0 + WEALTHIER_TOLERANCE)))
        low, high = _wilson(share, n)
        rows.append(
            {
                "portfolio": names[column],
                "reference": reference,
                "statistic": "prob_wealthier",
                "portfolio_value": share,
                "reference_value": float("nan"),
                "difference": share,
                "ci_low": low,
                "ci_high": high,
                "unpaired_difference": float("nan"),
                "unpaired_ci_low": float("nan"),
                "unpaired_ci_high": float("nan"),
                "n_paths": n,
                "method": "Wilson score interval",
            }
        )
    return rows


def _wilson(share: float, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval for a binomial share (Wilson 1927)."""
    z2 = Z_95 * Z_95
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def _budget_rows(
    weights: np.ndarray,
    covariance: np.ndarray,
    asset_names: Sequence[str],
    names: Sequence[str],
    reference: str,
    base: int,
    n_paths: int,
) -> list[dict[str, object]]:
    """Diversification ratio, effective number of bets and volatility risk shares, against the reference's."""
    budgets = [risk_contributions(w, covariance) for w in weights]
    rows: list[dict[str, object]] = []
    for column, name in enumerate(names):
        if column == base:
            continue
        values = {
            "diversification_ratio": (budgets[column]["diversification_ratio"], budgets[base]["diversification_ratio"]),
            "effective_bets": (budgets[column]["effective_bets"], budgets[base]["effective_bets"]),
        }
        for asset, share, reference_share in zip(
            asset_names, budgets[column]["shares"], budgets[base]["shares"], strict=True
        ):
            values[f"risk_share:{asset}"] = (share, reference_share)
        for label, (ours, theirs) in values.items():
            rows.append(
                {
                    "portfolio": name,
                    "reference": reference,
                    "statistic": label,
                    "portfolio_value": float(ours),
                    "reference_value": float(theirs),
                    "difference": float(ours) - float(theirs),
                    "ci_low": float("nan"),
                    "ci_high": float("nan"),
                    "unpaired_difference": float("nan"),
                    "unpaired_ci_low": float("nan"),
                    "unpaired_ci_high": float("nan"),
                    "n_paths": n_paths,
                    "method": "pooled daily covariance",
                }
            )
    return rows


def risk_contributions(weights: np.ndarray, covariance: np.ndarray) -> dict[str, Any]:
    """Volatility risk budget of ``weights`` under ``covariance`` (n_assets, n_assets).

    Returns the diversification ratio ``sum_i w_i sigma_i / sigma_p``
    (Choueifaty and Coignard 2008); each asset's Euler contribution to
    volatility as a share of it, ``w_i (C w)_i / (w' C w)``; and the
    effective number of bets ``1 / sum_i share_i^2`` of those shares (a
    Herfindahl count; it equals the number of assets for equal risk
    contributions and 1 for one asset).
    """
    variance = float(weights @ covariance @ weights)
    shares = weights * (covariance @ weights) / variance
    ratio = float(weights @ np.sqrt(np.diag(covariance)) / math.sqrt(variance))
    return {"diversification_ratio": ratio, "shares": shares, "effective_bets": float(1.0 / np.sum(shares**2))}
