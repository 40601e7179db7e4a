"""From files and built-in datasets to aligned returns ready for fitting.

Series are aligned as *levels* (prices, or a total-return index built from
returns) before any return is taken, so every return in the result spans the
same dates for every column. The steps:

    read -> levels -> align (inner join, optional forward fill)
      -> translate to the base currency (optional) -> resample (weekly/monthly)
      -> log returns -> checks (gaps, length, suspicious moves)

A SEK investor holding a USD fund earns ``(1 + r_USD)(1 + r_USD/SEK) - 1``;
on levels that is ``price_USD x (SEK per USD)``, which is what translation does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mcalloc.config.model_schema import MAX_MEAN_ANN, MAX_VOL_ANN, MIN_FIT_OBSERVATIONS, STEPS_OF
from mcalloc.config.schema import Scenario
from mcalloc.data.builtin import load_builtin
from mcalloc.data.files import Provenance, SeriesFile, SeriesKind, TableFile, read_series, read_table
from mcalloc.errors import DataError

__all__ = [
    "EARLY_END_DAYS",
    "Frequency",
    "MarketData",
    "SeriesRequest",
    "align_levels",
    "check_frequency",
    "check_gaps",
    "early_ends",
    "levels_from",
    "load_levels",
    "load_market_data",
    "missing_on_dropped",
    "observations_needed",
    "periodic_returns",
    "resample_levels",
    "skipped_returns",
    "suspicious_moves",
    "translate_levels",
]

Frequency = Literal["daily", "weekly", "monthly"]
ReturnType = Literal["log", "simple"]

_RESAMPLE_RULE = {"weekly": "W-FRI", "monthly": "ME"}
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class SeriesRequest:
    """One series to load: a file path, or ``builtin:NAME``; a column for wide files."""

    source: str
    kind: SeriesKind = "prices"
    column: str | None = None
    date_column: str | None = None
    max_missing_run: int = 5
    date_format: str | None = None
    window: tuple[str | None, str | None] = (None, None)
    """``data.start`` and ``data.end``: missing values outside them do not count."""
    key: str = "data.paths"
    """The setting that names the series, for messages (``data.paths.sp500``, ``currency.fx.USD``)."""
    column_key: str = "data.value_column"
    """The setting that names ``column`` (``data.columns.intl``, ``data.value_column``), for messages."""


@dataclass(frozen=True)
class MarketData:
    """Aligned log returns (decimal), one column per series, at ``frequency``.

    ``levels`` holds the aligned levels the returns came from (first row is
    the base date). ``warnings`` are things a user should look at but that do
    not stop a run (suspicious one-period moves, dropped dates).
    """

    returns: pd.DataFrame
    levels: pd.DataFrame
    provenance: tuple[Provenance, ...]
    frequency: Frequency
    dropped_dates: int = 0
    filled_dates: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)


def levels_from(series: pd.Series, kind: SeriesKind) -> pd.Series:
    """Prices as they are; simple returns compounded into an index starting at 1."""
    if kind == "prices":
        return series
    levels = (1.0 + series).cumprod()
    first = series.index[0] - (series.index[1] - series.index[0] if series.size > 1 else pd.Timedelta(days=1))
    result: pd.Series = pd.concat([pd.Series([1.0], index=[first]), levels])
    return result


class _TableCache:
    def __init__(self) -> None:
        self.tables: dict[Path, TableFile] = {}

    def get(self, path: Path, key: str = "data.paths") -> TableFile:
        if path not in self.tables:
            self.tables[path] = read_table(path, key)
        return self.tables[path]


def load_levels(request: SeriesRequest, cache: _TableCache | None = None) -> SeriesFile:
    """Load one series as levels, from a file or a built-in dataset."""
    if request.source.startswith(BUILTIN_PREFIX):
        return load_builtin(request.source.removeprefix(BUILTIN_PREFIX))
    table = (cache or _TableCache()).get(Path(request.source), request.key)
    loaded = read_series(
        table,
        kind=request.kind,
        date_column=request.date_column,
        value_column=request.column,
        max_missing_run=request.max_missing_run,
        date_format=request.date_format,
        window=request.window,
        column_key=request.column_key,
        rates=request.key.startswith("currency.fx."),
    )
    if request.kind == "prices":
        return loaded
    # the index's base date has no row of its own; cite the first return's row
    rows = np.concatenate([loaded.rows[:1], loaded.rows])
    levels = levels_from(loaded.values, "returns")
    return SeriesFile(levels, loaded.provenance, rows, loaded.row_prefix, loaded.skipped, loaded.dated, loaded.notes)


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
        raise DataError(
            f"{series_file.where(after)}: {int(spacing[worst])} days without data between {before.date()} and "
            f"{after.date()} (more than {max_gap_days}); fill the gap, move data.start past it, "
            "or raise data.max_gap_days"
        )


def _common_span(levels: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Every date of any series, one column each, within the period all of them cover."""
    union = pd.concat(levels, axis=1, join="outer", sort=True)
    start = max(series.index[0] for series in levels.values())
    end = min(series.index[-1] for series in levels.values())
    return union.loc[start:end]


