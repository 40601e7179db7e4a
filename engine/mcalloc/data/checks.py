"""Checks on the series a scenario reads, and the warnings they give: gaps, fills, spans, frequency, plausibility.

:func:`mcalloc.data.market.load_market_data` runs them as it reads and
aligns the data; each error names the file or key and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mcalloc.config.model_schema import MAX_MEAN_ANN, MAX_VOL_ANN, MIN_FIT_OBSERVATIONS, STEPS_OF
from mcalloc.data.builtin import load_builtin
from mcalloc.data.files import SeriesFile
from mcalloc.errors import DataError

__all__ = [
    "COLLINEAR",
    "DEFAULT_SUSPICIOUS_MOVE",
    "EARLY_END_DAYS",
    "FILL_REFUSE_SHARE",
    "FILL_WARN_SHARE",
    "IMPLAUSIBLE_ANN",
    "LATE_START_DAYS",
    "RATE_DIRECTION_CHANGES",
    "SPARSE_RUN",
    "SPARSE_STEP_DAYS",
    "absent_returns",
    "check_distinct",
    "check_filled",
    "check_frequency",
    "check_gaps",
    "check_plausible",
    "check_rate_direction",
    "check_window",
    "common_span",
    "early_ends",
    "late_start",
    "longest_run",
    "median_spacing",
    "missing_on_dropped",
    "observations_needed",
    "period_date_notes",
    "skipped_returns",
    "spacing_frequency",
    "span_limits",
    "sparse_stretches",
    "suspicious_moves",
    "weekend_weeks",
]


def common_span(levels: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Every date of any series, one column each, within the period all of them cover."""
    union = pd.concat(levels, axis=1, join="outer", sort=True)
    start = max(series.index[0] for series in levels.values())
    end = min(series.index[-1] for series in levels.values())
    return union.loc[start:end]


def weekend_weeks(dates: pd.DatetimeIndex) -> bool:
    """Whether a weekly series is dated on weekends (most rows on a Saturday or Sunday)."""
    return bool((dates.day_of_week >= 5).mean() > 0.5)


def check_gaps(series_file: SeriesFile, series: pd.Series, max_gap_days: int | None) -> None:
    """Refuse a series with a hole longer than ``max_gap_days`` calendar days.

    ``series`` is the part of ``series_file`` in use. ``None`` picks a
    threshold from the series' own spacing: 10 days for daily data, 21 for
    weekly, 95 for monthly.
    """
    if series.size < 2:
        return
    spacing = series.index.to_series().diff().dt.days.to_numpy()[1:]
    if max_gap_days is None:
        max_gap_days = {"daily": 10, "weekly": 21}.get(spacing_frequency(float(np.median(spacing))), 95)
    worst = int(np.argmax(spacing))
    if spacing[worst] > max_gap_days:
        before, after = series.index[worst], series.index[worst + 1]
        # the end of the window nearer the gap is the one to move past it
        nearer = "data.start past it" if worst < spacing.size / 2 else "data.end before it"
        raise DataError(
            f"{series_file.where(after)}: {int(spacing[worst])} days without data between {before.date()} and "
            f"{after.date()} (more than {max_gap_days}); fill the gap, move {nearer}, "
            "or raise data.max_gap_days"
        )


def period_date_notes(levels: Mapping[str, pd.Series], paths: Mapping[str, str]) -> list[str]:
    """Warnings for price series lined up by period whose dates say little of which period a row closes.

    A weekly file dated on weekends is taken as the weeks ending the Friday
    before, and a monthly one dated on its months' first days as those
    months: a file of weeks starting on Sunday, or of each month's close
    dated on the next month's first day, would be a period early or late.
    Said only where another series is dated otherwise (not every column of
    one file).
    """
    warnings = []
    dated = {name: pd.DatetimeIndex(series.index) for name, series in levels.items()}
    for name, dates in dated.items():
        if all(other.equals(dates) for other in dated.values()):
            continue
        spacing = spacing_frequency(median_spacing(dates))
        if spacing == "weekly" and weekend_weeks(dates):
            warnings.append(
                f"data: {name} ({paths[name]}) dates its weeks on weekends ({dates[-1].date()}): each row is taken "
                "as the close of the week ending the Friday before; if it is the week starting that day, date each "
                "row by its week's last trading day"
            )
        if spacing == "monthly" and (dates.day <= 3).mean() > 0.5:
            warnings.append(
                f"data: {name} ({paths[name]}) dates its months on their first days ({dates[-1].date()}): each row "
                "is taken as that month's level; if it is the month before's close, date it by that month's last day"
            )
    return warnings


