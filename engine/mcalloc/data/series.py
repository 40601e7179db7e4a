"""One series read from a table: its value column chosen, its dates parsed, its values checked.

Missing values (empty, ``null``, ``NaN``, ``N/A``, ``.``) in short runs are
dropped; a longer run, or any other text in a value column, is an error.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mcalloc.data.files import DATE_COLUMNS, Provenance, SeriesFile, SeriesKind, TableFile, file_sha256
from mcalloc.errors import DataError

__all__ = ["adjusted_beside", "read_series"]


_MISSING = {"", "null", "NULL", "NaN", "nan", "NA", "N/A", "n/a", "#N/A", "."}


_OFFSET = r"(?<=\d)\s*(?:Z|\+\d{2}(?::?\d{2})?|-\d{2}:\d{2})$"
"""An offset from UTC no date's own digits end in (``Z``, ``+01:00``, ``+0100``, ``+05``, ``-05:00``), dropped."""


_MINUS_OFFSET = (
    r"(T\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d*)?)?)?|\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?|\d{4}-\d{2}-\d{2})"
    r"\s*-\d{2}(?:\d{2})?$"
)
"""``-0500`` or ``-05`` after a time of day or an ISO date, dropped: ``29-01-1993`` ends in no offset."""


_NOT_VALUES = frozenset({"volume", "vol", "openinterest", "count", "trades"})
"""Column names that never hold prices or returns, however alone they are beside the date (as :func:`_key` reads
them: ``Open Interest`` and investing.com's ``Vol.`` among them)."""


_ADJUSTED_COLUMNS = ("adjclose", "adjustedclose")
"""Adjusted closes, as :func:`_key` reads their names: Yahoo's Adj Close, Alpha Vantage's and EODHD's
adjusted_close, Tiingo's adjClose, Nasdaq Data Link's Adj. Close."""

_PRICE_COLUMNS = (*_ADJUSTED_COLUMNS, "close", "price")
"""Price columns in the order they are preferred: an adjusted close (dividends in) before a plain one."""

_RETURN_COLUMNS = ("return", "returns", "ret")


def _key(name: str) -> str:
    """A column name as it is matched: lower case, letters and digits only (``Adj. Close`` is ``adjclose``)."""
    return "".join(character for character in name.lower() if character.isalnum())


def _pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    """The first of ``columns`` that one of ``candidates`` names (in the candidates' order), by :func:`_key`."""
    keyed: dict[str, str] = {}
    for column in columns:
        keyed.setdefault(_key(column), column)
    return next((keyed[_key(c)] for c in candidates if _key(c) in keyed), None)


