"""Calibration report: where real data windows fall among simulated windows.

A statistic (a volatility, a correlation, a drawdown, ...) is computed on a
window of real data and on every simulated path of the same length; the
report gives the simulated 5th, 50th and 95th percentiles and the data's
percentile among the simulated values. The module also holds the usual VaR
backtests (Kupiec's coverage test, Christoffersen's independence test).

Conventions: returns are daily log returns as decimals (0.01 is 1%); arrays
of paths are shaped ``(n_paths, n_steps, n_series)``; volatilities are
annualised decimals; drawdowns are positive fractions; percentiles are on a
0..100 scale. Notation in formulas: ``n`` observations, ``x`` VaR
exceedances, ``p`` the VaR tail probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = [
    "CalibrationRow",
    "christoffersen_independence",
    "compare_statistics",
    "compare_window",
    "independence_statistic",
    "kupiec_statistic",
    "kupiec_test",
    "nonoverlapping_windows",
    "percentile_of",
    "summarise_rows",
    "var_exceedances",
    "window_periods",
    "window_statistics",
]

ROW_COLUMNS = [
    "statistic",
    "series",
    "window",
    "data",
    "sim_p05",
    "sim_p50",
    "sim_p95",
    "percentile",
    "inside_90",
]


# --------------------------------------------------------------------------- window statistics


def _correlation(cross: np.ndarray, squares_a: np.ndarray, squares_b: np.ndarray) -> np.ndarray:
    """Pearson correlation from centred cross and square sums; NaN where a variance is zero."""
    denominator = np.sqrt(squares_a * squares_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(denominator > 0.0, cross / denominator, np.nan)
    return np.asarray(np.clip(correlation, -1.0, 1.0))


def _pooled_correlation(
    selected: np.ndarray,
    quarter_means: tuple[np.ndarray, np.ndarray],
    quarter_squares: tuple[np.ndarray, np.ndarray],
    quarter_cross: np.ndarray,
    steps_per_quarter: int,
) -> np.ndarray:
    """Correlation of the daily returns pooled over the ``selected`` quarters.

    Combines per-quarter centred sums with the between-quarter spread of the
    quarter means (the parallel form of the variance decomposition), so the
    pooled days are never gathered into a new array. All inputs are of shape
    (n_paths, n_quarters); ``selected`` is a 0/1 float mask.
    """
    mean_a, mean_b = quarter_means
    squares_a, squares_b = quarter_squares
    n_selected = selected.sum(axis=1, keepdims=True)
    spread_a = mean_a - (selected * mean_a).sum(axis=1, keepdims=True) / n_selected
    spread_b = mean_b - (selected * mean_b).sum(axis=1, keepdims=True) / n_selected
    cross = (selected * (quarter_cross + steps_per_quarter * spread_a * spread_b)).sum(axis=1)
    pooled_a = (selected * (squares_a + steps_per_quarter * spread_a * spread_a)).sum(axis=1)
    pooled_b = (selected * (squares_b + steps_per_quarter * spread_b * spread_b)).sum(axis=1)
    return _correlation(cross, pooled_a, pooled_b)


def window_statistics(
    returns: np.ndarray,
    names: Sequence[str],
    steps_per_year: int = 252,
    steps_per_month: int = 21,
    steps_per_quarter: int = 63,
) -> dict[str, np.ndarray]:
    """Per-path statistics of windows of daily log returns.

    Keys, for series ``a`` and pairs ``a|b`` (``a`` before ``b`` in column order):

    ``vol_ann:{a}``
        Standard deviation (ddof=1) of daily returns times ``sqrt(steps_per_year)``.
    ``vol_ann_monthly:{a}``
        Standard deviation of monthly log returns times ``sqrt(steps_per_year /
        steps_per_month)``. The monthly returns are the sums of every run of
        ``steps_per_month`` consecutive days (overlapping: ``n_steps -
        steps_per_month + 1`` of them), so the statistic does not depend on
        the day the months start; deviations are from ``steps_per_month``
        times the daily mean, squared and divided by Lo and MacKinlay's (1988)
        ``(n_steps - steps_per_month + 1)(1 - steps_per_month / n_steps)``,
        which makes the variance unbiased for i.i.d. returns.
    ``corr_daily:{a}|{b}``, ``corr_monthly:{a}|{b}``
        Pearson correlation of daily returns; of the same overlapping monthly
        returns, their deviations as for ``vol_ann_monthly``.
    ``corr_high_vol:{a}|{b}``, ``corr_low_vol:{a}|{b}``
        Regime correlations. The window is cut into non-overlapping quarters of
        ``steps_per_quarter`` days from its start. Each quarter's volatility is
        the mean over all series of the standard deviation (ddof=1) of its daily
        returns. Each path ranks its own quarters by that volatility (ties broken
        by position, the earlier quarter ranking lower); the daily returns of the
        top ``max(ceil(n_quarters / 4), 1)`` quarters are pooled and their Pearson
        correlation is ``corr_high_vol``; the bottom as many give ``corr_low_vol``.
        With a single quarter both are that quarter's correlation.
    ``max_drawdown:{a}``
        Largest fall of the wealth ``exp(cumsum(r))`` from its running peak, the
        starting wealth 1 counting as a peak; a positive fraction.
    ``cum_return:{a}``
        ``exp(sum(r)) - 1``, a decimal.

    The names say "daily" for one step: with weekly or monthly data,
    ``vol_ann`` and ``corr_daily`` are of weekly or monthly returns. When a
    month is a single step (``steps_per_month`` 1), ``vol_ann_monthly`` and
    ``corr_monthly`` would repeat them and are left out.

    Quarters start at the first day of the window; a partial trailing
    quarter is dropped. A statistic that cannot be formed (fewer than two
    months' days, no full quarter, a series with zero variance) is NaN.

    Parameters
    ----------
    returns
        ndarray of shape (n_paths, n_steps, n_series): daily log returns as
        decimals. Pass one data window as shape (1, n_steps, n_series).
    names
        Series names, ``n_series`` of them, unique.
    steps_per_year, steps_per_month, steps_per_quarter
        Days per year (for annualising), per month and per quarter.

    Returns
    -------
    dict
        Statistic key to ndarray of shape (n_paths,), grouped by statistic in
        the order listed above.
    """
    data = np.asarray(returns, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"window_statistics: returns must be (n_paths, n_steps, n_series), got shape {data.shape}")
    n_paths, n_steps, n_series = data.shape
    names = list(names)
    if len(names) != n_series or len(set(names)) != n_series:
        raise ValueError(f"window_statistics: need {n_series} unique names, got {names}")
    if n_steps < 2:
        raise ValueError(f"window_statistics: need at least 2 steps, got {n_steps}")
    if steps_per_year < 1 or steps_per_month < 1 or steps_per_quarter < 2:
        raise ValueError(
            "window_statistics: need steps_per_year >= 1, steps_per_month >= 1 and steps_per_quarter >= 2, got "
            f"{steps_per_year}, {steps_per_month}, {steps_per_quarter}"
        )
    n_months = n_steps // steps_per_month
    n_quarters = n_steps // steps_per_quarter
    missing = np.full(n_paths, np.nan)
    pairs = [(i, j) for i in range(n_series) for j in range(i + 1, n_series)]

    # One centred copy of the data; every other array below is per series or per quarter.
    centred: list[np.ndarray] = []
    squares: list[np.ndarray] = []
    monthly: list[np.ndarray] = []
    quarter_means: list[np.ndarray] = []
    quarter_squares: list[np.ndarray] = []
    drawdown: list[np.ndarray] = []
    total: list[np.ndarray] = []
    for column in range(n_series):
        series = data[:, :, column]
        deviations = series - series.mean(axis=1, keepdims=True)
        # a constant series (cash at a fixed rate) would otherwise keep rounding noise as "variation"
        deviations[series.max(axis=1) == series.min(axis=1)] = 0.0
        centred.append(deviations)
        squares.append(np.einsum("pt,pt->p", deviations, deviations))

        # every month-long return, whichever day it starts on: the differences of the running sum
        running = np.zeros((n_paths, n_steps + 1))
        np.cumsum(deviations, axis=1, out=running[:, 1:])
        monthly.append(running[:, steps_per_month:] - running[:, :-steps_per_month])
        del running

        if n_quarters:
            quarters = deviations[:, : n_quarters * steps_per_quarter].reshape(n_paths, n_quarters, steps_per_quarter)
            means = quarters.mean(axis=2)
            quarter_means.append(means)
            # the overall mean is already removed, so the quarter means are small and this does not cancel
            sums = np.einsum("pqd,pqd->pq", quarters, quarters) - steps_per_quarter * means * means
            quarter_squares.append(np.maximum(sums, 0.0))

        log_wealth = np.cumsum(series, axis=1)
        peak = np.maximum.accumulate(log_wealth, axis=1)
        np.maximum(peak, 0.0, out=peak)
        np.subtract(log_wealth, peak, out=peak)
        drawdown.append(-np.expm1(peak.min(axis=1)))
        total.append(np.expm1(log_wealth[:, -1]))
        del log_wealth, peak

    statistics: dict[str, np.ndarray] = {}
    for column, name in enumerate(names):
        statistics[f"vol_ann:{name}"] = np.sqrt(squares[column] / (n_steps - 1) * steps_per_year)
    # Lo and MacKinlay's (1988) divisor for overlapping returns: unbiased for i.i.d. returns
    overlapping = (n_steps - steps_per_month + 1) * (1.0 - steps_per_month / n_steps)
    # a month of one step: the monthly statistics would repeat the ones per step, and are left out
    per_month = names if steps_per_month > 1 else []
    for column, name in enumerate(per_month):
        if n_months >= 2:
            variance = np.einsum("pm,pm->p", monthly[column], monthly[column]) / overlapping
            statistics[f"vol_ann_monthly:{name}"] = np.sqrt(variance * steps_per_year / steps_per_month)
        else:
            statistics[f"vol_ann_monthly:{name}"] = missing.copy()
    for i, j in pairs:
        cross = np.einsum("pt,pt->p", centred[i], centred[j])
        statistics[f"corr_daily:{names[i]}|{names[j]}"] = _correlation(cross, squares[i], squares[j])
    for i, j in pairs if per_month else []:
        key = f"corr_monthly:{names[i]}|{names[j]}"
        if n_months >= 2:
            statistics[key] = _correlation(
                np.einsum("pm,pm->p", monthly[i], monthly[j]),
                np.einsum("pm,pm->p", monthly[i], monthly[i]),
                np.einsum("pm,pm->p", monthly[j], monthly[j]),
            )
        else:
            statistics[key] = missing.copy()

    high_vol: dict[str, np.ndarray] = {}
    low_vol: dict[str, np.ndarray] = {}
    if n_quarters:
        quarter_volatility = np.mean([np.sqrt(s / (steps_per_quarter - 1)) for s in quarter_squares], axis=0)
        order = np.argsort(quarter_volatility, axis=1, kind="stable")
        n_selected = max(math.ceil(n_quarters / 4), 1)
        high = np.zeros((n_paths, n_quarters))
        low = np.zeros((n_paths, n_quarters))
        np.put_along_axis(high, order[:, n_quarters - n_selected :], 1.0, axis=1)
        np.put_along_axis(low, order[:, :n_selected], 1.0, axis=1)
    for i, j in pairs:
        pair = f"{names[i]}|{names[j]}"
        if not n_quarters:
            high_vol[pair], low_vol[pair] = missing.copy(), missing.copy()
            continue
        shape = (n_paths, n_quarters, steps_per_quarter)
        cross_sums = np.einsum(
            "pqd,pqd->pq",
            centred[i][:, : n_quarters * steps_per_quarter].reshape(shape),
            centred[j][:, : n_quarters * steps_per_quarter].reshape(shape),
        )
        quarter_cross = cross_sums - steps_per_quarter * quarter_means[i] * quarter_means[j]
        moments = ((quarter_means[i], quarter_means[j]), (quarter_squares[i], quarter_squares[j]), quarter_cross)
        high_vol[pair] = _pooled_correlation(high, *moments, steps_per_quarter)
        low_vol[pair] = _pooled_correlation(low, *moments, steps_per_quarter)
    statistics.update({f"corr_high_vol:{pair}": value for pair, value in high_vol.items()})
    statistics.update({f"corr_low_vol:{pair}": value for pair, value in low_vol.items()})

    for column, name in enumerate(names):
        statistics[f"max_drawdown:{name}"] = drawdown[column]
    for column, name in enumerate(names):
        statistics[f"cum_return:{name}"] = total[column]
    return statistics


# --------------------------------------------------------------------------- percentiles and the report


def percentile_of(value: float, simulated: np.ndarray) -> float:
    """Percentile (0..100) of ``value`` in a simulated sample, mid-rank for ties.

    ``100 * (#{sim < value} + 0.5 #{sim == value}) / n`` over the non-NaN
    simulated values; NaN if ``value`` is NaN or no simulated value is left.

    Parameters
    ----------
    value
        The observed statistic.
    simulated
        ndarray of any shape, one simulated statistic per entry.
    """
    sample = np.asarray(simulated, dtype=float).ravel()
    sample = sample[~np.isnan(sample)]
    if math.isnan(value) or sample.size == 0:
        return math.nan
    below = np.count_nonzero(sample < value)
    equal = np.count_nonzero(sample == value)
    return float(100.0 * (below + 0.5 * equal) / sample.size)


@dataclass(frozen=True)
class CalibrationRow:
    """One statistic of one data window against its simulated distribution.

    Attributes
    ----------
    statistic
        Statistic name, e.g. ``"corr_daily"`` (see :func:`window_statistics`).
    series
        Series name, or ``"a|b"`` for a pair.
    window
        Label of the data window, e.g. ``"2001-09-05..2007-08-31"``, or ``""``.
    data
        The statistic on the data window.
    sim_p05, sim_p50, sim_p95
        5th, 50th and 95th percentiles of the statistic over simulated paths
        (linear interpolation, NaN paths ignored).
    percentile
        The data's percentile among the simulated values, 0..100 (see
        :func:`percentile_of`).
    inside_90
        Whether ``sim_p05 <= data <= sim_p95``.
    """

    statistic: str
    series: str
    window: str
    data: float
    sim_p05: float
    sim_p50: float
    sim_p95: float
    percentile: float
    inside_90: bool

    def record(self) -> dict[str, object]:
        """A flat row for CSV files and the manifest (``None`` where a number is NaN)."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "statistic": self.statistic,
            "series": self.series,
            "window": self.window,
            "data": number(self.data),
            "sim_p05": number(self.sim_p05),
            "sim_p50": number(self.sim_p50),
            "sim_p95": number(self.sim_p95),
            "percentile": number(self.percentile),
            "inside_90": self.inside_90,
        }