def missing_on_dropped(
    levels: Mapping[str, pd.Series], aligned: pd.DataFrame, calendar: list[str] | None = None
) -> dict[str, int]:
    """For the dates :func:`~mcalloc.data.market.align_levels` dropped, how many each series lacked a value on."""
    window = common_span(levels)
    traded = window[list(calendar or levels)].notna().any(axis=1)
    dropped = window[traded.to_numpy() & ~window.index.isin(aligned.index)]
    return {str(name): int(count) for name, count in dropped.isna().sum().items() if count}


def suspicious_moves(returns: pd.DataFrame, threshold: float) -> list[str]:
    """One warning per one-period simple return beyond ``threshold`` in size."""
    simple = pd.DataFrame(np.expm1(returns), index=returns.index, columns=returns.columns)
    warnings = []
    for column in simple.columns:
        flagged = simple[column][simple[column].abs() > threshold]
        for date, move in flagged.items():
            warnings.append(
                f"{column}: {pd.Timestamp(str(date)).date()}: a one-period move of {move:+.1%} "
                f"(beyond {threshold:.0%}); check the source if it is not a real market move"
            )
    return warnings


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """Where the longest run of true values in a 1-d boolean array starts and ends (end exclusive; (0, 0) if none)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    if edges.size == 0:
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


SPARSE_RUN = 3
"""Steps in a row, each wider than its frequency's (:data:`SPARSE_STEP_DAYS`), that make a warning.

