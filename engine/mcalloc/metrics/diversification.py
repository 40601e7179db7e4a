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
(independent seeds), with an unpaired bootstrap: each half resampled on its
own, their variances added. Its interval is what the
comparison would look like if the two had been simulated separately: a user
sees how much of an apparent benefit is signal and how much simulation noise.

Above ``MAX_BOOTSTRAP_PATHS`` paths each resample draws that many paths and
the spread is scaled by ``sqrt(m / n)`` (each unpaired half's variance by its
own ``m / n``: the m-out-of-n bootstrap, valid for
statistics whose error shrinks like one over the square root of the number
of paths), which keeps the cost bounded for million-path runs. The resamples are
spread over ``n_jobs`` threads: numpy's gathers, partitions and sums
release the GIL, and each resample's statistic is computed on its own, so
the numbers do not depend on the thread count.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mcalloc.metrics.risk import ResampledCvar, annualised_growth
from mcalloc.metrics.summary import Z_95, annual_losses, book_volatility
from mcalloc.portfolio.book_summary import BookSummary
from mcalloc.simulation.parallel import thread_map

__all__ = [
    "DIVERSIFICATION_COLUMNS",
    "MAX_BOOTSTRAP_PATHS",
    "N_BOOTSTRAP",
    "SHARE_FLOOR",
    "PathStatistics",
    "cvar_contributions",
    "diversification_table",
    "risk_contributions",
    "standard_errors",
]

N_BOOTSTRAP = 200
"""Bootstrap resamples: enough for the standard deviation of a difference to about 5%."""

MAX_BOOTSTRAP_PATHS = 20_000
"""Paths per resample above which the m-out-of-n bootstrap is used."""

WEALTHIER_TOLERANCE = 1e-6
"""Relative margin by which a terminal wealth must exceed the reference's to count as wealthier."""

