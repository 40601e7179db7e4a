"""Read the tables that hold price or return series, from CSV and Parquet files, strictly.

Row numbers in error messages are the CSV file's line numbers (the header is
line 1) or, for Parquet, 1-based row numbers, so a user can jump straight to
the bad row. A spreadsheet or another format is refused with what to do;
:mod:`mcalloc.data.series` takes one series from a table.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mcalloc.errors import DataError

__all__ = [
    "DATE_COLUMNS",
    "Provenance",
    "SeriesFile",
    "TableFile",
    "file_sha256",
    "first_non_utf8",
    "read_table",
]

SeriesKind = Literal["prices", "returns"]

DATE_COLUMNS = ("Date", "date", "DATE", "Datetime", "datetime", "timestamp", "Timestamp", "time")

_SPREADSHEETS = frozenset({".xlsx", ".xlsm", ".xls", ".ods", ".numbers"})
"""Extensions of spreadsheet files: refused by name, where reading them as CSV would report a stray byte."""

_OTHER_FORMATS = {
    ".json": "a JSON file",
    ".jsonl": "a JSON file",
    ".xml": "an XML file",
    ".html": "a web page",
    ".htm": "a web page",
    ".h5": "an HDF5 file",
    ".hdf5": "an HDF5 file",
    ".feather": "a Feather file",
    ".pkl": "a pickle",
    ".pickle": "a pickle",
    ".pdf": "a PDF",
}
"""Extensions of other formats mcalloc does not read, named in the refusal instead of a CSV parser's complaint."""

_ARCHIVES = {
    ".gz": "a gzip-compressed file",
    ".bz2": "a bzip2-compressed file",
    ".xz": "an xz-compressed file",
    ".zst": "a zstd-compressed file",
    ".zip": "a zip archive",
    ".7z": "a 7-Zip archive",
    ".tar": "a tar archive",
}
"""Compressed files, refused by name: pandas would read them, but a cut-off download is found in the lines."""


@dataclass(frozen=True)
class Provenance:
    """Where one input series came from, for the run manifest."""

    source: str
    path: str
    sha256: str
    first_date: str
    last_date: str
    rows: int

    @property
    def shown(self) -> str:
        """How messages name the series: a built-in dataset by its name, not by its file inside the package."""
        return self.source if self.source.startswith("builtin:") else self.path


@dataclass(frozen=True)
class SeriesFile:
    """A validated series: ``values`` indexed by sorted, unique, tz-free dates.

    ``rows`` gives, for each value, its row in the file (for messages), and
    ``row_prefix`` how to cite one (``"data.csv: line"``); both are empty for
    built-in datasets. ``skipped`` counts the missing values left out (runs
    of at most ``max_missing_run``).
    """

    values: pd.Series
    provenance: Provenance
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int), repr=False, compare=False)
    row_prefix: str = ""
    skipped: int = 0
    dated: pd.DatetimeIndex | None = field(default=None, repr=False, compare=False)
    """Every date with a row in the file, a value or not (None for built-in datasets)."""
    notes: tuple[str, ...] = ()
    """Warnings about how the file was read (a close chosen beside an adjusted one)."""

    def where(self, date: pd.Timestamp) -> str:
        """Cite the file row of ``date``, or the source when rows are unknown."""
        if self.rows.size == self.values.size and date in self.values.index:
            return f"{self.row_prefix} {self.rows[self.values.index.get_loc(date)]}"
        return self.provenance.shown