In SPY, IWM, EFA and TLT, 1993-2019, no two steps of 5 days or more follow each other.
"""
SPARSE_STEP_DAYS = {"daily": 5, "weekly": 12}
"""Calendar days between rows that a step of each ``data.frequency`` does not reach (a long weekend is 4)."""


def sparse_stretches(levels: Mapping[str, pd.Series], paths: Mapping[str, str], frequency: str) -> list[str]:
    """One warning per series with :data:`SPARSE_RUN` or more steps in a row coarser than ``frequency``.

    Daily data whose older part holds weekly closes passes the gap check
    (a week is not a hole) and the frequency check (the median step is a
    day), and each week is then fitted as one day's return, with about five
    days' variance: the fitted volatility and its persistence are wrong
    without a word.
    """
    widest = SPARSE_STEP_DAYS.get(frequency)
    if widest is None:
        return []
    warnings = []
    for name, series in levels.items():
        if series.size < SPARSE_RUN + 1:
            continue
        steps = np.diff(series.index.to_numpy()).astype("timedelta64[D]").astype(int)
        start, end = longest_run(steps >= widest)
        if end - start < SPARSE_RUN:
            continue
        first, last = series.index[start], series.index[end]
        coarser = "weekly" if frequency == "daily" and np.median(steps[start:end]) <= 10 else "coarser"
        # the window's end nearer the stretch is the one to move past it
        move = "data.start past it" if start < steps.size / 2 else "data.end before it"
        warnings.append(
            f"data: {name} ({paths[name]}) has {end - start} steps in a row of {widest} days or more between rows, "
            f"{first.date()} to {last.date()}: {coarser} values inside {frequency} data? Each is fitted as one "
            f"{frequency} step with several steps' variance; give {frequency} values there, or move {move}"
        )
    return warnings


_PARAMS_PER_PART = {
    "zero": 0, "sample": 0, "constant": 1, "ar1": 2, "sample_ar1": 1,
    "garch": 3, "gjr_garch": 4, "egarch": 4,
    "normal": 0, "t": 1, "skewt": 2,
}  # fmt: skip


_OBSERVATIONS_PER_PARAMETER = 50


EARLY_END_DAYS = 31
"""Days a series may end before the latest one without a warning (the data window ends with the earliest)."""


def early_ends(levels: Mapping[str, pd.Series], paths: Mapping[str, str]) -> list[str]:
    """One warning per series that ends more than :data:`EARLY_END_DAYS` before the latest one.

    The series are aligned on their common dates, so the data window ends
    where the earliest series does: a file that is stale or was cut off at a
    line end would otherwise shorten the fit without a word.
    """
    latest = max(series.index[-1] for series in levels.values())
    warnings = []
    for name, series in levels.items():
        last = series.index[-1]
        if (latest - last).days > EARLY_END_DAYS:
            warnings.append(
                f"data: {name} ({paths[name]}) ends {last.date()}, {(latest - last).days} days before the latest "
                f"series ({latest.date()}), so the data window ends there too; check that the file is complete, "
                "or set data.end"
            )
    return warnings


FILL_WARN_SHARE = 0.02
"""A series with more of its values carried forward (``data.fill_limit``) than this share is named in a warning."""


FILL_REFUSE_SHARE = 0.10
"""...and refused above this share: its file is coarser than the calendar for stretches, not short of holidays."""


def check_filled(
    filled: Mapping[str, int],
    n_steps: int,
    paths: Mapping[str, str],
    keys: Mapping[str, str],
    fill_limit: int,
    unit: str = "day",
) -> list[str]:
    """Refuse a series :func:`~mcalloc.data.market.align_levels` filled on over :data:`FILL_REFUSE_SHARE` of its steps.

    Each filled value repeats the last level, so its return is exactly 0: a
    weekly stretch of an exchange rate carried over the days between makes
    four days in five flat and the fifth a week's move, which inflates the
    series' kurtosis and its volatility per day's move. Returns one warning
    per series filled on more than :data:`FILL_WARN_SHARE` of them. ``unit``
    is a step's length: ``day``, or ``week`` or ``month`` for series lined
    up by period.
    """
    notes = []
    for name, count in sorted(filled.items(), key=lambda item: -item[1]):
        if not count or not n_steps:
            continue
        what, share = f"{keys.get(name, name)} ({paths[name]})" if name in paths else name, count / n_steps
        carried = f"carried from an earlier {unit} by data.fill_limit ({fill_limit})"
        if share > FILL_REFUSE_SHARE:
            finer = (
                "their frequency, or fit weekly or monthly returns (data.frequency)"
                if unit == "day"
                else f"least one row a {unit}"
            )
            raise DataError(
                f"{what}: {count:,} of {n_steps:,} values ({share:.0%}) {carried}, so its returns are 0 in those "
                f"{unit}s and lumped on the next; the file has rows less often than the others for stretches: give "
                f"it at {finer}"
            )
        if share > FILL_WARN_SHARE:
            holidays = "; holidays explain about 1%" if unit == "day" else ""
            notes.append(
                f"data: {what}: {count:,} values ({share:.1%}) {carried}, each a {unit} with a return of 0 and its "
                f"move lumped on the next{holidays}; check the file for stretches with rows less often than the others"
            )
    return notes


def median_spacing(index: pd.Index) -> float:
    """The median number of calendar days between consecutive dates (0 with fewer than two)."""
    if index.size < 2:
        return 0.0
    return float(np.median(np.diff(index.to_numpy()).astype("timedelta64[D]").astype(float)))


RATE_DIRECTION_CHANGES = 60
"""Changes between common dates an exchange-rate file must share with the ECB's rates to be checked against them."""


