"""The scenario's sections but ``model`` and ``optimize``: assets, data, currency, simulation, portfolio, tax, output.

:mod:`mcalloc.config.schema` joins them into a :class:`~mcalloc.config.schema.Scenario`
and checks what depends on more than one section. Units are those listed there.
"""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from mcalloc.config.base import AssetName, Frozen, Identifier
from mcalloc.config.model_schema import (
    StartConfig,
)

__all__ = [
    "CURRENCY_PATTERN",
    "ECB_SOURCE",
    "MAX_MONEY",
    "AssetConfig",
    "BandConfig",
    "CalendarDate",
    "CalibrationCheckConfig",
    "CurrencyCode",
    "CurrencyConfig",
    "DataConfig",
    "DepotConfig",
    "FlowConfig",
    "Identifier",
    "IskConfig",
    "OutputConfig",
    "PortfolioConfig",
    "RebalanceFrequency",
    "SimulationConfig",
    "TaxConfig",
    "check_scheduler_address",
    "not_at_the_ecb",
]


RebalanceFrequency = Literal["daily", "monthly", "quarterly", "annual", "never", "flows"]


ECB_SOURCE = re.compile(r"^builtin:ecb:([A-Z]{3})/([A-Z]{3})$")
"""A built-in ECB exchange rate, ``builtin:ecb:CCY1/CCY2``: the price of one CCY1 in CCY2."""


def check_scheduler_address(value: str) -> None:
    """Refuse a dask scheduler address distributed cannot connect to, before any run (``ValueError``)."""
    # a host name or address (IPv6 in brackets) and a port, as distributed parses them
    address = re.fullmatch(r"tcp://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})", value)
    if address is None or not 0 < int(address.group(2)) < 65536:
        raise ValueError(
            f"{value!r} is not an address mcalloc can connect to; give the scheduler's tcp://HOST:PORT "
            "(PORT a number, 8786 unless the scheduler was started with another; mcalloc connects without "
            "TLS or other transports)"
        )


def not_at_the_ecb(code: str, base: str) -> str | None:
    """The first of ``code`` and ``base`` the bundled ECB rates do not price, or None."""
    from mcalloc.data.builtin import ecb_currencies

    return next((c for c in (code, base) if c not in ecb_currencies()), None)


MAX_MONEY = 1e12
"""Largest amount of money a scenario may name (wealth, contributions, fees, allowances): beyond it
float arithmetic on wealth paths loses cents and products of amounts overflow."""


def _not_a_number(code: str) -> str:
    if code in ("INF", "NAN"):
        raise ValueError(
            f"'{code}' is no currency (ISO 4217 has no such code), and the results' CSV files would read it back as "
            "a number; give a three-letter currency code such as SEK or USD"
        )
    return code


CURRENCY_PATTERN = r"^[A-Z]{3}$"
"""What ``CurrencyCode`` matches; the loader words its own message for a code that does not."""

CurrencyCode = Annotated[str, Field(pattern=CURRENCY_PATTERN), AfterValidator(_not_a_number)]

_EXPECTED_DATE = "expected a date YYYY-MM-DD, such as 2005-01-01"


def _zero_padded(text: str) -> str | None:
    """``2005-01-01`` for ``2005-1-1``: a real day with a one-digit month or day; None for anything else."""
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if match is None:
        return None
    try:
        return datetime.date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:  # no such day (2005-2-30): the general message says so
        return None