def compare_window(
    data_window: np.ndarray,
    simulated: np.ndarray,
    names: Sequence[str],
    window_label: str,
    steps_per_year: int = 252,
) -> list[CalibrationRow]:
    """Compare every :func:`window_statistics` statistic of a data window with simulated windows.

    Months and quarters are ``round(steps_per_year / 12)`` and
    ``round(steps_per_year / 4)`` steps (21 and 63 for daily data).

    Parameters
    ----------
    data_window
        ndarray of shape (n_steps, n_series): daily log returns of the real data.
    simulated
        ndarray of shape (n_paths, n_steps, n_series): simulated daily log
        returns over windows of the same length.
    names
        Series names, ``n_series`` of them.
    window_label
        Written to every row's ``window``.
    steps_per_year
        Steps per year, for annualising.

    Returns
    -------
    list of CalibrationRow
        One row per statistic key, in :func:`window_statistics` order.
    """
    window = np.asarray(data_window, dtype=np.float64)
    paths = np.asarray(simulated, dtype=np.float64)
    if window.ndim != 2 or paths.ndim != 3 or paths.shape[1:] != window.shape:
        raise ValueError(
            "compare_window: need data_window (n_steps, n_series) and simulated (n_paths, n_steps, n_series), "
            f"got {window.shape} and {paths.shape}"
        )
    periods = window_periods(steps_per_year)
    observed = window_statistics(window[None, :, :], names, **periods)
    return compare_statistics(observed, window_statistics(paths, names, **periods), window_label)