def check_rate_direction(rates: SeriesFile, code: str, base: str, key: str) -> None:
    """Refuse an exchange-rate file quoted the other way round: its daily changes run against the ECB's.

    ``rates`` should be the price of one ``code`` in ``base`` (SEK per USD);
    a file of USD per SEK has the same moves with the sign flipped, and
    would turn every foreign return's currency part round without an error.
    A pair the ECB does not price, or too few common days, is not checked.
    """
    try:
        reference = load_builtin(f"ecb:{code}/{base}").values
    except DataError:
        return
    common = pd.concat([rates.values, reference], axis=1, join="inner").dropna()
    changes = pd.DataFrame(np.log(common[common.gt(0).all(axis=1)])).diff().dropna()
    if len(changes) < RATE_DIRECTION_CHANGES:
        return
    correlation = float(changes.corr().to_numpy()[0, 1])
    if correlation < -0.3:
        raise DataError(
            f"{key} ({rates.provenance.path}): moves against the ECB's {code}/{base} rate (correlation of their "
            f"changes {correlation:.2f} over {len(changes):,} common dates), so it holds {code} per {base}, the other "
            f"way round; give {base} per {code} (one over each rate)"
        )


LATE_START_DAYS = 365
"""A series starting this many days after the earliest one is named: it shortens the data window for all."""


def late_start(levels: Mapping[str, pd.Series], paths: Mapping[str, str]) -> list[str]:
    """A warning naming the series that starts last, if it starts :data:`LATE_START_DAYS` after the earliest.

    Unlike a late ``data.start``, which says where the window begins, one
    short file would move the start of every series' fit without a word.
    """
    starts = {name: series.index[0] for name, series in levels.items()}
    first, last = min(starts, key=starts.__getitem__), max(starts, key=starts.__getitem__)
    gap = (starts[last] - starts[first]).days
    if gap <= LATE_START_DAYS:
        return []
    return [
        f"data: {last} ({paths[last]}) starts {starts[last].date()}, {gap / 365.25:.1f} years after {first} "
        f"({starts[first].date()}), so the data window starts there for every series; check that the file is "
        "complete, or set data.start"
    ]


_FREQUENCIES = ("daily", "weekly", "monthly")


def spacing_frequency(days: float) -> str:
    """The frequency of rows a median of ``days`` calendar days apart (trading days: 1, weeks: 7, months: 30 or 31)."""
    return "daily" if days <= 4.0 else "weekly" if days <= 10.0 else "monthly" if days <= 45.0 else "coarser"


def check_frequency(dates: pd.Index, what: str, frequency: str, advice: str | None = None) -> None:
    """Refuse ``dates`` further apart than ``frequency`` (``data.frequency``) steps; ``what`` names them.

    Weekly closes read as daily ones would be fitted as if each week were a
    day: volatility per step about twice a day's, and every annualised
    figure wrong by the same factor. Finer data is resampled, and passes.
    ``advice`` replaces the default (set ``data.frequency`` to the data's).
    """
    if dates.size < 3:
        return
    days = median_spacing(dates)
    found = spacing_frequency(days)
    if found in _FREQUENCIES and _FREQUENCIES.index(found) <= _FREQUENCIES.index(frequency):
        return
    if advice is None:
        advice = (
            f"set data.frequency: {found} and simulation.steps_per_year: {STEPS_OF[found]}"
            if found in _FREQUENCIES
            else "give daily, weekly or monthly values"
        )
    raise DataError(
        f"{what} are {days:g} days apart (the median), {found} data, but data.frequency is {frequency}; {advice}"
    )


def check_window(series: pd.Series, path: str, name: str, start: object, end: object, max_missing_run: int) -> None:
    """Refuse a ``data.start`` before the series' first value, or a ``data.end`` after its last.

    Up to ``max_missing_run`` missing periods are allowed between the bound
    and the data, plus one (a start on a weekend, or on the first of a month
    whose value is dated its last day), a period being the series' usual
    spacing: a day, a week, a month.
    """
    if series.size < 2:
        return
    first, last = series.index[0], series.index[-1]
    spacing = float(np.median(np.diff(series.index.to_numpy()).astype("timedelta64[D]").astype(float)))
    # a day apart, a trading week still spans its weekend: counted in calendar days, 7 of them per 5 trading days
    allowed = (max_missing_run + 2) * max(spacing, 1.0) + (2.0 if spacing <= 1.0 else 0.0)
    for key, bound, edge, side, move, sign in (
        ("start", start, first, "before", "later", 1),
        ("end", end, last, "after", "earlier", -1),
    ):
        if bound is None:
            continue
        day = pd.Timestamp(str(bound))
        if sign * (edge - day).days > allowed:  # how far the data begins after the start, or ends before the end
            raise DataError(
                f"{path}: {name} has no values {side} {edge.date()}, but data.{key} is {day.date()}; move "
                f"data.{key} to {edge.date()} or {move}, or use a longer series"
            )


