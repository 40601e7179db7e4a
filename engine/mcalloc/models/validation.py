"""Does the generator reproduce its own data? The calibration report of a fitted joint model.

For each non-overlapping window of the fitting data (``window_years`` long,
the last one ending with the data), the model simulates ``n_paths`` windows of
the same length starting from the fitted state on the window's first day
(conditional variances, the market factor's recent returns). Each statistic
of :func:`mcalloc.metrics.calibration.window_statistics` is computed on the
data window and on every simulated one; the report gives the simulated 5th,
50th and 95th percentiles and the data's percentile among them. A statistic
the model reproduces sits inside the 5..95 band in about nine windows of ten.

Also: the in-sample 1-day 99% value-at-risk of each series, with Kupiec's
coverage test, and, for an investor in another currency, the ratio of each
foreign asset's monthly volatility in the base currency to that in its own.

How many statistics may a right model leave outside 5..95? Each does so one
time in ten, but they move together (a simulated crash raises every
volatility and correlation of its window at once), so the count is far more
spread than a binomial's. The report therefore also gives, per window and
over all windows, rows ``outside_5_95``: the data's count of statistics
outside their bands against the same count on each simulated window (its
statistics placed among the other simulated windows), and the Monte Carlo
p-value ``(1 + #{simulated counts >= the data's}) / (n + 1)``; over all
windows the windows' counts are summed as independent draws. This is the
test of the whole table: a single statistic outside 5..95 is not a
rejection, a count a right model rarely reaches is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mcalloc.metrics.calibration import (
    CalibrationRow,
    compare_statistics,
    kupiec_test,
    nonoverlapping_windows,
    percentile_of,
    summarise_rows,
    window_periods,
    window_statistics,
)
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.copulas import DccCopula
from mcalloc.models.dependence import normal_scores
from mcalloc.models.joint import JointModel, model_series
from mcalloc.models.recursions import SimulationState

__all__ = [
    "JOINT_STATISTIC",
    "CalibrationSettings",
    "calibration_summary",
    "calibration_table",
    "combined_quantiles",
    "outside_band",
    "outside_counts",
    "outside_summary",
    "percentile_grid",
    "simulate_window",
    "var_backtest",
    "window_rows",
]

JOINT_STATISTIC = "outside_5_95"
"""Rows of the joint test: how many window statistics the data leaves outside their 5..95 bands."""

_BLOCK = 21
_VAR_DRAWS = 500_000
"""Draws for a VaR without a closed form: a parametric model with a market factor, and the baselines.

