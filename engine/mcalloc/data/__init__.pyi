"""Names of :mod:`mcalloc.data`, imported on first use (see ``__init__.py``)."""

from . import builtin, files, market
from .builtin import BUILTIN_DATASETS, describe_builtin, load_builtin
from .files import Provenance, SeriesFile, file_sha256, read_series, read_table
from .market import (
    MarketData,
    SeriesRequest,
    align_levels,
    check_frequency,
    check_gaps,
    levels_from,
    load_levels,
    load_market_data,
    missing_on_dropped,
    observations_needed,
    periodic_returns,
    resample_levels,
    suspicious_moves,
    translate_levels,
)

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
    "suspicious_moves",
    "translate_levels",
]