def skipped_returns(loaded: Mapping[str, SeriesFile], kind: str) -> list[str]:
    """One warning per returns file with missing values: each one skipped is a period's move lost.

    A missing price only merges two periods into one return; a missing
    return drops that period's move from the compounded series.
    """
    if kind != "returns":
        return []
    return [
        f"data: {name} ({series_file.provenance.shown}): {series_file.skipped} missing "
        + ("return was skipped, and it is" if series_file.skipped == 1 else "returns were skipped, and each is")
        + " a period's move lost; fill them from the source unless they were zero"
        for name, series_file in loaded.items()
        if series_file.skipped and not name.startswith("fx_")
    ]


def absent_returns(
    levels: Mapping[str, pd.Series],
    paths: Mapping[str, object],
    calendar: Sequence[str],
    dated: Mapping[str, pd.DatetimeIndex | None],
) -> list[str]:
    """One warning per returns file without rows for dates the other series have: each is a period's move lost.

    Aligning drops such a date for every series. The others' moves over it
    are kept (their next return spans both periods), but this series has no
    return for it: its move that day is gone, as for a blank cell (a
    market closed that day lost nothing, which the data cannot tell).
    ``levels`` are the series' levels within the data window; ``dated``
    every date each file has a row for, blank cells included (those are
    counted as skipped returns instead).
    """
    start = max(series.index[0] for series in levels.values())
    end = min(series.index[-1] for series in levels.values())
    traded = pd.DatetimeIndex(sorted(set().union(*(levels[name].loc[start:end].index for name in calendar))))
    warnings = []
    for name in calendar:
        # a returns file's levels start a step before its first row: that date is the file's too
        have = pd.DatetimeIndex(levels[name].index)
        rows = dated.get(name)
        lacking = traded.difference(have if rows is None else have.union(rows))
        if lacking.size:
            first = ", ".join(str(day.date()) for day in lacking[:3]) + (", ..." if lacking.size > 3 else "")
            warnings.append(
                f"data: {name} ({paths[name]}) has no row for {lacking.size} dates that other series have "
                f"({first}); with data.kind: returns each is a period's move lost, not merged into the next; "
                "add the rows from the source unless its market was closed then"
            )
    return warnings


DEFAULT_SUSPICIOUS_MOVE = {"daily": 0.25, "weekly": 0.35, "monthly": 0.5}


def observations_needed(kind: str, dist: str, mean: str) -> int:
    """A floor on the sample size: 50 observations per parameter, and never below the fitter's own minimum."""
    n_params = sum(_PARAMS_PER_PART.get(part, 2) for part in (kind, dist, mean))
    return max(MIN_FIT_OBSERVATIONS, _OBSERVATIONS_PER_PARAMETER * n_params)


COLLINEAR = 0.99999
"""Returns correlated beyond this are one series twice as far as any model can tell."""


IMPLAUSIBLE_ANN = 5.0
"""An annual log mean or volatility (decimal) beyond any traded series over a fit's two years or more: a unit error."""