def _calendar_date(value: object) -> object:
    """A date as written ``YYYY-MM-DD`` (YAML reads it as a date), or a midnight; anything else is refused.

    pydantic would read a number as seconds since 1970: ``20050101`` is not
    2005-01-01, and ``0`` would be 1970-01-01.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.datetime.fromisoformat(text) if "-" in value else value
        except ValueError as error:
            padded = _zero_padded(text)
            if padded is not None:  # a real day, written without its zeros: say how to write it
                raise ValueError(f"{value!r}: write the date as YYYY-MM-DD, here {padded}") from None
            raise ValueError(f"{value!r} is not a date ({error}); {_EXPECTED_DATE}") from None
    if isinstance(value, datetime.datetime):
        if value.time() != datetime.time(0) or value.tzinfo is not None:
            raise ValueError(f"{value} has a time of day or a time zone; {_EXPECTED_DATE}")
        return value.date()
    if isinstance(value, datetime.date):
        return value
    raise ValueError(f"{value!r} is not a date; {_EXPECTED_DATE}")


CalendarDate = Annotated[datetime.date, BeforeValidator(_calendar_date)]
"""A date written ``YYYY-MM-DD``; numbers and other text are refused, not read as a timestamp."""


class AssetConfig(Frozen):
    """One investable asset; ``ter`` is the annual total expense ratio (decimal) of the fund held.

    ``ter_in_model`` is the fee already inside the returns the model
    describes (the TER of the fund whose prices it was fitted to; 0 for an
    index): only ``ter`` over it is charged. ``trading_cost_bps`` is what a
    trade costs (a rebalance's, a contribution's or a withdrawal's), in
    basis points of the value traded (spread and commission as a rate).
    ``currency`` is the currency the asset is priced in; ``None`` means the
    scenario's base currency. ``withheld_abroad``: whether an ISK's
    ``foreign_withholding`` is withheld on the fund's dividends; ``None``
    decides by its currency (a fund priced in another currency than the
    base is taken for a foreign, US fund), ``false`` for a foreign fund whose
    dividends reach the account untaxed (an Irish UCITS fund priced in USD),
    ``true`` for a foreign fund priced in the base currency.
    """

    name: AssetName
    label: str | None = None
    ter: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    ter_in_model: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    trading_cost_bps: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.0
    dividend_yield: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0
    currency: CurrencyCode | None = None
    withheld_abroad: bool | None = None

    def withholds(self, base: str) -> bool:
        """Whether an ISK's foreign withholding is taken from this fund's dividends (see ``withheld_abroad``)."""
        if self.withheld_abroad is not None:
            return self.withheld_abroad
        return self.currency not in (None, base)

    @property
    def display_name(self) -> str:
        return self.label or self.name


class DataConfig(Frozen):
    """Where historical data for fitting comes from, and how to prepare it.

    Each entry of ``paths`` is a CSV or Parquet file (by extension) or
    ``builtin:NAME`` (see ``mcalloc data list``). Alternatively ``file`` names
    one wide file holding a column per asset (``columns`` maps asset to
    column; by default the column is the asset's name).
    """

    source: Literal["auto", "csv", "parquet", "builtin"] = "auto"
    paths: dict[str, str] = Field(default_factory=dict)
    file: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    kind: Literal["prices", "returns"] = "prices"
    date_column: str | None = None
    date_format: str | None = None
    value_column: str | None = None
    start: CalendarDate | None = None
    end: CalendarDate | None = None
    frequency: Literal["daily", "weekly", "monthly"] = "daily"
    fill_limit: Annotated[int, Field(ge=0, le=31)] = 0
    max_gap_days: Annotated[int, Field(gt=0, le=3660)] | None = None
    max_missing_run: Annotated[int, Field(ge=0, le=1000)] = 5
    suspicious_move: Annotated[float, Field(gt=0.0, le=10.0)] | None = None

    @model_validator(mode="after")
    def _one_layout(self) -> DataConfig:
        if self.file is not None and self.paths:
            raise ValueError("file: give either one wide file or per-asset paths, not both")
        if self.file is None and not self.paths:
            raise ValueError("paths: give a file (or builtin:NAME) per asset, or one wide file")
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start|end: start {self.start} is not before end {self.end}; move one of them")
        if self.date_format is not None:
            sample = datetime.datetime(2001, 2, 3)
            try:
                datetime.datetime.strptime(sample.strftime(self.date_format), self.date_format)
            except ValueError as error:
                raise ValueError(
                    f"date_format: {self.date_format!r} is not a date format Python can read ({error}); "
                    "use strftime codes such as '%d/%m/%Y'"
                ) from None
        return self

    def source_for(self, asset: str) -> tuple[str, str | None]:
        """The series spec and value column for one asset."""
        if self.file is not None:
            return self.file, self.columns.get(asset, asset)
        return self.paths[asset], self.columns.get(asset, self.value_column)


class CurrencyConfig(Frozen):
    """The investor's currency and how foreign-currency assets are converted.

    ``fx`` maps each foreign currency to a series giving the price of one
    unit of it in the base currency (a file, or ``builtin:ecb:USD/SEK``).
    ``mode: factor`` fits and simulates each exchange rate as a risk factor
    jointly with the assets; ``translate`` converts the assets' history to
    the base currency before fitting, so their models carry the FX risk.
    ``compare_in`` (factor mode, every asset priced in that one currency)
    also judges every portfolio as an investor in the assets' own currency
    would live it, on the same simulated paths: the exchange rate's part of
    the outcome, side by side.
    """

    base: CurrencyCode = "USD"
    mode: Literal["factor", "translate"] = "factor"
    fx: dict[CurrencyCode, str] = Field(default_factory=dict)
    compare_in: CurrencyCode | None = None


class SimulationConfig(Frozen):
    """Size and layout of the Monte Carlo run.

    ``chunk_size`` fixes how paths are split into independently seeded chunks;
    together with the seed it fixes every number, whatever ``n_jobs`` is and
    wherever the chunks run: ``backend: loky`` (this machine's cores) or
    ``dask`` (a dask.distributed cluster at ``scheduler``, e.g.
    ``tcp://host:8786``; without one, a local cluster of ``n_jobs`` worker
    processes).
    """

    n_paths: Annotated[int, Field(ge=2, le=100_000_000)] = 10_000
    horizon_years: Annotated[int, Field(gt=0, le=100)] = 10
    steps_per_year: Annotated[int, Field(ge=12, le=366)] = 252
    chunk_size: Annotated[int, Field(gt=0, le=1_000_000)] = 1000
    n_jobs: Annotated[int, Field(ge=-1, le=1024)] = -1
    backend: Literal["loky", "dask"] = "loky"
    scheduler: str | None = None

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None:
            check_scheduler_address(value)
        return value

    @model_validator(mode="after")
    def _workers(self) -> SimulationConfig:
        if self.n_jobs == 0:
            raise ValueError("n_jobs: must be a positive number of workers, or -1 for one per core")
        if self.scheduler is not None and self.backend != "dask":
            raise ValueError("scheduler: is for backend: dask; set simulation.backend: dask or drop the scheduler")
        return self

    start: StartConfig = StartConfig()

    @property
    def n_steps(self) -> int:
        return self.horizon_years * self.steps_per_year

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_paths / self.chunk_size)


class BandConfig(Frozen):
    """A no-trade band: rebalance only books with a weight more than ``width`` from its target.

    ``absolute``: ``|w - target| > width`` (0.05: five percentage points);
    ``relative``: ``|w - target| > width * target``.
    """

    kind: Literal["absolute", "relative"] = "absolute"
    width: Annotated[float, Field(gt=0.0, le=1.0)]


class FlowConfig(Frozen):
    """A contribution or withdrawal plan, in the base currency (see :mod:`mcalloc.portfolio.flows`).

    Exactly one of ``amount`` (per occurrence, growing by ``indexation`` a
    year) and ``percent`` (withdrawals only: a yearly share of wealth, paid
    in equal parts per occurrence). Flows run from ``start_year`` (years
    after the start) up to, not including, ``end_year``.
    """

    kind: Literal["contribution", "withdrawal"]
    amount: Annotated[float, Field(ge=0.0, le=MAX_MONEY)] | None = None
    percent: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    frequency: Literal["monthly", "quarterly", "annual"] = "monthly"
    start_year: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    end_year: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    indexation: Annotated[float, Field(gt=-0.5, lt=0.5)] = 0.0
    currency: CurrencyCode | None = None

    @model_validator(mode="after")
    def _one_size(self) -> FlowConfig:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("amount: give exactly one of amount (currency per flow) and percent (share of wealth)")
        if self.percent is not None and self.kind != "withdrawal":
            raise ValueError("percent: only withdrawals can be a share of wealth; give a contribution's amount")
        if self.percent is not None and self.indexation:
            raise ValueError(
                "indexation: grows an amount; a percent withdrawal is a share of wealth, which grows with it; "
                "drop indexation, or give an amount"
            )
        if self.end_year is not None and self.end_year <= self.start_year:
            raise ValueError(f"end_year: {self.end_year} must be after start_year ({self.start_year})")
        return self

    def month_span(self, horizon_years: int) -> tuple[int, int]:
        """The first month of the flow and the month it stops before, within ``horizon_years``, in whole months.

        A year is rounded to the nearest month, a half up (Python's ``round``
        takes halves to the even month: 0.375 years started in month 4, 0.125
        in month 2).
        """
        n_months = 12 * horizon_years
        last = n_months if self.end_year is None else min(n_months, _nearest_month(self.end_year))
        return _nearest_month(self.start_year), last


def _nearest_month(years: float) -> int:
    """``years`` in months, to the nearest month; a half up."""
    return math.floor(12.0 * years + 0.5)


class PortfolioConfig(Frozen):
    """How portfolios are run: rebalancing, starting wealth and benchmark mixes.

    ``reference`` names the benchmark every other portfolio is compared with
    in ``diversification.csv`` (default: the first benchmark). ``band``
    rebalances only books that drifted outside it, on the ``rebalance``
    calendar; ``courtage`` is a fixed cost per asset traded, in the base
    currency (with the assets' ``trading_cost_bps``); ``initial_costs``:
    the initial investment pays them too, as a contribution of
    ``initial_wealth`` into an empty account would (false: the portfolio is
    already held); ``flows`` are contributions and withdrawals
    (:class:`FlowConfig`).
    """

    rebalance: RebalanceFrequency = "monthly"
    initial_wealth: Annotated[float, Field(gt=0.0, le=MAX_MONEY)] = 100_000.0
    benchmarks: dict[Identifier, dict[str, Annotated[float, Field(ge=0.0)]]] = Field(default_factory=dict)
    reference: Identifier | None = None
    band: BandConfig | None = None
    courtage: Annotated[float, Field(ge=0.0, le=MAX_MONEY)] = 0.0
    initial_costs: bool = True
    flows: list[FlowConfig] = Field(default_factory=list)
    risk_free: Annotated[float, Field(gt=-0.5, lt=0.5)] = 0.0
    inflation: Annotated[float, Field(gt=-0.5, lt=0.5)] = 0.0

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> PortfolioConfig:
        if self.band is not None and self.rebalance in ("daily", "never", "flows"):
            raise ValueError(
                f"band: bands are checked on the rebalance calendar, and '{self.rebalance}' has none; "
                "set rebalance to monthly, quarterly or annual"
            )
        if self.rebalance == "flows" and not self.flows:
            raise ValueError(
                "rebalance: 'flows' steers weights with contributions and withdrawals; add portfolio.flows"
            )
        if self.courtage > 0 and self.rebalance == "daily":
            raise ValueError("courtage: trading costs are not booked with daily rebalancing; choose monthly or longer")
        for name, weights in self.benchmarks.items():
            total = sum(weights.values())
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"benchmarks.{name}: weights sum to {total:.6g}; they must sum to 1")
        if self.reference is not None and self.reference not in self.benchmarks:
            raise ValueError(
                f"reference: '{self.reference}' is not a benchmark (benchmarks: {', '.join(self.benchmarks) or 'none'})"
            )
        return self

    @property
    def reference_name(self) -> str | None:
        """The portfolio others are compared with: ``reference``, else the first benchmark, else none."""
        return self.reference if self.reference is not None else next(iter(self.benchmarks), None)


class CalibrationCheckConfig(Frozen):
    """The calibration report of fitted runs: simulated windows per data window (``n_paths: 0`` skips it)."""

    n_paths: Annotated[int, Field(ge=0, le=100_000)] = 1000
    window_years: Annotated[int, Field(ge=1, le=50)] = 6


class OutputConfig(Frozen):
    """Where results go and which optional files are written.

    ``paths`` writes ``paths.parquet``, one row per path and portfolio (about
    50 bytes a row: 300 MB for a million paths and six portfolios).
    ``report`` writes ``report.html`` and ``figures/``; ``report_portfolios``
    picks the portfolios of its fan chart (default: every distinct mix, up
    to six).
    """

    dir: Path = Path("results")
    calibration: CalibrationCheckConfig = CalibrationCheckConfig()
    paths: bool = True
    report: bool = True
    report_portfolios: Annotated[list[Identifier], Field(max_length=12)] = Field(default_factory=list)


class IskConfig(Frozen):
    """The Swedish investment savings account's yearly tax (Skatteverket's method; values as inputs).

    The capital base is a quarter of (the account's value at the start of
    each quarter plus the deposits made during the year), less the tax-free
    ``allowance``; the standard income is the base times
    ``max(government_bond_rate + margin, floor)``; the tax is ``tax_rate``
    of it. Defaults: income year 2026 — the government bond rate of 30
    November 2025 (2.55%, Riksgälden), plus 1 percentage point, floor 1.25%,
    30% capital income tax, SEK 300,000 tax-free. ``foreign_withholding``
    is withheld on the dividends of funds priced in another currency than
    the base (``assets[].dividend_yield``; 15% for US dividends under the
    treaty) and credited against the ISK tax, up to it.
    """

    government_bond_rate: Annotated[float, Field(ge=-0.1, le=0.5)] = 0.0255
    margin: Annotated[float, Field(ge=0.0, le=0.5)] = 0.01
    floor: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0125
    tax_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.30
    allowance: Annotated[float, Field(ge=0.0, le=MAX_MONEY)] = 300_000.0
    foreign_withholding: Annotated[float, Field(ge=0.0, le=1.0)] = 0.15

    @property
    def standard_rate(self) -> float:
        """The yearly rate of standard income (schablonränta)."""
        return max(self.government_bond_rate + self.margin, self.floor)


class DepotConfig(Frozen):
    """An ordinary Swedish securities account (depå): tax on realised gains and on dividends.

    Gains are realised at each sale (rebalancing, withdrawals, paying the
    tax) by the average-cost method; a year's gains and losses offset each
    other; ``capital_gains_rate`` of a net gain is paid at the year's end. A
    net loss earns back ``capital_gains_rate`` of ``loss_deduction`` of it
    (70% of a loss on listed securities is deductible against other capital
    income; it assumes there is enough to deduct it from), and of a deficit
    beyond ``deficit_limit`` (SEK) only ``deficit_rate_above``. Dividends
    (``assets[].dividend_yield``) are taxed at ``dividend_tax_rate`` as they
    are paid (foreign withholding credited), the rest reinvested.
    ``fund_standard_income``: fund units (ETFs included) held outside an ISK
    carry a yearly standard income of 0.4% of their value at the start of
    the year (schablonintäkt på fondandelar, since 2012), capital income
    taxed at ``capital_gains_rate`` with the year's gains and losses; 0 for
    directly held shares. ``liquidate_at_horizon`` sells everything at the
    end and pays the tax, so that wealth compares like for like with an ISK.
    """

    capital_gains_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.30
    loss_deduction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.70
    deficit_limit: Annotated[float, Field(ge=0.0)] | None = 100_000.0
    deficit_rate_above: Annotated[float, Field(ge=0.0, le=1.0)] = 0.21
    dividend_tax_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.30
    fund_standard_income: Annotated[float, Field(ge=0.0, le=0.1)] = 0.004
    liquidate_at_horizon: bool = True


class TaxConfig(Frozen):
    """How the account is taxed: ``none`` (the default), ``isk`` or ``depot``."""

    kind: Literal["none", "isk", "depot"] = "none"
    isk: IskConfig = IskConfig()
    depot: DepotConfig = DepotConfig()

    def unused_settings(self) -> list[str]:
        """The sections (``isk``, ``depot``) set to other than their defaults that ``kind`` does not use."""
        defaults = {"isk": IskConfig(), "depot": DepotConfig()}
        return [name for name, default in defaults.items() if self.kind != name and getattr(self, name) != default]