def _resolve_columns(
    table: TableFile,
    date_column: str | None,
    value_column: str | None,
    kind: SeriesKind,
    column_key: str,
    rates: bool = False,
) -> tuple[str, str]:
    columns = list(table.frame.columns)
    shown = ", ".join(columns) or "none"
    if len(shown) > 120:  # a header that is no header (a JSON document, one long line) is not repeated whole
        shown = shown[:100] + f"... ({len(columns)} columns)"
    if date_column is None and value_column is None and _is_a_record(columns):
        # a file without its header: pandas took the first day for column names, and that day would be lost
        raise DataError(
            f"{table.path}: its first line ({','.join(columns)}) is a date and values, not column names; add a "
            "header line above it, such as Date,Close"
        )
    date = date_column or _pick(columns, DATE_COLUMNS) or (columns[0] if columns else None)
    if date is None or date not in columns:
        raise DataError(f"{table.path}: no date column '{date_column}' (columns are {shown}); set data.date_column")
    if value_column is not None:
        if value_column not in columns:
            raise DataError(
                f"{table.path}: no column '{value_column}' (columns are {shown}); set {column_key} to one of them"
            )
        value = value_column
    else:
        others = [c for c in columns if c != date]
        picked = _pick(columns, _PRICE_COLUMNS if kind == "prices" else _RETURN_COLUMNS)
        if picked is None and len(others) == 1:
            named = _RETURN_COLUMNS if kind == "prices" else _PRICE_COLUMNS
            if _key(others[0]) in named:
                # a column of gross returns (1.0034) read as prices gives each day the move from one return to
                # the next: the wrong volatility and correlations, with no value out of range to catch it
                other = "returns" if kind == "prices" else "prices"
                advice = (
                    "exchange rates are read as levels (units of the base currency per unit): give the rates"
                    if rates
                    else f"set data.kind: {other} if it holds {other}, or name the column in data.value_column"
                )
                raise DataError(
                    f"{table.path}: its only column besides the date is '{others[0]}', a name for {other}, but "
                    f"{kind} are read; {advice}"
                )
            if _key(others[0]) in _NOT_VALUES:
                raise DataError(
                    f"{table.path}: its only column besides the date is '{others[0]}', which holds no {kind}; "
                    "give a file with them, or name their column in data.value_column"
                )
            picked = others[0]
        if picked is None:
            raise DataError(
                f"{table.path}: cannot tell which column holds the {kind} (columns are {shown}); set data.value_column"
            )
        value = picked
    # pandas renames a repeated header name to name.1: which of the two holds the data cannot be told
    for role, name in (("date", date), ("value", value)):
        if f"{name}.1" in columns:
            raise DataError(
                f"{table.path}: the header names the {role} column '{name}' more than once; rename or remove the others"
            )
    return date, value


_DAY_MONTH = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")


def _date_advice(dates: pd.Series) -> str:
    """What to do with dates that are not ISO: the ``data.date_format`` they are in, when they tell it."""
    parts = dates[dates != ""].str.extract(_DAY_MONTH)
    if parts.size and parts.notna().all(axis=None):
        first, second, separator = parts[0].astype(int), parts[2].astype(int), str(parts.iloc[0, 1])
        day_first = bool((first > 12).any()) and bool((second <= 12).all())
        month_first = bool((second > 12).any()) and bool((first <= 12).all())
        if day_first or month_first:
            order = ("%d", "%m") if day_first else ("%m", "%d")
            form = separator.join([*order, "%Y"])
            which = "day" if day_first else "month"
            return f"its dates put the {which} first: set data.date_format: '{form}'"
    return "fix the row or set data.date_format (e.g. '%d/%m/%Y')"


def _number_advice(value: str) -> str:
    """What to do with a value that is not a number: the format it is in, when it is a number in another one."""
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+\.\d+", value):
        return "a thousands separator (',') is not read: save the file without them"
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", value):
        return "a ',' is not read (a thousands separator, or a decimal comma): save the file without either"
    if re.fullmatch(r"-?\d+(\.\d{3})*,\d+", value):
        return "a decimal comma is not read: save the file with '.' decimals"
    return "fix or remove the row"


def _is_a_record(columns: list[str]) -> bool:
    """Whether a header reads as a row of data: a date (ISO, or day and month either way), then numbers only.

    pandas tells a repeated name apart with ``.1``, ``.2``: a first row of
    ``1.5,1.5`` is the header ``1.5,1.5.1``.
    """
    first = columns[0].strip() if columns else ""
    dated = _DAY_MONTH.fullmatch(first) is not None or (
        re.match(r"\d{4}\D", first) is not None and not _local_dates(pd.Series([first]), "ISO8601").isna().any()
    )
    if len(columns) < 2 or not dated:
        return False
    values = pd.Series(columns[1:]).str.strip().str.replace(r"(\.\d+)\.\d+$", r"\1", regex=True)
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def adjusted_beside(columns: list[str], value: str, kind: SeriesKind) -> str | None:
    """An adjusted close in ``columns`` when prices are read from an unadjusted ``value`` column, else None."""
    if kind != "prices" or _key(value) in _ADJUSTED_COLUMNS or _key(value) not in _PRICE_COLUMNS:
        return None
    return _pick(columns, _ADJUSTED_COLUMNS)