@dataclass(frozen=True)
class TableFile:
    """A file read as text columns, with how to name its rows in messages."""

    path: Path
    frame: pd.DataFrame
    row_word: str
    first_row: int

    def where(self, row: int) -> str:
        return f"{self.path}: {self.row_word} {row + self.first_row}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_non_utf8(path: Path) -> tuple[int, int] | None:
    """The line (from 1) and value of the first byte of ``path`` that is not UTF-8, or None if all are.

    Read in blocks, so a large file is not held twice; a character cut by a
    block's end is completed from the next, as a decoder does.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while True:
            block = handle.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                # the error's text is the decoder's held bytes (part of one character, no line end) and the block
                return line + error.object[: error.start].count(b"\n"), error.object[error.start]
            if not block:
                return None
            line += block.count(b"\n")


def read_table(path: Path, key: str = "data.paths") -> TableFile:
    """Read a CSV or Parquet file (by extension) as columns of text; ``key`` is the setting that names it."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file; check {key} in the scenario")
    if not path.is_file():
        raise DataError(f"{path}: data file not found; check {key} in the scenario")
    if path.suffix.lower() in _SPREADSHEETS:
        raise DataError(f"{path}: a spreadsheet, which mcalloc does not read; save the sheet as CSV and give that file")
    if path.suffix.lower() in _OTHER_FORMATS:
        raise DataError(
            f"{path}: {_OTHER_FORMATS[path.suffix.lower()]}, which mcalloc does not read; "
            "give a CSV file (a header such as Date,Close and one line per day) or a Parquet file"
        )
    if path.suffix.lower() in _ARCHIVES:
        raise DataError(
            f"{path}: {_ARCHIVES[path.suffix.lower()]}, which mcalloc does not read; extract the CSV or Parquet file "
            "inside and give that"
        )
    parquet = _starts_parquet(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        if parquet is False:  # every Parquet file opens with PAR1: pyarrow's words would send the user to rewrite it
            raise DataError(
                f"{path}: not a Parquet file (it does not start as one does; a CSV file named .parquet?); give the "
                "file a name that ends in what it is, .csv for CSV"
            )
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; all mean "unreadable"
            raise DataError(
                f"{path}: not a readable Parquet file ({type(exc).__name__}); write it again, or check {key}"
            ) from None
        if isinstance(frame.columns, pd.MultiIndex):
            levels = ", ".join(str(name) for name in frame.columns.names if name is not None)
            raise DataError(
                f"{path}: its columns have {frame.columns.nlevels} header levels ({levels or 'unnamed'}; a yfinance "
                "download has Price and Ticker); write it with one, such as Date and Close (for one ticker: "
                "frame.columns = frame.columns.get_level_values(0))"
            )
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        # pandas 3 keeps a missing value missing through astype(str): blank it by the frame's own mask
        frame = frame.astype(str).mask(frame.isna(), "").replace({"None": "", "NaT": "", "nan": ""})
        return TableFile(path=path, frame=frame, row_word="row", first_row=1)
    if parquet:
        raise DataError(f"{path}: a Parquet file named as CSV; rename it to end in .parquet, which is read as Parquet")
    _check_no_comment_lines(path)
    _check_separator(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except UnicodeDecodeError:
        found = first_non_utf8(path)
        where = f"line {found[0]}: byte 0x{found[1]:02x}" if found else "a byte"
        raise DataError(f"{path}: {where} is not UTF-8; save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        text = str(exc).strip()
        # pandas' words for the two common breaks, in the file's lines: pandas counts records (the header
        # the first), and a quoted value can span lines, so the records are mapped back to lines
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
        if fields:
            expected, record, seen = fields.groups()
            raise DataError(
                f"{path}: line {_record_line(path, int(record))}: {seen} fields where the header has {expected} "
                "(a comma inside a value?); fix or remove the row"
            ) from None
        quote = re.search(r"EOF inside string starting at row (\d+)", text)
        if quote:
            line = _record_line(path, int(quote.group(1)) + 1)
            raise DataError(
                f'{path}: line {line}: a quote (") opens there and never closes; close or remove it'
            ) from None
        first_line = text.splitlines()[0] if text else "empty file"
        raise DataError(
            f"{path}: not a readable CSV file ({first_line}); give a header row (Date,Close) and one line per day"
        ) from None
    except OSError as exc:  # no permission, an I/O error
        raise DataError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); check {key}") from None
    if not isinstance(frame.index, pd.RangeIndex) and _row_numbers(frame.index):
        # R's write.table(sep = ","): row names 1, 2, ... with no header field of their own
        frame = frame.reset_index(drop=True)
    if not isinstance(frame.index, pd.RangeIndex):
        # every row has a field more than the header, and pandas took the first as the row labels: the dates
        # would be read from the next field, a price's digits after its decimal comma among them
        raise DataError(
            f"{path}: line {_record_line(path, 2)}: {frame.shape[1] + frame.index.nlevels} fields where the header "
            f"has {frame.shape[1]} (a decimal comma, or a comma at the end of every line?); save the file with '.' "
            "decimals and one field per header name"
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    for row in range(min(2, len(frame))):
        first = str(frame.iloc[row, 0]).strip()
        if first in DATE_COLUMNS or first.lower() == "ticker":
            raise DataError(
                f"{path}: line {_record_line(path, row + 2)}: '{first}' under the header, a second header row "
                "(yfinance writes Price, Ticker and Date rows); keep one header row, with the date column named "
                "Date, and delete the others"
            )
    table = TableFile(path=path, frame=frame, row_word="line", first_row=2)
    _check_last_line(table)  # on every row: a cut-off last line of empty fields is named as the file's last
    if len(frame) and not (frame.iloc[-1].str.strip() != "").any():
        # a spreadsheet's export ends in rows of empty fields (,,,,), which are no more data than blank lines
        filled = np.flatnonzero(frame.apply(lambda column: column.str.strip() != "").any(axis=1).to_numpy())
        table = replace(table, frame=frame.iloc[: int(filled[-1]) + 1 if filled.size else 0])
    return table


def _check_separator(path: Path) -> None:
    """Refuse a header that is one column holding another separator: a file separated by ``;``, tabs or ``|``.

    Checked before pandas reads the rows, whose decimal commas would otherwise
    be blamed for splitting them in two, or break its parsing.
    """
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            columns = next(csv.reader([handle.readline()]), [])
    except (OSError, csv.Error):  # read_csv names the reason
        return
    separator = next((c for c in (";", "\t", "|") if len(columns) == 1 and c in columns[0]), None)
    if separator is not None:
        decimals = ", with '.' decimals" if separator == ";" else ""
        raise DataError(
            f"{path}: the header {columns[0].strip()!r} is a single column: the file is separated by {separator!r}, "
            f"not commas; save it as comma-separated values{decimals}"
        )


def _starts_parquet(path: Path) -> bool | None:
    """Whether the file opens with Parquet's magic bytes ``PAR1``; None if it cannot be read (the reader says why)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return None
    return head == b"PAR1" if len(head) == 4 else None  # an empty or tiny file: the reader says what it is


def _check_no_comment_lines(path: Path) -> None:
    """Refuse a CSV whose first lines are ``#`` comments (a data vendor's note above the header).

    pandas took the comment for the header and the real header for the first
    row, which then had more fields than the "header": the message named a
    decimal comma, not the comment. A header that starts with ``#`` (``#,Date,Close``,
    a row-number column) has as many fields as the line after it, and is read.
    """
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            lines = [handle.readline() for _ in range(_COMMENT_LINES_SHOWN + 1)]
    except OSError:  # read_csv names the reason
        return
    comments = 0
    while comments < len(lines) and lines[comments].lstrip().startswith("#"):
        comments += 1
    if comments == 0:
        return
    if comments < len(lines) and lines[comments].strip():
        try:
            first, after = (len(next(csv.reader([lines[index]]), [])) for index in (0, comments))
        except csv.Error:  # bytes the csv module will not split: read_csv judges the file
            return
        if first >= after:
            return
    more = f"lines 1 to {comments} are comments" if comments > 1 else "line 1 is a comment"
    if comments > _COMMENT_LINES_SHOWN:
        more = f"lines 1 to {_COMMENT_LINES_SHOWN} and on are comments"
    raise DataError(
        f"{path}: {more} (starting with #), where the header row (Date,Close) should be; "
        "delete the comment lines above the header"
    )


_COMMENT_LINES_SHOWN = 20
"""How many ``#`` lines at a CSV's start are counted for the message."""


def _row_numbers(index: pd.Index) -> bool:
    """Whether ``index`` (one level, text) counts the rows 1, 2, 3, ..., as R's row names do."""
    if index.nlevels != 1 or index.size == 0:
        return False
    numbers = pd.to_numeric(pd.Series(index.astype(str)).str.strip(), errors="coerce")
    return bool(numbers.notna().all() and (numbers.to_numpy() == np.arange(1, index.size + 1)).all())


_TAIL_BYTES = 1 << 16
"""How much of a CSV file's end is read to see whether its last line is whole."""


def _record_line(path: Path, record: int) -> int:
    """The file line where CSV record ``record`` (1: the header) starts; the record number if it cannot be read."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            start = 1
            for number, _ in enumerate(reader, start=1):
                if number == record:
                    return start
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return record


def _check_last_line(table: TableFile) -> None:
    """Refuse a CSV whose last line has no line end and fewer fields than the header: the file was cut off.

    pandas fills the missing fields with empty values, and a price cut off
    mid-number (``88.72`` of ``88.722626``) still reads as a number, so the
    cut is found here or not at all.
    """
    with table.path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    if table.frame.empty or not tail or tail.endswith((b"\n", b"\r")):
        return
    last = tail.replace(b"\r", b"\n").rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    try:
        fields = next(csv.reader([last]), [])
    except csv.Error:  # bytes the csv module will not split (pandas read them somehow): no verdict
        return
    expected = len(table.frame.columns)
    if len(fields) < expected:
        raise DataError(
            f"{table.where(len(table.frame) - 1)}: {len(fields)} of the header's {expected} fields and no line end, "
            "so the file looks cut off; download it again, or complete or remove the row"
        )