def window_periods(steps_per_year: int) -> dict[str, int]:
    """Keyword arguments of :func:`window_statistics`: months of ``round(steps_per_year / 12)`` steps, quarters of 3."""
    return {
        "steps_per_year": steps_per_year,
        "steps_per_month": max(round(steps_per_year / 12), 1),
        "steps_per_quarter": max(round(steps_per_year / 4), 2),
    }


def compare_statistics(
    observed: dict[str, np.ndarray], simulated: dict[str, np.ndarray], window_label: str
) -> list[CalibrationRow]:
    """Rows placing each observed statistic among its simulated values.

    Both dictionaries come from :func:`window_statistics` (the observed one
    of a single window); rows follow the order of ``simulated``.
    """
    rows = []
    for key, values in simulated.items():
        statistic, series = key.split(":", 1)
        value = float(observed[key][0])
        finite = values[~np.isnan(values)]
        if finite.size:
            p05, p50, p95 = (float(q) for q in np.percentile(finite, [5.0, 50.0, 95.0]))
        else:
            p05 = p50 = p95 = math.nan
        rows.append(
            CalibrationRow(
                statistic=statistic,
                series=series,
                window=window_label,
                data=value,
                sim_p05=p05,
                sim_p50=p50,
                sim_p95=p95,
                percentile=percentile_of(value, values),
                inside_90=bool(p05 <= value <= p95),
            )
        )
    return rows


