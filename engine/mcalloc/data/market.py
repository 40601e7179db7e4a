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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mcalloc.config.model_schema import STEPS_OF
from mcalloc.config.schema import Scenario
from mcalloc.data.builtin import load_builtin
from mcalloc.data.checks import (
    DEFAULT_SUSPICIOUS_MOVE,
    absent_returns,
    check_distinct,
    check_filled,
    check_frequency,
    check_gaps,
    check_plausible,
    check_rate_direction,
    check_window,
    common_span,
    early_ends,
    late_start,
    median_spacing,
    missing_on_dropped,
    observations_needed,
    period_date_notes,
    skipped_returns,
    spacing_frequency,
    span_limits,
    sparse_stretches,
    suspicious_moves,
    weekend_weeks,
)
from mcalloc.data.files import Provenance, SeriesFile, SeriesKind, TableFile, read_table
from mcalloc.data.series import read_series
from mcalloc.data.unchanged import carried_values, check_weekend_fill, stale_runs
from mcalloc.errors import DataError

__all__ = [
    "Frequency",
    "MarketData",
    "SeriesRequest",
    "align_levels",
    "levels_from",
    "load_levels",
    "load_market_data",
    "periodic_returns",
    "resample_levels",
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
    window = common_span(levels)
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
        spacing = spacing_frequency(median_spacing(dates))
        if spacing == "weekly" and weekend_weeks(dates):
            weekend = np.maximum(dates.day_of_week.to_numpy() - 4, 0)
            series = series.set_axis(dates - pd.to_timedelta(weekend, unit="D"))
        sampled = series.resample(rule).last().dropna()
        ends_early = sampled.size > 1 and (sampled.index[-1] - series.index[-1]).days > PERIOD_END_DAYS[frequency]
        if spacing == "daily" and ends_early:
            sampled = sampled.iloc[:-1]
        keyed[name] = sampled
        days.append(series.index.to_series().resample(rule).max())
    return keyed, pd.concat(days, axis=1).max(axis=1)


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
        check_window(series, series_file.provenance.shown, name, data.start, data.end, data.max_missing_run)
        if data.start is not None:
            series = series[series.index >= pd.Timestamp(data.start)]
        if data.end is not None:
            series = series[series.index <= pd.Timestamp(data.end)]
        if series.size < 2:
            raise DataError(
                f"{series_file.provenance.shown}: fewer than 2 observations between "
                f"{data.start or 'the start'} and {data.end or 'the end'}; check data.start and data.end"
            )
        shown = series_file.provenance.shown
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

    paths = {name: series_file.provenance.shown for name, series_file in loaded.items()}
    ended_early = early_ends(levels, paths)
    # series kept weekly or monthly are lined up by period: their own dates may name the same month differently
    by_period = data.frequency != "daily" and any(
        spacing_frequency(median_spacing(series.index)) != "daily" for series in levels.values()
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
    step = {"weekly": "week", "monthly": "month"}.get(data.frequency, "day")  # what one of the returns spans
    unit = step if by_period else "day"
    steps = keyed_steps if by_period else keyed_steps[pd.DatetimeIndex(keyed_steps).day_of_week < 5]
    gaps = common_span(keyed).loc[steps].isna().sum()
    counted = {str(name): int(count) for name, count in gaps.items()} if data.frequency == "daily" or by_period else {}
    filled_notes = check_filled(counted, len(steps), paths, keys, data.fill_limit, unit)
    if aligned.shape[0] < 2:
        raise DataError(
            "data: the series share no common dates"
            + (f" between {data.start} and {data.end}" if data.start or data.end else "")
            + f" ({span_limits(levels, paths, file_columns)}); check data.paths, data.start and data.end"
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
            f"{span_limits(levels, paths, file_columns)}; a {marginals.kind} model with {marginals.dist} innovations "
            f"needs at least {needed}; use a longer data window"
        )
    check_distinct(returns, paths, keys)
    if data.frequency == "daily":
        check_weekend_fill(returns, paths, scenario.asset_names)
    implausible = check_plausible(returns, paths, keys, STEPS_OF[data.frequency])
    threshold = data.suspicious_move or DEFAULT_SUSPICIOUS_MOVE[data.frequency]
    warnings = [note for series_file in loaded.values() for note in series_file.notes]
    warnings += (
        ended_early
        + late_start(levels, paths)
        + sparse_stretches(levels, paths, data.frequency)
        + (period_date_notes(levels, paths) if by_period and data.kind == "prices" else [])
        + implausible
        + skipped_returns(loaded, data.kind)
        + suspicious_moves(returns, threshold)
        + stale_runs(returns, paths, step)
        + carried_values(returns, sampled, paths, scenario.asset_names, step)
    )
    if data.kind == "returns":
        dated = {name: series_file.dated for name, series_file in loaded.items()}
        warnings += absent_returns(levels, paths, scenario.asset_names, dated)
    if dropped:
        # daily data kept at a coarser frequency loses days inside the periods, which changes nothing; a day lost
        # from daily steps, or a period from weekly or monthly ones, makes one step of two
        lost = "date" if unit == "day" else unit
        # a series without a value on a dropped date lost no move there (its market was closed): only the others'
        # steps across it span two
        spanned = ", ".join(
            f"{name} {(dropped - lacking.get(name, 0)) / max(returns.shape[0], 1):.1%}" for name in scenario.asset_names
        )
        spans = (
            f": the returns across each such {lost} span two {unit}s but count as one step, which raises a series' "
            f"per-step mean and variance by about the share of its steps that do ({spanned})"
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