DIVERSIFICATION_COLUMNS = [
    "portfolio",
    "reference",
    "currency",
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
    cagr, max_drawdown, terminal
        ndarrays of shape (n_paths, n_portfolios).
    book, horizon_years
        What they come from; the pooled volatility is computed from the book's sums.

    Calendar-year losses come from :meth:`annual_cvar95` one portfolio at a
    time (the last one is kept; callers take one portfolio's resamples at a
    time): for millions of paths, all portfolios' at once would be the
    largest array of the run.
    """

    def __init__(self, book: BookSummary, horizon_years: int) -> None:
        self.terminal = book.terminal_value
        self.cagr = annualised_growth(book.performance, horizon_years)
        self.max_drawdown = book.max_drawdown
        self.book = book
        self.horizon_years = horizon_years
        self._tails: dict[int, ResampledCvar] = {}
        self._lock = threading.Lock()

    def annual_cvar95(self, column: int) -> ResampledCvar:
        """The 95% CVaR of one portfolio's calendar-year losses over resampled paths; safe across threads."""
        with self._lock:
            tail = self._tails.get(column)
            if tail is None:
                self._tails.clear()  # before the new one is made: one portfolio's losses at a time
                tail = self._tails[column] = ResampledCvar(annual_losses(self.book, column), 0.95)
            return tail


Rows = np.ndarray | slice
"""Paths a statistic is computed on: an index array (a resample) or a slice."""

Statistic = Callable[[PathStatistics, Rows, int], float]


def _median_cagr(stats: PathStatistics, rows: Rows, column: int) -> float:
    return float(np.median(stats.cagr[rows, column]))


def _maxdd_p95(stats: PathStatistics, rows: Rows, column: int) -> float:
    return float(np.percentile(stats.max_drawdown[rows, column], 95))


def _cvar95_annual(stats: PathStatistics, rows: Rows, column: int) -> float:
    return stats.annual_cvar95(column)(rows)


def _pooled_volatility(stats: PathStatistics, rows: Rows, column: int) -> float:
    return book_volatility(stats.book, stats.horizon_years, column, rows)


STATISTICS: dict[str, Statistic] = {
    "cagr_median": _median_cagr,
    "maxdd_p95": _maxdd_p95,
    "cvar_95_annual": _cvar95_annual,
    "vol_ann": _pooled_volatility,
}
"""The compared statistics, each defined as in ``metrics.csv``."""


def _cagr_percentile(q: float) -> Statistic:
    def statistic(stats: PathStatistics, rows: Rows, column: int) -> float:
        return float(np.percentile(stats.cagr[rows, column], q))

    return statistic


def _maxdd_median(stats: PathStatistics, rows: Rows, column: int) -> float:
    return float(np.median(stats.max_drawdown[rows, column]))


ERROR_STATISTICS: dict[str, Statistic] = {
    **STATISTICS,
    "cagr_p05": _cagr_percentile(5),
    "cagr_p95": _cagr_percentile(95),
    "maxdd_median": _maxdd_median,
}
"""The statistics of ``metrics.csv`` given a Monte Carlo standard error: the compared ones and the table's other
quantiles (the wealth's median moves with the CAGR's)."""


Each = Callable[[Statistic, PathStatistics, Sequence[Rows], int], np.ndarray]
"""``each(statistic, stats, samples, column)``: the statistic on every sample, in order."""


def _compact(indices: np.ndarray) -> np.ndarray:
    """Path indices kept as 32-bit integers where they fit: the same rows in half the memory."""
    return indices.astype(np.int32) if indices.size and indices.max() < 2**31 else indices


THREADED_RESAMPLE_PATHS = 20_000
"""Resamples of fewer paths run in one thread: each statistic is then too quick for threads to pay
(measured: 10% slower on two threads at 10,000 paths, 20-30% faster from 20,000)."""


def _resampling(n_jobs: int, resample_paths: int) -> Each:
    """An :data:`Each` that runs on ``n_jobs`` threads (in this thread for one, or for small resamples)."""
    threads = n_jobs if resample_paths >= THREADED_RESAMPLE_PATHS else 1
    return lambda statistic, stats, samples, column: np.array(
        thread_map(lambda sample: statistic(stats, sample, column), samples, threads, "mcalloc-bootstrap")
    )


@dataclass(frozen=True)
class _Resamples:
    """The bootstrap's draws of path indices, shared by every portfolio and statistic of a table.

    ``paired[b]`` resamples all paths; ``first[b]`` and ``second[b]`` resample
    each half of the chunks for the unpaired comparison. Each resample has at
    most :data:`MAX_BOOTSTRAP_PATHS` paths; ``scale`` is the m-out-of-n factor
    ``sqrt(m / n)`` of the paired spread, ``first_share`` and
    ``second_share`` the factors ``m / n`` of each half's variance.
    """

    paired: list[np.ndarray]
    first: list[np.ndarray]
    second: list[np.ndarray]
    scale: float
    first_share: float
    second_share: float

    @classmethod
    def draw(cls, n_paths: int, cut: int | None, rng: np.random.Generator, n_boot: int) -> _Resamples:
        m = min(n_paths, MAX_BOOTSTRAP_PATHS)
        paired = [_compact(rng.integers(0, n_paths, m)) for _ in range(n_boot)]
        if cut is None:  # no unpaired comparison
            return cls(paired, [], [], math.sqrt(m / n_paths), math.nan, math.nan)
        m_first, m_second = min(cut, MAX_BOOTSTRAP_PATHS), min(n_paths - cut, MAX_BOOTSTRAP_PATHS)
        first = [_compact(rng.integers(0, cut, m_first)) for _ in range(n_boot)]
        second = [_compact(cut + rng.integers(0, n_paths - cut, m_second)) for _ in range(n_boot)]
        return cls(paired, first, second, math.sqrt(m / n_paths), m_first / cut, m_second / (n_paths - cut))

    def unpaired_sd(self, first: np.ndarray, second: np.ndarray) -> float:
        """The spread of an unpaired difference from each half's resampled statistic, ``first`` and ``second``.

        The halves are independent, so their variances add, each scaled by
        its own m-out-of-n factor. (Scaling the spread of the resampled
        differences by the larger factor overstated it when the halves
        differ in size: by up to 22% for a quarter of the paths against
        three quarters, the most uneven split :func:`unpaired_cut` makes.)
        """
        first_variance = float(np.var(first, ddof=1)) * self.first_share
        return math.sqrt(first_variance + float(np.var(second, ddof=1)) * self.second_share)


MIN_UNPAIRED_PATHS = 10
"""Fewest paths in each half for the unpaired comparison: fewer leave a bootstrap with next to no spread."""


def unpaired_cut(n_paths: int, chunk_size: int) -> int | None:
    """Where the unpaired comparison splits the paths: the first half is ``[0, cut)``; ``None`` for too few paths.

    The chunk bound nearest the middle, so each half comes from its own
    independently seeded chunks; when no bound leaves each side a quarter of
    the paths (two chunks, the last a few paths), the middle path instead:
    paths within a chunk are independent draws too. Either half with fewer
    than :data:`MIN_UNPAIRED_PATHS` paths leaves the comparison out.
    """
    bounds = range(chunk_size, n_paths, chunk_size)
    cut = min(bounds, key=lambda bound: abs(2 * bound - n_paths), default=n_paths // 2)
    if 4 * min(cut, n_paths - cut) < n_paths:
        cut = n_paths // 2
    return cut if min(cut, n_paths - cut) >= MIN_UNPAIRED_PATHS else None


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
    asset_growth: np.ndarray | None = None,
    n_boot: int = N_BOOTSTRAP,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """One row per portfolio (other than ``reference``) and statistic, see :data:`DIVERSIFICATION_COLUMNS`.

    ``seed`` fixes the bootstrap's resamples; ``chunk_size`` places the
    split of the unpaired comparison (:func:`unpaired_cut`).
    ``weights`` (n_portfolios, n_assets) and the assets' daily
    ``covariance`` give the risk-budget rows (:func:`risk_contributions`);
    each asset's horizon growth along the paths, ``asset_growth`` (n_paths,
    n_assets), their shares of horizon CVaR95 (:func:`cvar_contributions`).
    The resamples run on ``n_jobs`` threads; the table does not depend on it.
    """
    stats = PathStatistics(book, horizon_years)
    n_paths = book.terminal_value.shape[0]
    base = list(names).index(reference)
    others = [index for index, name in enumerate(names) if index != base]
    if not others:
        return pd.DataFrame(columns=DIVERSIFICATION_COLUMNS)
    rng = np.random.default_rng(np.random.SeedSequence((seed, 2)))
    # the whole sample and its halves as slices: views, where an index array would copy every column it picks
    every = slice(None)
    cut = unpaired_cut(n_paths, chunk_size)
    halves = None if cut is None else (slice(0, cut), slice(cut, None))
    resamples = _Resamples.draw(n_paths, cut, rng, n_boot)
    each = _resampling(n_jobs, min(n_paths, MAX_BOOTSTRAP_PATHS))
    rows = _compared_rows(stats, names, reference, base, others, every, halves, resamples, each)
    rows += _wealthier_rows(stats, names, reference, base, others)
    rows += _budget_rows(weights, covariance, asset_names, names, reference, base, n_paths)
    if asset_growth is not None:
        rows += _cvar_share_rows(weights, asset_growth - 1.0, asset_names, names, reference, base)
    table = pd.DataFrame(rows, columns=DIVERSIFICATION_COLUMNS)
    order = {name: position for position, name in enumerate(names)}
    return table.sort_values("portfolio", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _compared_rows(
    stats: PathStatistics,
    names: Sequence[str],
    reference: str,
    base: int,
    others: list[int],
    every: slice,
    halves: tuple[slice, slice] | None,
    resamples: _Resamples,
    each: Each,
) -> list[dict[str, object]]:
    """The rows of :data:`STATISTICS`: each portfolio's difference from ``base`` with its intervals.

    ``halves`` are the unpaired comparison's, ``None`` to leave it out (NaN).
    """
    n_paths = stats.terminal.shape[0]
    same = stats.book.repeated_columns
    rows: list[dict[str, object]] = []
    for label, statistic in STATISTICS.items():
        reference_value = statistic(stats, every, base)
        # the reference's statistic on each resample, computed once for every portfolio
        base_paired = each(statistic, stats, resamples.paired, base)
        if halves is not None:
            base_second = each(statistic, stats, resamples.second, base)
            base_split = statistic(stats, halves[1], base)
        computed: dict[int, tuple[float, float, float, float]] = {}
        for column in others:
            if same[column] not in computed:
                twin = int(same[column])
                estimate = statistic(stats, every, twin) - reference_value
                paired = each(statistic, stats, resamples.paired, twin) - base_paired
                split = unpaired_sd = math.nan
                if halves is not None:
                    split = statistic(stats, halves[0], twin) - base_split
                    unpaired_sd = resamples.unpaired_sd(each(statistic, stats, resamples.first, twin), base_second)
                computed[twin] = (estimate, float(np.std(paired, ddof=1)) * resamples.scale, split, unpaired_sd)
            estimate, paired_sd, split, unpaired_sd = computed[int(same[column])]
            rows.append(
                {
                    "portfolio": names[column],
                    "reference": reference,
                    "statistic": label,
                    "portfolio_value": reference_value + estimate,
                    "reference_value": reference_value,
                    "difference": estimate,
                    "ci_low": estimate - Z_95 * paired_sd,
                    "ci_high": estimate + Z_95 * paired_sd,
                    "unpaired_difference": split,
                    "unpaired_ci_low": split - Z_95 * unpaired_sd,
                    "unpaired_ci_high": split + Z_95 * unpaired_sd,
                    "n_paths": n_paths,
                    "method": "paired bootstrap",
                }
            )
    return rows


def _wealthier_rows(
    stats: PathStatistics, names: Sequence[str], reference: str, base: int, others: list[int]
) -> list[dict[str, object]]:
    """P(portfolio ends wealthier than the reference on the same path), with a Wilson 95% interval.

    Wealthier means by more than ``WEALTHIER_TOLERANCE`` (relative), so that a
    portfolio equal to the reference up to solver rounding is not counted. A
    portfolio that ends level with the reference on every path (the same mix)
    has no share: empty, not 0 (which would read "never wealthier").
    """
    n = stats.terminal.shape[0]
    rows: list[dict[str, object]] = []
    for column in others:
        terminal, reference_terminal = stats.terminal[:, column], stats.terminal[:, base]
        wealthier = terminal > reference_terminal * (1.0 + WEALTHIER_TOLERANCE)
        poorer = terminal < reference_terminal * (1.0 - WEALTHIER_TOLERANCE)
        same = not (wealthier.any() or poorer.any())
        share = math.nan if same else float(np.mean(wealthier))
        low, high = (math.nan, math.nan) if same else _wilson(share, n)
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
                "method": "the same as the reference on every path" if same else "Wilson score interval",
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
            rows.append(_point_row(name, reference, label, ours, theirs, n_paths, "pooled daily covariance"))
    return rows


def _point_row(
    name: str, reference: str, statistic: str, ours: float, theirs: float, n_paths: int, method: str
) -> dict[str, object]:
    """A row without an interval: a property of the weights, not an estimate from the paths' noise."""
    nan = float("nan")
    return {
        "portfolio": name,
        "reference": reference,
        "statistic": statistic,
        "portfolio_value": float(ours),
        "reference_value": float(theirs),
        "difference": float(ours) - float(theirs),
        "ci_low": nan,
        "ci_high": nan,
        "unpaired_difference": nan,
        "unpaired_ci_low": nan,
        "unpaired_ci_high": nan,
        "n_paths": n_paths,
        "method": method,
    }


CVAR_SHARE_METHOD = "Euler, buy-and-hold horizon returns"


def _cvar_share_rows(
    weights: np.ndarray,
    asset_returns: np.ndarray,
    asset_names: Sequence[str],
    names: Sequence[str],
    reference: str,
    base: int,
) -> list[dict[str, object]]:
    """Each asset's Euler share of horizon CVaR95, against the reference's."""
    shares = [cvar_contributions(w, asset_returns, 0.95) for w in weights]
    n_paths = asset_returns.shape[0]
    rows: list[dict[str, object]] = []
    for column, name in enumerate(names):
        if column == base:
            continue
        for asset, share, reference_share in zip(asset_names, shares[column], shares[base], strict=True):
            label = f"cvar_share:{asset}"
            rows.append(_point_row(name, reference, label, share, reference_share, n_paths, CVAR_SHARE_METHOD))
    return rows


SHARE_FLOOR = 0.1
"""Least CVaR, as a share of its contributions' summed sizes, whose shares are given (each then within +-10)."""


def cvar_contributions(weights: np.ndarray, asset_returns: np.ndarray, alpha: float) -> np.ndarray:
    """Each asset's Euler share of the CVaR of the loss ``-asset_returns @ weights``; (n_assets,).

    The contribution of asset i is ``w_i E[-R_i | L >= VaR_alpha]`` (Tasche
    1999): the average over the worst ``1 - alpha`` of scenarios, the
    fractional scenario at the boundary weighted in, so the contributions
    add up to the CVaR exactly. ``asset_returns`` has shape (n_scenarios,
    n_assets). Shares are the contributions divided by the CVaR; all NaN
    where the CVaR is not a loss, or is under :data:`SHARE_FLOOR` of the
    contributions' summed sizes (a mix whose tail the assets' moves nearly
    net out, as stocks and bonds can: the shares would be large, of either
    sign, and swing from one mix to the next).
    """
    losses = -(asset_returns @ weights)
    n = losses.size
    tail = (1.0 - alpha) * n
    whole = math.floor(tail)
    mass = np.zeros(n)
    if whole < n:
        # the worst ``whole`` scenarios and then the boundary one, in the order of a stable sort of the
        # losses from the largest (equal losses by position), found by one partition instead of that sort
        boundary = np.partition(losses, n - 1 - whole)[n - 1 - whole]
        above = losses > boundary
        tied = np.flatnonzero(losses == boundary)
        level = whole - int(np.count_nonzero(above))
        mass[above] = 1.0
        mass[tied[:level]] = 1.0
        mass[tied[level]] = tail - whole
    else:
        mass[:] = 1.0
    contributions = weights * (mass @ -asset_returns) / tail
    total = float(contributions.sum())
    if not total > SHARE_FLOOR * float(np.abs(contributions).sum()):
        # no loss in the tail to share out, or one so small against its parts that they would be shares of
        # more than +-1 / SHARE_FLOOR: which asset carries it cannot be told
        return np.full(contributions.shape, np.nan)
    return np.asarray(contributions / total + 0.0)  # + 0.0: an asset without weight has a share of 0, not -0


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


def standard_errors(
    book: BookSummary,
    names: Sequence[str],
    horizon_years: int,
    seed: int,
    n_boot: int = N_BOOTSTRAP,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Monte Carlo standard errors of each portfolio's :data:`ERROR_STATISTICS`, one row per portfolio.

    The bootstrap standard deviation of the statistic over resampled paths
    (m-out-of-n above :data:`MAX_BOOTSTRAP_PATHS`), columns ``<statistic>_se``:
    how much the figure in ``metrics.csv`` would move with another seed.
    The resamples run on ``n_jobs`` threads; the errors do not depend on it.
    """
    stats = PathStatistics(book, horizon_years)
    n_paths = book.terminal_value.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence((seed, 3)))
    m = min(n_paths, MAX_BOOTSTRAP_PATHS)
    samples = [_compact(rng.integers(0, n_paths, m)) for _ in range(n_boot)]
    scale = math.sqrt(m / n_paths)
    same = book.repeated_columns
    rows: list[dict[str, object]] = []
    each = _resampling(n_jobs, m)
    for column, name in enumerate(names):
        if same[column] != column:  # the same paths' results as an earlier portfolio: the same errors
            rows.append({**rows[same[column]], "portfolio": name})
            continue
        row: dict[str, object] = {"portfolio": name}
        for label, statistic in ERROR_STATISTICS.items():
            values = each(statistic, stats, samples, column)
            row[f"{label}_se"] = float(np.std(values, ddof=1)) * scale
        rows.append(row)
    return pd.DataFrame(rows)