With a factor the quantiles are taken once for all days
(:func:`combined_quantiles`), and a baseline's are the same every day, so
the draws' noise shifts every day's VaR alike: with 20,000 draws Kupiec's
p-value of the factor and t copula model moved between 0.03 and 0.99 from
seed to seed. 500,000 put the 1% level within about 1.4% of itself (one
standard error), worth under one exceedance in 4,600 days.
"""
_VAR_ANGLES = 65


@dataclass(frozen=True)
class CalibrationSettings:
    """How the calibration report is simulated.

    ``currency_pairs`` lists (asset, fx factor) columns whose sum is the
    asset's return in the base currency.
    """

    n_paths: int = 1000
    window_years: int = 6
    steps_per_year: int = 252
    seed: int = 0
    currency_pairs: tuple[tuple[str, str], ...] = ()
    coverage: float = 0.01


def _window_state(model: JointModel, returns: np.ndarray, start: int, n_paths: int) -> SimulationState:
    """The simulation state at row ``start`` of the fitted sample (its means known: see :func:`calibration_table`).

    Each series' fitted variance of that day, the previous day's return of
    the series its model describes (the AR(1) state; with a market factor,
    the idiosyncratic part), the market's recent returns and DCC's ``Q`` run
    through the scores of the days before. A switching loading's regime
    starts from its long-run shares. A series without a fitted variance that
    day (the sample's first, held back by an AR(1) mean, or under
    ``kind: auto`` by an AR(1) candidate whichever model is chosen) starts
    from its first fitted one; the AR(1) state and the market's returns
    before the first day stay at the model's start.
    """
    state = model.initial_state(n_paths)
    if model.baseline is not None:
        return state
    variances = np.array([_first_variance(m.conditional_variance, start) for m in model.marginals])
    if np.all(np.isfinite(variances)):
        state.variance[:] = variances
    series = model_series(model, returns)
    for column, marginal in enumerate(model.marginals):
        if marginal.autoregressive and start > 0 and np.isfinite(series[start - 1, column]):
            state.last_return[:, column] = series[start - 1, column] * marginal.scale
    if isinstance(model.dependence, DccCopula):
        scores = np.column_stack([normal_scores(m) for m in model.marginals])
        state.dependence = np.tile(model.dependence.dcc.q_after(scores[:start]), (n_paths, 1, 1))
    if model.factor is not None and model.factor.n_lags and state.market_history is not None:
        market = model.factor.market
        for lag in range(model.factor.n_lags):
            if start - 1 - lag >= 0:
                state.market_history[:, lag] = returns[start - 1 - lag, market]
    return state


def _first_variance(variance: np.ndarray, start: int) -> float:
    """The fitted variance of row ``start``, or of the first row after it that has one (NaN if none does).

    Before, a single series without one left every series at the model's
    configured start (under ``simulation.start.kind: stressed``, the whole
    window from the most stressed day), in the rare sample whose length is a
    whole number of windows, so that the first window starts on the first day.
    """
    found = np.flatnonzero(np.isfinite(variance[start:]))
    return float(variance[start + found[0]]) if found.size else math.nan


def simulate_window(model: JointModel, state: SimulationState, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """``n_steps`` days from ``state`` (updated), in blocks of a month: shape (n_paths, n_steps, n_series), decimal."""
    blocks = []
    done = 0
    while done < n_steps:
        size = min(_BLOCK, n_steps - done)
        blocks.append(model.simulate_block(rng, state, size).copy())
        done += size
    return np.concatenate(blocks, axis=1)


def _with_base_currency(
    values: np.ndarray, names: list[str], pairs: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, list[str]]:
    extra = [values[..., names.index(asset)] + values[..., names.index(fx)] for asset, fx in pairs]
    if not extra:
        return values, names
    return np.concatenate([values, np.stack(extra, axis=-1)], axis=-1), names + [f"{a}+{fx}" for a, fx in pairs]


def _currency_rows(
    data: np.ndarray, simulated: np.ndarray, names: list[str], pairs: Sequence[tuple[str, str]], label: str, steps: int
) -> tuple[list[CalibrationRow], list[np.ndarray]]:
    """The volatility-ratio rows, and each ratio's simulated values (n_paths,)."""
    if not pairs:
        return [], []
    periods = window_periods(steps)
    data_stats = window_statistics(data[None], names, **periods)
    sim_stats = window_statistics(simulated, names, **periods)
    rows, samples = [], []
    for asset, fx in pairs:
        # with monthly data a month is one step and only vol_ann is there
        statistic = "vol_ann_monthly" if f"vol_ann_monthly:{asset}" in sim_stats else "vol_ann"
        base, own = f"{statistic}:{asset}+{fx}", f"{statistic}:{asset}"
        value = float(data_stats[base][0] / data_stats[own][0])
        sample = sim_stats[base] / sim_stats[own]
        p05, p50, p95 = (float(v) for v in np.nanpercentile(sample, [5, 50, 95]))
        rows.append(
            CalibrationRow(
                "vol_ratio_base_currency",
                f"{asset}|{fx}",
                label,
                value,
                p05,
                p50,
                p95,
                percentile_of(value, sample),
                bool(p05 <= value <= p95),
            )
        )
        samples.append(sample)
    return rows, samples