def _missing_runs(missing: np.ndarray) -> tuple[int, int]:
    """Start and length of the longest run of True."""
    best_start, best_length, start = 0, 0, None
    for index, flag in enumerate([*missing.tolist(), False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start > best_length:
                best_start, best_length = start, index - start
            start = None
    return best_start, best_length


def _local_dates(text: pd.Series, date_format: str) -> pd.Series:
    """``text`` read as dates (NaT where it cannot be), any time zone dropped: the local date is kept."""
    try:
        dates = pd.to_datetime(text, errors="coerce", format=date_format)
    except ValueError:  # zones the offset patterns leave, differing from row to row: each row alone
        return pd.Series([_local_date(value, date_format) for value in text], index=text.index)
    if getattr(dates.dt, "tz", None) is not None:  # a zone the offset patterns leave, the same on every row
        dates = dates.dt.tz_localize(None)
    return dates


def _local_date(value: str, date_format: str) -> object:
    """One date of :func:`_local_dates` (a ``Timestamp``), NaT if it cannot be read."""
    date = pd.to_datetime(value, errors="coerce", format=date_format)
    return date.tz_localize(None) if getattr(date, "tz", None) is not None else date


def read_series(
    table: TableFile,
    *,
    kind: SeriesKind = "prices",
    date_column: str | None = None,
    value_column: str | None = None,
    max_missing_run: int = 5,
    date_format: str | None = None,
    window: tuple[str | None, str | None] = (None, None),
    column_key: str = "data.value_column",
    rates: bool = False,
) -> SeriesFile:
    """Parse and validate one series from a table.

    Parameters
    ----------
    kind
        ``prices`` must be strictly positive; ``returns`` are decimal simple
        returns and must exceed -1.
    max_missing_run
        Longest run of consecutive missing values that is dropped silently;
        only rows dated inside ``window`` (``data.start``, ``data.end``, either
        ``None`` for open) count, since the rest is not used.
    date_format
        A ``strptime`` format such as ``%d/%m/%Y``; by default dates must be
        ISO 8601 (``2019-12-31``, optionally with a time), because a date like
        01/02/2020 cannot be read safely without knowing the convention.
        A time-zone offset and a time of day are dropped: the local date is
        kept, so two rows of one date are duplicates.
    column_key
        The setting that names ``value_column`` (``data.columns.intl`` for a
        wide file's column), for the message when the file has no such column.
    rates
        The series is an exchange rate: always levels, whatever ``data.kind``
        says of the assets' files, which the messages then do not suggest.

    Raises
    ------
    DataError
        Naming the file and row of the first problem.
    """
    date, column = _resolve_columns(table, date_column, value_column, kind, column_key, rates)
    frame = table.frame
    if frame.empty:
        raise DataError(f"{table.path}: no data rows; give one line per day below the header")
    local = frame[date].str.strip().str.replace(_OFFSET, "", regex=True).str.replace(_MINUS_OFFSET, r"\1", regex=True)
    dates = _local_dates(local, date_format or "ISO8601")
    bad_dates = np.flatnonzero(dates.isna().to_numpy())
    if bad_dates.size and date_format:
        # data.date_format is one setting for every file: a file of ISO dates beside it (which no
        # other convention reads alike) is read as ISO, whole, rather than refused
        iso = _local_dates(local, "ISO8601")
        if not iso.isna().any():
            dates, bad_dates = iso, bad_dates[:0]
    if bad_dates.size:
        row = int(bad_dates[0])
        shown = frame[date].iloc[row]
        numbers = pd.to_numeric(frame[date], errors="coerce").notna().mean()
        if numbers > 0.5 and date_column is None and _pick(list(frame.columns), DATE_COLUMNS) is None:
            # no column is named as dates are: the first was taken, and holds numbers, not a stray one
            raise DataError(
                f"{table.where(row)}: cannot read {shown!r} as a date: no column is named Date, and the first, "
                f"{date!r}, does not hold dates; name the date column in data.date_column (or add one)"
            )
        if date_format:
            raise DataError(
                f"{table.where(row)}: cannot read date {shown!r} as data.date_format {date_format!r} or as an ISO "
                "date; fix the row (the setting applies to every file not in ISO dates: convert a file in another "
                "format to it or to ISO dates like 2019-12-31)"
            )
        raise DataError(
            f"{table.where(row)}: cannot read date {shown!r} as ISO dates like 2019-12-31; {_date_advice(local)}"
        )

    text = frame[column].str.strip()
    missing = text.isin(_MISSING).to_numpy()
    # a wide file's later-starting columns are empty before their start: only the window in use counts
    first, last = (pd.Timestamp(bound) if bound is not None else None for bound in window)
    in_window = np.ones(missing.size, dtype=bool)
    if first is not None:
        in_window &= (dates >= first).to_numpy()
    if last is not None:
        in_window &= (dates.dt.normalize() <= last).to_numpy()
    start, length = _missing_runs(missing & in_window)
    if length > max_missing_run:
        held = dates[~missing]
        run = dates.iloc[start : start + length]
        if held.size and (run < held.min()).all():
            told = f", but data.start is {first.date()}; move" if first is not None else "; set"
            raise DataError(
                f"{table.where(start)}: {column} has no values before {held.min().date()}{told} data.start to "
                f"{held.min().date()} or later, or fill the column"
            )
        if held.size and (run > held.max()).all():
            told = f", but data.end is {last.date()}; move" if last is not None else "; set"
            raise DataError(
                f"{table.where(start)}: {column} has no values after {held.max().date()}{told} data.end to "
                f"{held.max().date()} or earlier, or fill the column"
            )
        raise DataError(
            f"{table.where(start)}: {length} missing {column} values in a row (up to {max_missing_run} are "
            "skipped); fill them or shorten the data window"
        )
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=float)
    bad_values = np.flatnonzero(~np.isfinite(values) & ~missing)
    if bad_values.size:
        row = int(bad_values[0])
        raise DataError(
            f"{table.where(row)}: {column} is {frame[column].iloc[row]!r}, not a number; {_number_advice(text[row])}"
        )
    if kind == "prices":
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            # many values at or below zero are returns, not a few bad prices
            negative = int(np.count_nonzero(values < 0))
            looks_like_returns = negative >= 3 and negative > 0.1 * values.size
            advice = (
                "fix or remove the row"
                if not looks_like_returns
                else "exchange rates are read as levels, not returns: give the rates themselves"
                if rates
                else "set data.kind: returns"
            )
            raise DataError(f"{table.where(int(bad[0]))}: price {values[bad[0]]} is not positive; {advice}")
        if not rates and _gross_returns(values):
            raise DataError(
                f"{table.path}: {column} looks like gross returns, 1 + r, not prices (every value within 0.5 of 1, "
                "and one day's value says nothing of the next's, as a price's does); subtract 1 from each and set "
                "data.kind: returns"
            )
    else:
        typical = float(np.nanmedian(np.abs(values))) if np.isfinite(values).any() else 0.0
        # a decimal return of 100% or more in one period is rare (a few months of a crypto or penny stock's
        # history); in percent it is a 1% move, which a calm series (bonds; median size under 0.5) makes
        # on a tenth of its days or more
        whole = int(np.count_nonzero(np.abs(values) >= 1.0))
        if typical > 0.5 or (whole >= 3 and whole > 0.1 * values.size):
            size = f"median size {typical:.4g}, {whole:,} of {values.size:,} at 1 or more"
            if np.nanmin(values) < 0:  # prices are never negative: returns, in percent or larger units
                raise DataError(
                    f"{table.path}: {column} looks like returns in percent, not decimals ({size}); "
                    "give simple returns as decimals (0.01 is 1%)"
                )
            finite = values[np.isfinite(values)]
            if finite.size and np.all(np.abs(finite - 1.0) < 0.5) and abs(float(np.median(finite)) - 1.0) < 0.01:
                # 1 + r each period: no price series stays within half of 1 throughout, with a median of about 1
                raise DataError(
                    f"{table.path}: {column} looks like gross returns, 1 + r ({size}, every value within 0.5 of "
                    "1); subtract 1 from each, for simple returns as decimals (0.01 is 1%)"
                )
            raise DataError(
                f"{table.path}: {column} looks like prices, not returns ({size}); "
                "set data.kind: prices, or give simple returns as decimals (0.01 is 1%)"
            )
        bad = np.flatnonzero(values <= -1)
        if bad.size:
            # several such rows: a file of calmer percent returns than the test above recognises
            hint = (
                f" ({bad.size:,} rows are; if the file holds returns in percent, give decimals: 0.01 is 1%)"
                if bad.size > 1
                else ""
            )
            raise DataError(
                f"{table.where(int(bad[0]))}: return {values[bad[0]]} is -100% or worse; fix or remove the row{hint}"
            )

    index = pd.DatetimeIndex(dates.to_numpy())
    if index.tz is not None:
        index = index.tz_localize(None)
    index = index.normalize()  # a close stamped 16:00 or 21:00Z is that day's close
    duplicated = np.flatnonzero(index.duplicated())
    if duplicated.size:
        row = int(duplicated[0])
        raise DataError(f"{table.where(row)}: date {index[row].date()} appears twice; keep one row per date")
    rows = pd.Series(np.arange(index.size), index=index)
    series = pd.Series(values, index=index, name=column)[~missing].sort_index()
    if series.empty:
        raise DataError(
            f"{table.path}: column {column} holds no values; fill it, or set {column_key} to another column"
        )
    provenance = Provenance(
        source=table.path.suffix.lstrip(".").lower() or "file",
        path=str(table.path),
        sha256=file_sha256(table.path),
        first_date=str(series.index[0].date()),
        last_date=str(series.index[-1].date()),
        rows=int(series.size),
    )
    return SeriesFile(
        values=series,
        provenance=provenance,
        rows=rows.loc[series.index].to_numpy() + table.first_row,
        row_prefix=f"{table.path}: {table.row_word}",
        # the ones inside the window and between the first and last values, where they lose a move (a returns
        # export's blank first row, pandas' pct_change, has none to lose; nor does a column that ends early)
        skipped=int((missing & in_window & (index > series.index[0]) & (index < series.index[-1])).sum()),
        dated=index.sort_values(),
        notes=_column_notes(table, column, kind, column_key),
    )


def _column_notes(table: TableFile, column: str, kind: SeriesKind, column_key: str) -> tuple[str, ...]:
    adjusted = adjusted_beside(list(table.frame.columns), column, kind)
    if adjusted is None:
        return ()
    return (
        f"{table.path}: prices read from '{column}', which leaves out dividends, while the file also has "
        f"'{adjusted}' (dividends and splits adjusted); set {column_key} to '{adjusted}' for total returns",
    )


_GROSS_ROWS = 50
"""Values enough to tell gross returns from prices by how one follows another."""


def _gross_returns(values: np.ndarray) -> bool:
    """Whether levels are 1 + r each period: all within 0.5 of 1, and next to no autocorrelation.

    A price carries yesterday's level into today's (lag-1 autocorrelation
    near 1, however calm); gross returns do not (near 0), and read as
    prices they are fitted as a series that never goes anywhere.
    """
    finite = values[np.isfinite(values)]
    if finite.size < _GROSS_ROWS or not np.all(np.abs(finite - 1.0) < 0.5) or np.ptp(finite) == 0.0:
        return False
    return bool(np.corrcoef(finite[:-1], finite[1:])[0, 1] < 0.5)