def check_plausible(
    returns: pd.DataFrame, paths: dict[str, str], keys: dict[str, str], steps_per_year: int
) -> list[str]:
    """Refuse returns no market produces, and warn of those beyond what calibrated parameters may hold.

    Above ``IMPLAUSIBLE_ANN`` (500% a year, mean or volatility) the file is
    broken: a wrong unit, prices given as returns, or unadjusted splits.
    Beyond the calibrated limits (:data:`mcalloc.config.model_schema.MAX_MEAN_ANN`,
    ``MAX_VOL_ANN``: 100% and 200%) real series do go, over a short window (a
    3x leveraged fund in 2008, one stock's best two years), and a fitted
    model simulates them as they are: the warning says so.

    Raises
    ------
    DataError
        Naming the series, its file, the numbers and what to check.
    """
    values = returns.to_numpy(dtype=float)
    means = values.mean(axis=0) * steps_per_year
    volatilities = values.std(axis=0) * np.sqrt(steps_per_year)
    years = values.shape[0] / steps_per_year
    warnings = []
    for name, mean, volatility in zip(returns.columns, means, volatilities, strict=True):
        said = (
            f"{paths.get(name, name)}: the returns of {name} average {mean:.0%} a year (log) with a volatility of "
            f"{volatility:.0%} over {years:.1f} years"
        )
        if abs(mean) > IMPLAUSIBLE_ANN or volatility > IMPLAUSIBLE_ANN:
            raise DataError(
                f"{said}, more than any market gives ({IMPLAUSIBLE_ANN:.0%}); check that {keys[name]} holds prices "
                "(or returns, as data.kind says) in one unit, adjusted for splits"
            )
        if abs(mean) > MAX_MEAN_ANN or volatility > MAX_VOL_ANN:
            warnings.append(
                f"data: {said}, beyond what a calibrated model may hold (+-{MAX_MEAN_ANN:.0%}, {MAX_VOL_ANN:.0%}); "
                "a fit simulates them as they are, compounded over the whole horizon: check the file, use a "
                "longer data window, or model.marginals.mean: zero"
            )
    return warnings


def check_distinct(returns: pd.DataFrame, paths: dict[str, str], keys: dict[str, str]) -> None:
    """Refuse a constant series, and two series with the same (or perfectly collinear) returns.

    ``paths`` maps each series to its file; ``keys`` to the setting that
    names it (``data.paths.<series>``, ``currency.fx.<CCY>``).

    Raises
    ------
    DataError
        Naming the series, its file and what to change.
    """
    values = returns.to_numpy(dtype=float)
    names = [str(name) for name in returns.columns]

    spread = values.std(axis=0)
    for name, deviation in zip(names, spread, strict=True):
        if not deviation > 0.0:
            raise DataError(
                f"{paths.get(name, name)}: every return of {name} is the same (a constant price?), so it has no "
                f"volatility to model; point {keys[name]} at the series' real prices"
            )
    if len(names) < 2:
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(values, rowvar=False)
    for first in range(len(names)):
        for second in range(first + 1, len(names)):
            if abs(correlation[first, second]) > COLLINEAR:
                a, b = names[first], names[second]
                raise DataError(
                    f"{paths.get(b, b)}: the returns of {b} and {a} are the same series (correlation "
                    f"{correlation[first, second]:.6f}), so no model can tell them apart; "
                    f"point {keys[b]} at its own file"
                )


def span_limits(levels: dict[str, pd.Series], paths: dict[str, str], columns: dict[str, str] | None = None) -> str:
    """Which series bound the common dates: the one that starts last and the one that ends first.

    Each is named with its file; a file that holds several series (``data.file``) is named with the column
    (``columns``: each series' column in its file, where it differs from the series' name).
    """
    starts = {name: series.index[0] for name, series in levels.items()}
    ends = {name: series.index[-1] for name, series in levels.items()}
    late, early = max(starts, key=starts.__getitem__), min(ends, key=ends.__getitem__)
    shared = {path for path in paths.values() if list(paths.values()).count(path) > 1}

    def where(name: str) -> str:
        return f"{paths[name]} column {(columns or {}).get(name, name)}" if paths[name] in shared else str(paths[name])

    limits = []
    if starts[late] > min(starts.values()):
        limits.append(f"{where(late)} starts on {starts[late].date()}")
    if ends[early] < max(ends.values()):
        limits.append(f"{where(early)} ends on {ends[early].date()}")
    return " and ".join(limits) or "every series spans only these dates"