def outside_counts(samples: Sequence[np.ndarray], n_paths: int) -> np.ndarray:
    """For each of ``n_paths`` simulated windows, how many statistics fall outside their 5..95 band.

    ``samples`` holds one array (n_paths,) per statistic. Each window's value
    is placed among the other windows' non-missing values, as the data's is
    among all of them: the band of the rest, its 5th and 95th percentiles
    (numpy's linear interpolation, as in the report's rows). A band taken
    with the window inside it would hold it in too often (with 200 windows a
    window fell outside 10.0% of the time where a new draw falls outside
    10.9%), and the test would flatter the data. A missing value is never
    counted.
    """
    counts = np.zeros(n_paths, dtype=np.int64)
    for sample in samples:
        values = np.asarray(sample, dtype=float)
        finite = np.flatnonzero(~np.isnan(values))
        size = finite.size
        if size < 3:  # fewer than two others: no band without the window itself
            if size:
                low, high = np.percentile(values[finite], [5.0, 95.0])
                counts[finite] += (values[finite] < low) | (values[finite] > high)
            continue
        order = finite[np.argsort(values[finite], kind="stable")]
        ordered = values[order]
        rank = np.arange(size)
        outside = np.zeros(size, dtype=bool)
        for share in (0.05, 0.95):
            # the rest is ordered[:rank] then ordered[rank + 1:]: its i-th value is ordered[i + (i >= rank)]
            position = share * (size - 2)
            below = math.floor(position)
            weight = position - below
            first = ordered[below + (below >= rank)]
            second = ordered[np.minimum(below + 1 + (below + 1 >= rank), size - 1)]
            # numpy's own interpolation, to the last bit (from the upper value when the weight is past a half)
            gap = second - first
            bound = second - gap * (1.0 - weight) if weight >= 0.5 else first + gap * weight
            outside |= ordered < bound if share < 0.5 else ordered > bound
        counts[order] += outside
    return counts


def _joint_row(label: str, observed: int, null: np.ndarray) -> dict[str, object]:
    """The data's count against the probabilities ``null`` (index: count) of a right model's."""
    cumulative = np.cumsum(null)
    p05, p50, p95 = (float(np.searchsorted(cumulative, q - 1e-12)) for q in (0.05, 0.5, 0.95))
    below = float(cumulative[observed - 1]) if observed > 0 else 0.0
    at = float(null[observed]) if observed < null.size else 0.0
    p_value = min(1.0, max(0.0, 1.0 - below))
    return {
        "statistic": JOINT_STATISTIC,
        "series": "all",
        "window": label,
        "data": float(observed),
        "sim_p05": p05,
        "sim_p50": p50,
        "sim_p95": p95,
        "percentile": 100.0 * (below + 0.5 * at),
        "inside_90": bool(p_value >= 0.05),
        "p_value": p_value,
    }


