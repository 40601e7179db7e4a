"""Turn validated series into aligned daily log returns for fitting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.config.schema import DataConfig
from engine.data.csv import Provenance, read_series_csv
from engine.errors import DataError

__all__ = ["MarketData", "load_market_data", "log_returns"]


@dataclass(frozen=True)
class MarketData:
    """Aligned daily log returns (decimal) with one column per asset."""

    returns: pd.DataFrame
    provenance: tuple[Provenance, ...]
    dropped_dates: int


def log_returns(values: pd.Series, kind: str) -> pd.Series:
    """Log returns from prices, or from simple decimal returns."""
    if kind == "prices":
        return pd.Series(np.log(values), index=values.index).diff().dropna()
    return pd.Series(np.log1p(values.to_numpy()), index=values.index)


def load_market_data(config: DataConfig, asset_names: list[str]) -> MarketData:
    """Read each asset's file, convert to log returns and align on common dates.

    Dates missing from any asset are dropped (inner join); the count is kept
    so the manifest can report it.
    """
    columns: dict[str, pd.Series] = {}
    provenance = []
    for name in asset_names:
        series_file = read_series_csv(
            config.paths[name],
            kind=config.kind,
            date_column=config.date_column,
            value_column=config.value_column,
        )
        values = series_file.values
        if config.start is not None:
            values = values[values.index >= pd.Timestamp(config.start)]
        if config.end is not None:
            values = values[values.index <= pd.Timestamp(config.end)]
        columns[name] = log_returns(values, config.kind)
        provenance.append(series_file.provenance)
    union = pd.concat(columns, axis=1, join="outer")
    aligned = union.dropna()
    if aligned.empty:
        raise DataError(
            "data: the assets' files share no dates"
            + (f" between {config.start} and {config.end}" if config.start or config.end else "")
            + "; check data.paths, data.start and data.end"
        )
    return MarketData(returns=aligned, provenance=tuple(provenance), dropped_dates=len(union) - len(aligned))