def align_levels(
    levels: Mapping[str, pd.Series], fill_limit: int = 0, calendar: list[str] | None = None
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """Put series on one calendar.

    The calendar is the dates on which every series named in ``calendar``
    (default: all) has a value, within the period all series cover. A series
    missing on such a date takes its last level if that is at most
    ``fill_limit`` dates old (0: never); dates still incomplete are dropped.
    Exchange rates, fixed on other holidays than stock markets, are the usual
    reason to fill.

    Returns
    -------
    The aligned frame; how many dates on which some calendar series has data
    were dropped; how many values of each series were filled (on the dates kept).
    """
    window = _common_span(levels)
    calendar_columns = window[list(calendar or levels)]
    on_calendar = calendar_columns.notna().all(axis=1)
    filled = window.ffill(limit=fill_limit) if fill_limit > 0 else window
    aligned = filled[on_calendar].dropna()
    gaps = window.loc[aligned.index].isna().sum()
    # dates on which some calendar series traded but that did not make it
    dropped = int(calendar_columns.notna().any(axis=1).sum() - len(aligned))
    return aligned, dropped, {str(name): int(count) for name, count in gaps.items()}


PERIOD_END_DAYS = {"weekly": 1, "monthly": 4}
"""How many calendar days before its period's end a daily series' last day may be, for that period to count."""


def _weekend_weeks(dates: pd.DatetimeIndex) -> bool:
    """Whether a weekly series is dated on weekends (most rows on a Saturday or Sunday)."""
    return bool((dates.day_of_week >= 5).mean() > 0.5)


def period_levels(levels: Mapping[str, pd.Series], frequency: Frequency) -> tuple[dict[str, pd.Series], pd.Series]:
    """Each series' last level in each week (ending Friday) or month, keyed by the period's nominal end.

    Also returns, for each period, the last day any series has a value in
    it: the date the aligned period is given. Series kept at a coarser
    frequency than daily are lined up by these keys, not by their own dates:
    one file's month dated by its last trading day and another's by the
    calendar's last day are the same month. A weekly file dated on Saturdays
    or Sundays holds the weeks ending the Friday before (at either
    frequency). A daily series that ends more than :data:`PERIOD_END_DAYS`
    before its last period does leaves that period out, its level there not
    the period's close, unless that is its only period.
    """
    rule = _RESAMPLE_RULE[frequency]
    keyed: dict[str, pd.Series] = {}
    days = []
    for name, series in levels.items():
        dates = pd.DatetimeIndex(series.index)
        spacing = spacing_frequency(_median_spacing(dates))
        if spacing == "weekly" and _weekend_weeks(dates):
            weekend = np.maximum(dates.day_of_week.to_numpy() - 4, 0)
            series = series.set_axis(dates - pd.to_timedelta(weekend, unit="D"))
        sampled = series.resample(rule).last().dropna()
        ends_early = sampled.size > 1 and (sampled.index[-1] - series.index[-1]).days > PERIOD_END_DAYS[frequency]
        if spacing == "daily" and ends_early:
            sampled = sampled.iloc[:-1]
        keyed[name] = sampled
        days.append(series.index.to_series().resample(rule).max())
    return keyed, pd.concat(days, axis=1).max(axis=1)


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
        spacing = spacing_frequency(_median_spacing(dates))
        if spacing == "weekly" and _weekend_weeks(dates):
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
    """For the dates :func:`align_levels` dropped, how many each series lacked a value on (only those lacking)."""
    window = _common_span(levels)
    traded = window[list(calendar or levels)].notna().any(axis=1)
    dropped = window[traded.to_numpy() & ~window.index.isin(aligned.index)]
    return {str(name): int(count) for name, count in dropped.isna().sum().items() if count}


def translate_levels(levels: pd.Series, fx_levels: pd.Series) -> pd.Series:
    """Levels in the base currency: ``levels`` times the price of their currency in base units."""
    return levels * fx_levels


def resample_levels(levels: pd.DataFrame, frequency: Frequency) -> pd.DataFrame:
    """Last level of each week (ending Friday) or month, dated by its last day with data; daily levels pass through.

    Dated by the day observed, not the period's nominal end: the week of
    Tuesday 31 December 2019 ends then, not on Friday 3 January 2020, after
    the data.
    """
    if frequency == "daily":
        return levels
    rule = _RESAMPLE_RULE[frequency]
    sampled = levels.resample(rule).last()
    sampled.index = pd.DatetimeIndex(levels.index.to_series().resample(rule).max().reindex(sampled.index))
    return sampled.dropna()


def periodic_returns(levels: pd.DataFrame, how: ReturnType = "log") -> pd.DataFrame:
    """Returns between consecutive levels: ``log(L_t / L_{t-1})`` or ``L_t / L_{t-1} - 1``."""
    ratio = levels / levels.shift(1)
    result = np.log(ratio) if how == "log" else ratio - 1.0
    return pd.DataFrame(result).iloc[1:]


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
    """Refuse a series :func:`align_levels` filled on more than :data:`FILL_REFUSE_SHARE` of ``n_steps`` steps.

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


def _median_spacing(index: pd.Index) -> float:
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
    days = _median_spacing(dates)
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
        f"data: {name} ({series_file.provenance.path}): {series_file.skipped} missing "
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


_DEFAULT_SUSPICIOUS_MOVE = {"daily": 0.25, "weekly": 0.35, "monthly": 0.5}


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


def _span_limits(levels: dict[str, pd.Series], paths: dict[str, str], columns: dict[str, str] | None = None) -> str:
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


def load_market_data(scenario: Scenario) -> MarketData:
    """Read, align, translate and resample the scenario's data into log returns.

    Columns are the scenario's ``factor_names``: the assets (in base currency
    under ``currency.mode: translate``, else in their own currency) and, in
    ``factor`` mode, one exchange-rate column per foreign currency.
    """
    data = scenario.data
    if data is None:
        raise DataError("data: this scenario has no data section; add one or use model.source: calibrated")
    cache = _TableCache()

    keys = {asset: "data.file" if data.file is not None else f"data.paths.{asset}" for asset in scenario.asset_names}
    keys.update({f"fx_{code.lower()}": f"currency.fx.{code}" for code in scenario.foreign_currencies})

    window = (
        None if data.start is None else str(data.start),
        None if data.end is None else str(data.end),
    )

    def request(source: str, column: str | None, key: str, column_key: str = "data.value_column") -> SeriesRequest:
        return SeriesRequest(
            source=source,
            kind=data.kind,
            column=column,
            date_column=data.date_column,
            max_missing_run=data.max_missing_run,
            date_format=data.date_format,
            window=window,
            key=key,
            column_key=column_key,
        )

    loaded: dict[str, SeriesFile] = {}
    file_columns: dict[str, str] = {}
    for asset in scenario.asset_names:
        source, column = data.source_for(asset)
        if column is not None:
            file_columns[asset] = column
        # a wide file's column, or one asset's own, is data.columns.<asset>; the shared one is data.value_column
        own = data.file is not None or asset in data.columns
        column_key = f"data.columns.{asset}" if own else "data.value_column"
        loaded[asset] = load_levels(request(source, column, keys[asset], column_key), cache)
    for code in scenario.foreign_currencies:
        name = f"fx_{code.lower()}"
        # an exchange-rate file is read with the data section's date settings, as the assets' files are;
        # one from elsewhere (ISO dates, a Date column) is still read as before those settings existed
        fx_request = replace(request(scenario.currency.fx[code], None, keys[name]), kind="prices")
        try:
            loaded[name] = load_levels(fx_request, cache)
        except DataError as error:
            if data.date_column is None and data.date_format is None:
                raise
            try:
                loaded[name] = load_levels(replace(fx_request, date_column=None, date_format=None), cache)
            except DataError:
                raise error from None
        if not fx_request.source.startswith(BUILTIN_PREFIX):
            check_rate_direction(loaded[name], code, scenario.currency.base, keys[name])

    levels: dict[str, pd.Series] = {}
    for name, series_file in loaded.items():
        series = series_file.values
        # a wide file's column empty at the window's edge is refused as its cells are read, with the line; a
        # file of its own, or a wide file that ends (or starts) inside the window, has no rows there to read
        check_window(series, series_file.provenance.path, name, data.start, data.end, data.max_missing_run)
        if data.start is not None:
            series = series[series.index >= pd.Timestamp(data.start)]
        if data.end is not None:
            series = series[series.index <= pd.Timestamp(data.end)]
        if series.size < 2:
            raise DataError(
                f"{series_file.provenance.path}: fewer than 2 observations between "
                f"{data.start or 'the start'} and {data.end or 'the end'}; check data.start and data.end"
            )
        origin = series_file.provenance
        shown = origin.source if origin.source.startswith("builtin:") else origin.path
        # an exchange rate too: carried over a month by data.fill_limit, a monthly rate would move one day in
        # twenty, and its volatility and correlations would be a month's lumped into single days
        check_frequency(
            series.index,
            f"{shown}: its rows",
            data.frequency,
            None
            if name in scenario.asset_names
            else "give the exchange rate at least as often (data.fill_limit carries one over holidays, not weeks)",
        )
        # built-in series too: the ECB has no krona-style rate for some currencies over years (ISK 2008-2018)
        check_gaps(series_file, series, data.max_gap_days)
        levels[name] = series

    paths = {name: series_file.provenance.path for name, series_file in loaded.items()}
    ended_early = early_ends(levels, paths)
    # series kept weekly or monthly are lined up by period: their own dates may name the same month differently
    by_period = data.frequency != "daily" and any(
        spacing_frequency(_median_spacing(series.index)) != "daily" for series in levels.values()
    )
    calendar = scenario.asset_names
    keyed, period_days = period_levels(levels, data.frequency) if by_period else (levels, None)
    aligned, dropped, filled = align_levels(keyed, data.fill_limit, calendar=calendar)
    lacking = missing_on_dropped(keyed, aligned, calendar)
    keyed_steps = aligned.index
    if period_days is not None:
        aligned.index = pd.DatetimeIndex(period_days.reindex(aligned.index))
    # a filled step is a step of 0. Daily rows filled inside a week or month change nothing once resampled, and a
    # weekend day filled beside a market open every day is the exchange rate's market closed, not a hole in a file
    unit = {"weekly": "week", "monthly": "month"}.get(data.frequency, "day") if by_period else "day"
    steps = keyed_steps if by_period else keyed_steps[pd.DatetimeIndex(keyed_steps).day_of_week < 5]
    gaps = _common_span(keyed).loc[steps].isna().sum()
    counted = {str(name): int(count) for name, count in gaps.items()} if data.frequency == "daily" or by_period else {}
    filled_notes = check_filled(counted, len(steps), paths, keys, data.fill_limit, unit)
    if aligned.shape[0] < 2:
        raise DataError(
            "data: the series share no common dates"
            + (f" between {data.start} and {data.end}" if data.start or data.end else "")
            + f" ({_span_limits(levels, paths, file_columns)}); check data.paths, data.start and data.end"
        )
    base = scenario.currency.base
    for spec in scenario.assets:
        if spec.currency is not None and spec.currency != base and scenario.currency.mode == "translate":
            fx = aligned[f"fx_{spec.currency.lower()}"]
            aligned[spec.name] = translate_levels(aligned[spec.name], fx)
    columns = scenario.factor_names
    sampled = resample_levels(aligned[columns], data.frequency)
    returns = periodic_returns(sampled, "log")

    marginals = scenario.model.marginals
    needed = observations_needed(marginals.kind, marginals.dist, marginals.mean)
    if returns.shape[0] < needed:
        span = f" ({returns.index[0].date()} to {returns.index[-1].date()})" if returns.shape[0] else ""
        raise DataError(
            f"data: only {returns.shape[0]} {data.frequency} returns in common{span}, as "
            f"{_span_limits(levels, paths, file_columns)}; a {marginals.kind} model with {marginals.dist} innovations "
            f"needs at least {needed}; use a longer data window"
        )
    check_distinct(returns, paths, keys)
    implausible = check_plausible(returns, paths, keys, STEPS_OF[data.frequency])
    threshold = data.suspicious_move or _DEFAULT_SUSPICIOUS_MOVE[data.frequency]
    warnings = [note for series_file in loaded.values() for note in series_file.notes]
    warnings += (
        ended_early
        + late_start(levels, paths)
        + (period_date_notes(levels, paths) if by_period and data.kind == "prices" else [])
        + implausible
        + skipped_returns(loaded, data.kind)
        + suspicious_moves(returns, threshold)
    )
    if data.kind == "returns":
        dated = {name: series_file.dated for name, series_file in loaded.items()}
        warnings += absent_returns(levels, paths, scenario.asset_names, dated)
    if dropped:
        # daily data kept at a coarser frequency loses days inside the periods, which changes nothing; a day lost
        # from daily steps, or a period from weekly or monthly ones, makes one step of two
        lost = "date" if unit == "day" else unit
        spans = (
            f": the returns across each such {lost} span two {unit}s but count as one step, "
            f"which raises the per-step mean and variance by about {dropped / max(returns.shape[0], 1):.1%}"
            if data.frequency == "daily" or by_period
            else ""
        )
        which = ", ".join(f"{name} {count:,}" for name, count in lacking.items())
        dates = f"1 {lost}" if dropped == 1 else f"{dropped:,} {lost}s"
        warnings.append(f"data: {dates} missing from some series (missing: {which}) were dropped when aligning{spans}")
    warnings += filled_notes
    translated = [spec.name for spec in scenario.assets if spec.currency not in (None, base)]
    if scenario.currency.mode == "translate" and data.frequency == "daily" and translated:
        warnings.append(
            f"currency.mode translate on daily data: {', '.join(translated)} are translated at each day's exchange "
            "rate, fixed hours before their close (the ECB's at 14:15 CET), so the rate's reaction the next day "
            "is left as noise and the volatility in the base currency is overstated (docs/config.md, currency); "
            "use currency.mode factor with model.dependence.lead_lag, or weekly or monthly data"
        )
    return MarketData(
        returns=returns,
        levels=sampled,
        provenance=tuple(series_file.provenance for series_file in loaded.values()),
        frequency=data.frequency,
        dropped_dates=dropped,
        filled_dates=sum(filled.values()),
        warnings=tuple(warnings),
    )