def summarise_rows(rows: Sequence[CalibrationRow]) -> pd.DataFrame:
    """The rows as a DataFrame with one column per :class:`CalibrationRow` field, in field order."""
    table = {column: [getattr(row, column) for row in rows] for column in ROW_COLUMNS}
    frame = pd.DataFrame(table, columns=ROW_COLUMNS)
    numeric = ["data", "sim_p05", "sim_p50", "sim_p95", "percentile"]
    return frame.astype({**dict.fromkeys(numeric, "float64"), "inside_90": "bool"})


def nonoverlapping_windows(n_obs: int, window: int) -> list[tuple[int, int]]:
    """Consecutive non-overlapping ``(start, stop)`` windows of ``window`` steps ending at ``n_obs``.

    The last window always ends at the last observation, so the most recent
    data is used; the oldest ``n_obs % window`` observations are dropped.
    Empty when ``n_obs < window``.
    """
    if window < 1 or n_obs < 0:
        raise ValueError(f"nonoverlapping_windows: need window >= 1 and n_obs >= 0, got {window} and {n_obs}")
    return [(start, start + window) for start in range(n_obs % window, n_obs - window + 1, window)]


# --------------------------------------------------------------------------- VaR backtests


def var_exceedances(returns: np.ndarray, var_forecasts: np.ndarray) -> np.ndarray:
    """VaR hits: ``returns < -var_forecasts``.

    Parameters
    ----------
    returns
        ndarray of any shape: realised returns (decimals).
    var_forecasts
        ndarray of the same shape: VaR as a positive loss, so a 1% VaR of
        0.03 means a 1% chance of a return below -0.03.

    Returns
    -------
    ndarray of bool, the shape of ``returns``; NaN entries are not hits.
    """
    realised = np.asarray(returns, dtype=float)
    forecasts = np.asarray(var_forecasts, dtype=float)
    if realised.shape != forecasts.shape:
        raise ValueError(f"var_exceedances: shapes differ, {realised.shape} and {forecasts.shape}")
    return np.asarray(realised < -forecasts)


