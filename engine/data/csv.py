"""Read one price or return series from a CSV file, strictly.

Row numbers in error messages are the file's line numbers (the header is
line 1), so a user can jump straight to the bad line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from engine.errors import DataError

__all__ = ["Provenance", "SeriesFile", "file_sha256", "read_series_csv"]

_VALUE_COLUMNS = ("Adj Close", "Adj_Close", "adj_close", "adjclose", "Close", "close", "Price", "price", "value")


@dataclass(frozen=True)
class Provenance:
    """Where one input series came from, for the run manifest."""

    source: str
    path: str
    sha256: str
    first_date: str
    last_date: str
    rows: int


@dataclass(frozen=True)
class SeriesFile:
    """A validated series: ``values`` indexed by sorted, unique, tz-free dates."""

    values: pd.Series
    provenance: Provenance


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pick_value_column(path: Path, columns: list[str], requested: str | None) -> str:
    if requested is not None:
        if requested not in columns:
            raise DataError(
                f"{path}: no column '{requested}' (columns are {', '.join(columns)}); "
                "set data.value_column to one of them"
            )
        return requested
    for candidate in _VALUE_COLUMNS:
        if candidate in columns:
            return candidate
    raise DataError(
        f"{path}: no price column found (looked for {', '.join(_VALUE_COLUMNS[:5])}, ...); set data.value_column"
    )


def read_series_csv(
    path: Path,
    *,
    kind: Literal["prices", "returns"] = "prices",
    date_column: str = "Date",
    value_column: str | None = None,
) -> SeriesFile:
    """Read and validate one series.

    Parameters
    ----------
    path
        CSV file with a date column and a value column.
    kind
        ``prices`` must be strictly positive; ``returns`` are simple decimal
        returns and must exceed -1.

    Raises
    ------
    DataError
        Naming the file and line of the first problem.
    """
    if not path.is_file():
        raise DataError(f"{path}: data file not found; check data.paths in the scenario")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty file"
        raise DataError(f"{path}: not a readable CSV file ({first_line})") from None
    columns = [str(c) for c in frame.columns]
    if date_column not in columns:
        raise DataError(
            f"{path}: no date column '{date_column}' (columns are {', '.join(columns)}); set data.date_column"
        )
    column = _pick_value_column(path, columns, value_column)
    if frame.empty:
        raise DataError(f"{path}: no data rows")

    dates = pd.to_datetime(frame[date_column].str.strip(), errors="coerce", format="mixed")
    bad_dates = np.flatnonzero(dates.isna().to_numpy())
    if bad_dates.size:
        row = int(bad_dates[0])
        raise DataError(
            f"{path}: line {row + 2}: cannot read date {frame[date_column].iloc[row]!r}; use ISO dates like 2019-12-31"
        )
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad_values = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
    if bad_values.size:
        row = int(bad_values[0])
        raise DataError(
            f"{path}: line {row + 2}: {column} is {frame[column].iloc[row]!r}, not a number; fix or remove the row"
        )
    if kind == "prices":
        bad = np.flatnonzero(values.to_numpy() <= 0)
        if bad.size:
            row = int(bad[0])
            raise DataError(f"{path}: line {row + 2}: price {values.iloc[row]} is not positive")
    else:
        bad = np.flatnonzero(values.to_numpy() <= -1)
        if bad.size:
            row = int(bad[0])
            raise DataError(f"{path}: line {row + 2}: return {values.iloc[row]} is -100% or worse")

    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(dates.to_numpy()), name=column)
    duplicated = np.flatnonzero(series.index.duplicated())
    if duplicated.size:
        row = int(duplicated[0])
        raise DataError(f"{path}: line {row + 2}: date {series.index[row].date()} appears twice")
    series = series.sort_index()
    provenance = Provenance(
        source="csv",
        path=str(path),
        sha256=file_sha256(path),
        first_date=str(series.index[0].date()),
        last_date=str(series.index[-1].date()),
        rows=int(series.size),
    )
    return SeriesFile(values=series, provenance=provenance)