def window_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of single window statistics (not the VaR backtest, not the joint test)."""
    return table[table["sim_p05"].notna() & (table["statistic"] != JOINT_STATISTIC)]


def outside_band(windows: pd.DataFrame) -> pd.Series:
    """Which of :func:`window_rows` count as outside 5..95: those with a data value (as the joint test counts)."""
    finite = pd.Series(np.isfinite(windows["data"].to_numpy(dtype=float)), index=windows.index)
    return ~windows["inside_90"].astype(bool) & finite


def outside_summary(table: pd.DataFrame) -> str | None:
    """How many window statistics the data leaves outside their 5..95 bands, in words; ``None`` without any."""
    windows = window_rows(table)
    if windows.empty:
        return None
    return f"{int(outside_band(windows).sum())} of {len(windows)} window statistics outside the simulated 5..95 band"


def percentile_grid(table: pd.DataFrame) -> pd.DataFrame:
    """The data's percentile per statistic and series (rows) and window (columns), ``*`` after one outside 5..95.

    Cells are text, ``" 97.2*"``; empty where a window has no such statistic.
    """
    windows = window_rows(table)
    if windows.empty:
        return pd.DataFrame()
    # each cell's text first, then one pivot: a statistic without a percentile in any window keeps its row
    # (two pivots of numbers dropped it from one, and adding them sorted the rows by name)
    percentile = windows["percentile"].to_numpy(dtype=float)
    cells = [
        "" if np.isnan(value) else f"{value:5.1f}" + ("*" if outside else " ")
        for value, outside in zip(percentile, outside_band(windows), strict=True)
    ]
    grid = windows.assign(cell=cells).pivot_table(
        index=["statistic", "series"], columns="window", values="cell", aggfunc="first", sort=False
    )
    return grid.fillna("")


def calibration_table(model: JointModel, returns: pd.DataFrame, settings: CalibrationSettings) -> pd.DataFrame:
    """Every window statistic of the data against the model's simulated windows, plus the VaR backtest.

    Parameters
    ----------
    model
        A fitted joint model (its ``fit_index`` and conditional variances are used).
    returns
        DataFrame of shape (n_obs, n_series): the series' daily log returns
        (decimal), columns in the model's order; rows outside
        ``model.fit_index`` are ignored.
    settings
        Paths, window length, seed and currency pairs.

    The means are taken as known here even when the model makes them
    uncertain: the windows are cut from the sample the means were averaged
    over, so a window's mean strays less from them than a new window's
    would, not more (``mcalloc backtest``, out of sample, draws them).

    Returns
    -------
    DataFrame with the columns of :func:`summarise_rows` plus ``p_value``
    (Kupiec's, for VaR rows).
    """
    model = replace(model, mean_years=None)
    names = model.asset_names
    if model.fit_index is not None:
        returns = returns.loc[model.fit_index]
    values = returns[names].to_numpy(dtype=float)
    window = settings.window_years * settings.steps_per_year
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, 20_240_607]))
    rows: list[CalibrationRow] = []
    joint: list[dict[str, object]] = []
    total_observed, total_null = 0, np.ones(1)
    dates = returns.index
    periods = window_periods(settings.steps_per_year)
    for start, stop in nonoverlapping_windows(values.shape[0], window):
        label = f"{pd.Timestamp(dates[start]).date()}..{pd.Timestamp(dates[stop - 1]).date()}"
        state = _window_state(model, values, start, settings.n_paths)
        simulated = simulate_window(model, state, stop - start, rng)
        data_window, data_names = _with_base_currency(values[start:stop], names, settings.currency_pairs)
        sim_window, _ = _with_base_currency(simulated, names, settings.currency_pairs)
        simulated_stats = window_statistics(simulated, names, **periods)
        compared = compare_statistics(
            window_statistics(values[start:stop][None], names, **periods), simulated_stats, label
        )
        currency, ratios = _currency_rows(
            data_window, sim_window, data_names, settings.currency_pairs, label, settings.steps_per_year
        )
        rows += compared + currency
        # a statistic the data window has no value for (a series flat all window) is neither counted nor simulated
        # (nor one no simulated window has a value for: it has no band to be outside of)
        counted = [
            (row, sample)
            for row, sample in zip(compared + currency, [*simulated_stats.values(), *ratios], strict=True)
            if math.isfinite(row.data) and not np.isnan(sample).all()
        ]
        samples = [sample for _, sample in counted]
        observed = sum(not row.inside_90 for row, _ in counted)
        # the data's count is one draw of the null among the simulated ones (a Monte Carlo test's (1 + k) / (n + 1))
        null = np.bincount(outside_counts(samples, settings.n_paths), minlength=len(samples) + 1).astype(float)
        null[observed] += 1.0
        null /= settings.n_paths + 1
        joint.append(_joint_row(label, observed, null))
        total_observed, total_null = total_observed + observed, np.convolve(total_null, null)
    frame = summarise_rows(rows)
    frame["p_value"] = math.nan
    if len(joint) > 1:
        joint.append(_joint_row("all windows", total_observed, total_null))
    backtest = var_backtest(model, returns, settings.coverage, np.random.default_rng(settings.seed))
    return pd.concat([frame, pd.DataFrame(joint), backtest], ignore_index=True)


def _shock_draws(model: JointModel, rng: np.random.Generator) -> np.ndarray:
    """Draws of one day's joint shocks, shape (n_draws, n_series)."""
    if isinstance(model.dependence, ResidualBootstrap):
        return model.dependence.residuals
    state = model.dependence.initial_state(_VAR_DRAWS, "unconditional")
    draws: np.ndarray = model.dependence.sample_innovations(rng, _VAR_DRAWS, 1, None, state)[:, 0, :]
    return draws


def combined_quantiles(
    first: np.ndarray, second: np.ndarray, a: np.ndarray, c: np.ndarray, coverage: float
) -> np.ndarray:
    """The ``coverage`` quantile of ``a[t] * first + c[t] * second`` over the draws, for each day ``t``.

    ``(first, second)`` are joint draws; ``a`` may have either sign, ``c`` is
    positive; a day with either missing (NaN) gets NaN. The quantile is
    positively homogeneous, ``q(a, c) = r Q(angle)`` with ``r = hypot(a, c)``
    and ``angle = atan2(a, c)``, so ``Q`` is taken on a grid of angles
    spanning the days' and interpolated: a few dozen quantiles of the draws
    instead of one per day.
    """
    radius = np.hypot(a, c)
    angle = np.arctan2(a, c)
    finite = angle[np.isfinite(angle)]
    if finite.size == 0:
        return np.full(angle.shape, np.nan)
    # a day without a volatility (an AR(1) mean's first) has no quantile, and must not cost the others theirs
    low, high = float(finite.min()), float(finite.max())
    grid = np.linspace(low, high, _VAR_ANGLES) if high > low else np.array([low])
    unit = np.array([np.quantile(math.sin(g) * first + math.cos(g) * second, coverage) for g in grid])
    result: np.ndarray = radius * (np.interp(angle, grid, unit) if grid.size > 1 else unit[0])
    return result


def var_backtest(model: JointModel, returns: pd.DataFrame, coverage: float, rng: np.random.Generator) -> pd.DataFrame:
    """In-sample 1-day VaR exceedances of each series with Kupiec's p-value.

    Each day's VaR is the ``coverage`` quantile of the model's one-day
    distribution given the fitted state of that day: the conditional mean
    plus the fitted volatilities times the joint shocks (with a market
    factor, ``b sigma_m z_m + sigma_e z_e``); for a baseline, the quantile
    of its i.i.d. (or resampled) daily returns. A DCC copula's shocks are
    drawn at its long-run correlation, not the day's: a series' own quantile
    does not depend on it, but with a market factor the combined one does a
    little, through the market's correlation with the idiosyncratic shock.
    """
    names = model.asset_names
    if model.fit_index is not None:
        returns = returns.loc[model.fit_index]
    values = returns[names].to_numpy(dtype=float)
    n_obs = values.shape[0]
    quantiles = np.empty_like(values)
    if model.baseline is not None:
        state = model.baseline.initial_state(_VAR_DRAWS, "unconditional")
        draws = model.baseline.sample_returns(rng, _VAR_DRAWS, 1, state)[:, 0, :]
        quantiles[:] = np.quantile(draws, coverage, axis=0)
    else:
        sigma = np.column_stack([np.sqrt(m.conditional_variance) / m.scale for m in model.marginals])
        means = np.empty_like(values)
        series = model_series(model, values)  # an AR(1) term runs on the series its model describes
        for column, m in enumerate(model.marginals):
            means[:, column] = m.params.get("mu", 0.0) / m.scale
            if m.autoregressive:
                means[1:, column] += m.params["phi"] * series[:-1, column]
        factor = model.factor
        resampled = isinstance(model.dependence, ResidualBootstrap)
        if factor is None:
            # each series' own shock quantile: exact for a copula's law, empirical for resampled residuals
            if resampled:
                shock_quantiles = np.quantile(_shock_draws(model, rng), coverage, axis=0)
            else:
                shock_quantiles = np.array([float(m.law.ppf(np.array(coverage))) for m in model.marginals])
            quantiles[:] = means + sigma * shock_quantiles
        else:
            shocks = _shock_draws(model, rng)
            market = factor.market
            for column in range(len(names)):
                load = factor.loadings[column]
                mean = means[:, column] + load[0] * means[:, market]
                for lag in range(1, factor.n_lags + 1):
                    mean[lag:] += load[lag] * values[:-lag, market]
                if column == market or load[0] == 0.0:
                    # the series' own shock alone: its law's quantile, exact unless the shocks are resampled
                    own = (
                        np.quantile(shocks[:, column], coverage)
                        if resampled
                        else float(model.marginals[column].law.ppf(np.array(coverage)))
                    )
                    quantiles[:, column] = mean + sigma[:, column] * own
                elif resampled:
                    # a few thousand residual rows: every day's quantile directly, exact
                    for begin in range(0, n_obs, 250):
                        end = min(begin + 250, n_obs)
                        mixed = load[0] * sigma[begin:end, [market]] * shocks[None, :, market]
                        mixed += sigma[begin:end, [column]] * shocks[None, :, column]
                        quantiles[begin:end, column] = mean[begin:end] + np.quantile(mixed, coverage, axis=1)
                else:
                    spread = combined_quantiles(
                        shocks[:, market], shocks[:, column], load[0] * sigma[:, market], sigma[:, column], coverage
                    )
                    quantiles[:, column] = mean + spread
    rows = []
    for column, name in enumerate(names):
        valid = np.isfinite(quantiles[:, column]) & np.isfinite(values[:, column])
        hits = values[valid, column] < quantiles[valid, column]
        count, total = int(hits.sum()), int(valid.sum())
        rows.append(
            {
                "statistic": f"var{round((1 - coverage) * 100)}_exceedance_rate",
                "series": name,
                "window": f"{pd.Timestamp(returns.index[0]).date()}..{pd.Timestamp(returns.index[-1]).date()}",
                "data": count / total if total else math.nan,
                "sim_p05": math.nan,
                "sim_p50": coverage,
                "sim_p95": math.nan,
                "percentile": math.nan,
                "inside_90": bool(kupiec_test(count, total, coverage) >= 0.05) if total else False,
                "p_value": kupiec_test(count, total, coverage) if total else math.nan,
            }
        )
    return pd.DataFrame(rows)


def calibration_summary(table: pd.DataFrame) -> dict[str, float]:
    """One line per model: how many window statistics fall outside 5..95, by kind, and the VaR p-values.

    Keys: ``outside`` and ``n_window_stats``, ``joint_p`` (the joint test
    over all windows), ``outside:<statistic>`` per statistic,
    ``kupiec_p:<series>`` per series.
    """
    windows = window_rows(table)
    outside = outside_band(windows)
    summary: dict[str, float] = {"outside": float(outside.sum()), "n_window_stats": float(len(windows))}
    joint = table[table["statistic"] == JOINT_STATISTIC]
    if len(joint):
        summary["joint_p"] = float(joint["p_value"].iloc[-1])
    for statistic, group in windows.groupby("statistic", sort=False):
        summary[f"outside:{statistic}"] = float(outside_band(group).sum())
    for record in table[table["statistic"].str.startswith("var")].to_dict("records"):
        summary[f"kupiec_p:{record['series']}"] = float(record["p_value"])
    return summary
