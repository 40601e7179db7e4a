"""Names of :mod:`mcalloc.data`, imported on first use (see ``__init__.py``)."""

from . import builtin, checks, files, market, series, unchanged
from .builtin import BUILTIN_DATASETS, describe_builtin, load_builtin
from .checks import check_frequency, check_gaps, missing_on_dropped, observations_needed, suspicious_moves
from .files import Provenance, SeriesFile, file_sha256, read_table
from .market import (
    MarketData,
    SeriesRequest,
    align_levels,
    levels_from,
    load_levels,
    load_market_data,
    periodic_returns,
    resample_levels,
    translate_levels,
)
from .series import read_series

__all__ = [
    "BUILTIN_DATASETS",
    "MarketData",
    "Provenance",
    "SeriesFile",
    "SeriesRequest",
    "align_levels",
    "builtin",
    "check_frequency",
    "check_gaps",
    "checks",
    "describe_builtin",
    "file_sha256",
    "files",
    "levels_from",
    "load_builtin",
    "load_levels",
    "load_market_data",
    "market",
    "missing_on_dropped",
    "observations_needed",
    "periodic_returns",
    "read_series",
    "read_table",
    "resample_levels",
    "series",
    "suspicious_moves",
    "translate_levels",
    "unchanged",
]