def kupiec_test(n_exceedances: int, n_obs: int, coverage: float) -> float:
    """Kupiec (1995) proportion-of-failures test p-value.

    ``LR = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - x/n)^(n - x) (x/n)^x]``,
    compared with a chi-squared law with 1 degree of freedom, using
    ``0 ln 0 = 0`` when ``x = 0`` or ``x = n``.

    Parameters
    ----------
    n_exceedances
        ``x``, the number of VaR hits, 0..n_obs.
    n_obs
        ``n``, the number of forecasts, at least 1.
    coverage
        ``p``, the VaR tail probability in (0, 1) (0.01 for a 99% VaR).
    """
    x, n, p = n_exceedances, n_obs, coverage
    if n < 1 or not 0 <= x <= n or not 0.0 < p < 1.0:
        raise ValueError(
            f"kupiec_test: need n_obs >= 1, 0 <= n_exceedances <= n_obs, 0 < coverage < 1; got {x}, {n}, {p}"
        )
    return float(stats.chi2.sf(kupiec_statistic(x, n, p), 1))


def kupiec_statistic(n_exceedances: int, n_obs: int, coverage: float) -> float:
    """The likelihood ratio of :func:`kupiec_test` (arguments checked there)."""
    x, n, p = n_exceedances, n_obs, coverage
    rate = x / n
    null = (n - x) * math.log1p(-p) + x * math.log(p)
    alternative = float(special.xlogy(n - x, 1.0 - rate) + special.xlogy(x, rate))
    return max(-2.0 * null + 2.0 * alternative, 0.0)


