"""Market data: reading, validating and aligning historical series."""

from engine.data.csv import Provenance, SeriesFile, file_sha256, read_series_csv
from engine.data.returns import MarketData, load_market_data, log_returns

__all__ = [
    "MarketData",
    "Provenance",
    "SeriesFile",
    "file_sha256",
    "load_market_data",
    "log_returns",
    "read_series_csv",
]