def christoffersen_independence(hits: np.ndarray) -> float:
    """Christoffersen (1998) test p-value that hits do not cluster.

    With ``n_ij`` the number of days in state ``j`` after a day in state ``i``
    (1 = hit), ``pi_0 = n01 / (n00 + n01)``, ``pi_1 = n11 / (n10 + n11)`` and
    ``pi = (n01 + n11) / (n00 + n01 + n10 + n11)``,
    ``LR = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
    + 2 ln[(1 - pi_0)^n00 pi_0^n01 (1 - pi_1)^n10 pi_1^n11]``,
    compared with a chi-squared law with 1 degree of freedom (``0 ln 0 = 0``).
    Without any hit the p-value is 1.

    Parameters
    ----------
    hits
        ndarray of shape (n_obs,), booleans or 0/1, in time order; n_obs >= 2.
    """
    return float(stats.chi2.sf(independence_statistic(hits), 1))


def independence_statistic(hits: np.ndarray) -> float:
    """The likelihood ratio of :func:`christoffersen_independence` (0 without any hit)."""
    sequence = np.asarray(hits)
    if sequence.ndim != 1 or sequence.size < 2:
        raise ValueError(f"christoffersen_independence: need a 1-d hit sequence of length >= 2, got {sequence.shape}")
    if sequence.dtype != np.bool_ and not np.isin(sequence, (0, 1)).all():
        raise ValueError("christoffersen_independence: hits must be booleans or 0/1")
    state = sequence.astype(bool)
    if not state.any():
        return 0.0
    previous, current = state[:-1], state[1:]
    n01 = int(np.count_nonzero(~previous & current))
    n10 = int(np.count_nonzero(previous & ~current))
    n11 = int(np.count_nonzero(previous & current))
    n00 = state.size - 1 - n01 - n10 - n11

    def share(part: int, whole: int) -> float:
        # an empty state contributes nothing to the likelihood: xlogy(0, .) = 0
        return part / whole if whole else 0.0

    pi_0, pi_1, pi = share(n01, n00 + n01), share(n11, n10 + n11), share(n01 + n11, state.size - 1)
    null = special.xlogy(n00 + n10, 1.0 - pi) + special.xlogy(n01 + n11, pi)
    alternative = (
        special.xlogy(n00, 1.0 - pi_0)
        + special.xlogy(n01, pi_0)
        + special.xlogy(n10, 1.0 - pi_1)
        + special.xlogy(n11, pi_1)
    )
    return max(float(-2.0 * null + 2.0 * alternative), 0.0)
