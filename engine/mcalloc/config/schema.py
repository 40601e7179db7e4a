"""The scenario schema: a validated, immutable description of one run.

Units used throughout the schema:

* ``ter``, ``min_return`` and bounds are decimals (0.0009 is 9 basis points);
  ``ter`` and a numeric ``min_return`` are annual rates.
* Marginal model parameters are in arch's units: the model describes daily
  log returns multiplied by 100 (percent), so ``omega`` is in percent squared.
"""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from mcalloc.config.base import Frozen
from mcalloc.config.model_schema import (
    BASELINE_KINDS,
    STEPS_PER_YEAR,
    DependenceConfig,
    MarginalParams,
    MarginalsConfig,
    ModelConfig,
    StartConfig,
    StressConfig,
    check_calibrated_model,
    check_params,
)
from mcalloc.config.optimize_schema import (
    ConstraintsConfig,
    MinCvarObjective,
    MinVarianceObjective,
    Objective,
    OptimizeConfig,
)

__all__ = [
    "AssetConfig",
    "ConstraintsConfig",
    "DataConfig",
    "DependenceConfig",
    "MarginalParams",
    "MarginalsConfig",
    "MinCvarObjective",
    "MinVarianceObjective",
    "ModelConfig",
    "Objective",
    "OptimizeConfig",
    "OutputConfig",
    "PortfolioConfig",
    "Scenario",
    "SimulationConfig",
]

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]

RebalanceFrequency = Literal["daily", "monthly", "quarterly", "annual", "never", "flows"]


_ECB_SOURCE = re.compile(r"^builtin:ecb:([A-Z]{3})/([A-Z]{3})$")


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


def _not_at_the_ecb(code: str, base: str) -> str | None:
    """The first of ``code`` and ``base`` the bundled ECB rates do not price, or None."""
    from mcalloc.data.builtin import ecb_currencies

    return next((c for c in (code, base) if c not in ecb_currencies()), None)


"""A built-in ECB exchange rate, ``builtin:ecb:CCY1/CCY2``: the price of one CCY1 in CCY2."""

MAX_MONEY = 1e12
"""Largest amount of money a scenario may name (wealth, contributions, fees, allowances): beyond it
float arithmetic on wealth paths loses cents and products of amounts overflow."""


CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

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
    scenario's base currency.
    """

    name: Identifier
    label: str | None = None
    ter: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    ter_in_model: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    trading_cost_bps: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.0
    dividend_yield: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0
    currency: CurrencyCode | None = None

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
        if self.end_year is not None and self.end_year <= self.start_year:
            raise ValueError(f"end_year: {self.end_year} must be after start_year ({self.start_year})")
        return self

    def month_span(self, horizon_years: int) -> tuple[int, int]:
        """The first month of the flow and the month it stops before, within ``horizon_years``, in whole months."""
        n_months = 12 * horizon_years
        last = n_months if self.end_year is None else min(n_months, round(12 * self.end_year))
        return round(12 * self.start_year), last


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


class Scenario(Frozen):
    """A complete, validated scenario. Build it with :func:`mcalloc.config.load_scenario`."""

    name: Identifier
    description: str | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    assets: Annotated[list[AssetConfig], Field(min_length=1)]
    data: DataConfig | None = None
    currency: CurrencyConfig = CurrencyConfig()
    model: ModelConfig = ModelConfig()
    simulation: SimulationConfig = SimulationConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    tax: TaxConfig = TaxConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    output: OutputConfig = OutputConfig()

    @property
    def asset_names(self) -> list[str]:
        return [asset.name for asset in self.assets]

    @property
    def foreign_currencies(self) -> list[str]:
        """Currencies other than the base that some asset is priced in, in asset order."""
        base = self.currency.base
        found = [a.currency for a in self.assets if a.currency is not None and a.currency != base]
        return list(dict.fromkeys(found))

    def _priced_in(self, code: str) -> str:
        """The settings that price assets in ``code``: ``assets.0.currency`` (and how many more)."""
        keys = [f"assets.{i}.currency" for i, a in enumerate(self.assets) if a.currency == code]
        return keys[0] + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else "")

    @property
    def fx_factor_names(self) -> list[str]:
        """Exchange-rate risk factors simulated with the assets (``factor`` mode only)."""
        if self.currency.mode != "factor":
            return []
        return [f"fx_{code.lower()}" for code in self.foreign_currencies]

    @property
    def factor_names(self) -> list[str]:
        """Everything the joint model simulates: the assets, then any FX factors."""
        return self.asset_names + self.fx_factor_names

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = self.asset_names
        if len(set(names)) != len(names):
            raise ValueError("assets: names must be unique")
        self._check_fx()
        self._check_data(names)
        self._check_model(names)
        for name, weights in self.portfolio.benchmarks.items():
            for asset in weights:
                if asset not in names:
                    raise ValueError(
                        f"portfolio.benchmarks.{name}: unknown asset '{asset}' (assets are {', '.join(names)})"
                    )
        self._check_optimize(names)
        if self.tax.kind != "none" and self.currency.base != "SEK":
            raise ValueError(
                f"tax.kind: {self.tax.kind} is a Swedish account kept in SEK; set currency.base: SEK "
                f"(not {self.currency.base}) and assets[].currency of funds priced in other currencies "
                "(configs/examples/sweden.yaml)"
            )
        if self.tax.kind == "depot" and self.portfolio.rebalance == "daily":
            raise ValueError(
                "tax.kind: a depot's gains are booked at each trade, which daily rebalancing does not record; "
                "choose monthly or longer rebalancing"
            )
        lows, _ = self.optimize.constraints.weight_bounds(names)
        if self.tax.kind == "depot" and self.optimize.objectives and min(lows) < 0.0:
            # the average-cost method books sales of holdings owned, not a short's gains: its tax would be wrong
            short = names[lows.index(min(lows))]
            raise ValueError(
                f"optimize.constraints.long_only: a depot's gains are booked by average cost of holdings owned, "
                f"which short positions are not ({short} may go to {min(lows):g}); set long_only: true, or bounds "
                "of at least 0 for every asset, with tax.kind: depot"
            )
        horizon = self.simulation.horizon_years
        for index, flow in enumerate(self.portfolio.flows):
            # no month between its ends is a flow that never happens (after the horizon: a run warning)
            first, last = flow.month_span(horizon)
            if first < 12 * horizon and first >= last:
                raise ValueError(
                    f"portfolio.flows.{index}: start_year {flow.start_year:g} and end_year {flow.end_year:g} round "
                    f"to the same month, so no {flow.kind} happens; set them at least a month apart"
                )
            if flow.currency is not None and flow.currency != self.currency.base:
                raise ValueError(
                    f"portfolio.flows.{index}.currency: flows are in the base currency ({self.currency.base}), "
                    f"not {flow.currency}; convert the amount or drop the key"
                )
        self._check_compare_in()
        if self.portfolio.rebalance == "daily" and any(a.trading_cost_bps > 0 for a in self.assets):
            raise ValueError(
                "portfolio.rebalance: trading costs (assets' trading_cost_bps) are not booked with daily "
                "rebalancing; choose monthly or longer, or set trading_cost_bps to 0"
            )
        if not self.portfolio.benchmarks and not self.optimize.objectives:
            raise ValueError(
                "portfolio.benchmarks|optimize.objectives: portfolio.benchmarks and optimize.objectives are both "
                "empty; add a benchmark mix or an objective"
            )
        return self

    def _check_fx(self) -> None:
        base = self.currency.base
        for code, source in self.currency.fx.items():
            if code == base:
                raise ValueError(
                    f"currency.fx.{code}: {code} is the base currency (currency.base), which needs no exchange "
                    "rate; drop the key"
                )
            if code not in self.foreign_currencies:
                raise ValueError(
                    f"currency.fx.{code}: no asset is priced in {code} (assets[].currency, base {base}); "
                    "drop the key or set the asset's currency"
                )
            pair = _ECB_SOURCE.match(source)
            if pair is not None and (pair.group(1), pair.group(2)) != (code, base):
                absent = _not_at_the_ecb(code, base)
                hint = f"the ECB rates have no {absent}, so give a file" if absent else f"builtin:ecb:{code}/{base}"
                raise ValueError(
                    f"currency.fx.{code}: {source} is the price of one {pair.group(1)} in {pair.group(2)}; "
                    f"this key needs the price of one {code} in {base}: {hint}"
                )

    def _check_data(self, names: list[str]) -> None:
        """Every series name in the data section's mappings is an asset, whatever the model's source.

        A calibrated scenario's data section is what ``mcalloc fit`` and
        ``calibrate`` read, so a misspelt name there is refused as in a fit:
        it would otherwise leave its asset on the default file or column.
        """
        if self.data is None:
            return
        for key, mapping in (("paths", self.data.paths), ("columns", self.data.columns)):
            unknown = [n for n in mapping if n not in names]
            if unknown:
                raise ValueError(f"data.{key}: '{unknown[0]}' is not an asset (assets are {', '.join(names)})")

    def _check_compare_in(self) -> None:
        code = self.currency.compare_in
        if code is None:
            return
        if self.currency.mode != "factor" or code == self.currency.base:
            raise ValueError(
                f"currency.compare_in: needs currency.mode: factor and a currency other than the base "
                f"({self.currency.base}); drop the key or set currency.mode: factor"
            )
        other = [a.name for a in self.assets if a.currency != code]
        if other:
            raise ValueError(
                f"currency.compare_in: asset '{other[0]}' is not priced in {code}; the comparison needs every "
                f"asset in {code} (set assets[].currency) or drop the key"
            )
        if self.tax.kind != "none" or self.portfolio.flows:
            raise ValueError(
                f"currency.compare_in: taxes and cash flows are in {self.currency.base}; the {code} investor's "
                "side has neither, so drop tax and portfolio.flows or the key"
            )

    def _check_model(self, names: list[str]) -> None:
        model = self.model
        if model.source == "fit":
            if self.data is None:
                raise ValueError("data: model.source is 'fit' but there is no data section to fit to")
            if self.simulation.steps_per_year not in STEPS_PER_YEAR[self.data.frequency]:
                per_year = {"daily": 252, "weekly": 52, "monthly": 12}[self.data.frequency]
                raise ValueError(
                    f"simulation.steps_per_year: {self.simulation.steps_per_year} does not match "
                    f"data.frequency {self.data.frequency}: a model fitted to {self.data.frequency} returns "
                    f"simulates {self.data.frequency} steps; set simulation.steps_per_year: {per_year}"
                )
            missing = [n for n in names if n not in self.data.paths and self.data.file is None]
            if missing:
                raise ValueError(f"data.paths: no file for asset(s) {', '.join(missing)}")
            no_fx = [c for c in self.foreign_currencies if c not in self.currency.fx]
            if no_fx:
                code, base = no_fx[0], self.currency.base
                absent = _not_at_the_ecb(code, base)
                if absent is not None:  # a typo in a currency code is the likelier cause
                    raise ValueError(
                        f"currency.fx: no exchange-rate series for {code}, which {self._priced_in(code)} names; "
                        f"the ECB rates have no {absent}: check the code, or give a file of the price of one "
                        f"{code} in {base}"
                    )
                raise ValueError(
                    f"currency.fx: no exchange-rate series for {', '.join(no_fx)} (price of one unit in "
                    f"{base}); e.g. {code}: builtin:ecb:{code}/{base}"
                )
        else:
            params = model.marginals.params or {}
            names = self.factor_names
            unknown = [n for n in params if n not in names]
            if unknown:
                raise ValueError(
                    f"model.marginals.params: '{unknown[0]}' is not an asset or FX factor here "
                    f"(expected {', '.join(names)})"
                )
            missing = [n for n in names if n not in params]
            # exchange rates are simulated series in factor mode only (translate converts the history)
            rates = (
                dict(zip(self.fx_factor_names, self.foreign_currencies, strict=True)) if self.fx_factor_names else {}
            )
            if missing and missing[0] in rates:
                code = rates[missing[0]]
                raise ValueError(
                    f"model.marginals.params: no parameters for the exchange rate {missing[0]}, which "
                    f"{self._priced_in(code)}: {code} brings in; check the code, or calibrate the scenario again "
                    f"with currency.fx.{code} (see `mcalloc calibrate`)"
                )
            if missing:
                raise ValueError(
                    f"model.marginals.params: no parameters for asset(s) {', '.join(missing)} "
                    "(calibrated models need parameters for every asset, or set model.source: fit)"
                )
            step = model.marginals.step
            if step is None:  # the parameters are per simulated step: their ranges are judged at its length
                # before the checks across keys, which would blame a key whose value is right (max_variance
                # against an omega out of range)
                for name, given in (model.marginals.params or {}).items():
                    kind = given.kind or model.marginals.kind
                    problem = None if kind == "auto" else check_params(kind, given, self.simulation.steps_per_year)
                    if problem is not None:
                        raise ValueError(f"model.marginals.params.{name}{problem}")
            check_calibrated_model(model, names, self.simulation.start)
            self._check_calibrated_dependence()
            if step is not None and self.simulation.steps_per_year not in STEPS_PER_YEAR[step]:
                per_year = {"daily": 252, "weekly": 52, "monthly": 12}[step]
                raise ValueError(
                    f"simulation.steps_per_year: {self.simulation.steps_per_year} does not match "
                    f"model.marginals.step {step}: the calibrated parameters describe {step} steps; "
                    f"set simulation.steps_per_year: {per_year}"
                )
        self._check_factor()
        self._check_lead_lag()
        corr = model.dependence.correlation
        factors = self.factor_names
        if corr is not None and len(corr) != len(factors):
            raise ValueError(
                f"model.dependence.correlation: is {len(corr)}x{len(corr)} but there are {len(factors)} "
                f"simulated series ({', '.join(factors)})"
            )

    def _check_calibrated_dependence(self) -> None:
        dependence = self.model.dependence
        key = "model.dependence"
        kind = dependence.kind
        if kind in BASELINE_KINDS:
            raise ValueError(
                f"{key}.kind: {kind} is a baseline estimated from data; set model.source: fit and give a data section"
            )
        if kind in ("gaussian", "t", "dcc") and dependence.correlation is None:
            raise ValueError(
                f"{key}.correlation: required for a calibrated {kind} dependence (mcalloc calibrate writes it)"
            )
        if kind == "t" and dependence.nu is None:
            raise ValueError(f"{key}.nu: required for a calibrated t copula (degrees of freedom, at least 2.05)")
        if kind == "dcc" and dependence.dcc is None:
            raise ValueError(f"{key}.dcc: required for a calibrated dcc dependence, e.g. {{a: 0.03, b: 0.95}}")
        if dependence.stress.worst_days is not None:
            raise ValueError(
                f"{key}.stress.worst_days: measured on data, so it needs model.source: fit; "
                "a calibrated scenario holds the stressed correlation itself (use correlation_blend to stress it; "
                "the fit's worst_days belongs in model.fitted_with.stress)"
            )
        if kind == "fhs" and dependence.residuals is None:
            raise ValueError(
                f"{key}.residuals: a calibrated fhs dependence needs the CSV of standardised residuals "
                "that mcalloc calibrate writes beside the calibrated scenario"
            )

    def _check_lead_lag(self) -> None:
        model = self.model
        dependence = model.dependence
        if dependence.lead_lag and model.source != "fit":
            raise ValueError(
                "model.dependence.lead_lag: applied when fitting (model.source: fit); calibrated parameters "
                "already hold the adjusted correlation or loadings, so remove it (the fit's lead_lag belongs in "
                "model.fitted_with)"
            )
        self._check_fit_settings("model.dependence", dependence.lead_lag, dependence.lead_lag_series, dependence.stress)
        if model.fitted_with is not None:
            fitted_with = model.fitted_with
            self._check_fit_settings(
                "model.fitted_with", fitted_with.lead_lag, fitted_with.lead_lag_series, fitted_with.stress
            )

    def _check_fit_settings(self, key: str, lead_lag: int, listed: list[str] | None, stress: StressConfig) -> None:
        """The lead-lag settings a fit uses: the section's own, or those a calibrated model records for a refit."""
        names = self.factor_names
        unknown = [name for name in listed or [] if name not in names]
        if unknown:
            raise ValueError(f"{key}.lead_lag_series: '{unknown[0]}' is not a series here (series: {', '.join(names)})")
        kind = self.model.dependence.kind
        if lead_lag and self.model.factor is None and kind not in ("gaussian", "t", "dcc"):
            raise ValueError(
                f"{key}.lead_lag: adjusts a copula's correlation (gaussian, t, dcc) or, with "
                f"model.factor, the loadings; {kind} has neither, so remove it or add a factor"
            )
        if lead_lag and stress.worst_days is not None and self.model.factor is None:
            raise ValueError(
                f"{key}.lead_lag: without a factor, stress.worst_days replaces the correlation that "
                "lead_lag would adjust, so the two cannot be combined; remove one of them"
            )

    def _check_factor(self) -> None:
        factor = self.model.factor
        if factor is None:
            return
        names = self.factor_names
        if factor.market not in names:
            raise ValueError(
                f"model.factor.market: '{factor.market}' is not a series here (series: {', '.join(names)})"
            )
        if self.model.dependence.kind in BASELINE_KINDS:
            raise ValueError(
                f"model.factor: the {self.model.dependence.kind} baseline has no volatility models to share a "
                "factor; remove model.factor"
            )
        loadings = factor.loadings or {}
        for name, values in loadings.items():
            if name not in names or name == factor.market:
                raise ValueError(
                    f"model.factor.loadings.{name}: not a non-market series here "
                    f"(expected some of {', '.join(n for n in names if n != factor.market)})"
                )
            if not 1 <= len(values) <= 6 or not all(math.isfinite(v) for v in values):
                raise ValueError(
                    f"model.factor.loadings.{name}: give 1 to 6 finite loadings (lag 0, lag 1, ...), got {values}"
                )
        regimes = factor.regimes
        if regimes is not None:
            if regimes.series not in names:
                raise ValueError(
                    f"model.factor.regimes.series: '{regimes.series}' is not a series here (series: {', '.join(names)})"
                )
            if self.model.source == "calibrated" and regimes.loadings is None:
                raise ValueError(
                    "model.factor.regimes: calibrated runs need loadings and transition (mcalloc calibrate writes them)"
                )
            if regimes.loadings is not None and not 1 <= len(regimes.loadings[0]) <= 6:
                raise ValueError("model.factor.regimes.loadings: give 1 to 6 loadings per regime (lag 0, lag 1, ...)")
        if self.model.source == "calibrated":
            missing = [n for n in names if n != factor.market and n not in loadings]
            if missing:
                raise ValueError(
                    f"model.factor.loadings: no loadings for {', '.join(missing)} "
                    "(mcalloc calibrate writes them; 0 means no link to the market)"
                )

    def _check_optimize(self, names: list[str]) -> None:
        constraints = self.optimize.constraints
        for asset in constraints.bounds:
            if asset not in names:
                raise ValueError(f"optimize.constraints.bounds: unknown asset '{asset}'")
        lows, highs = constraints.weight_bounds(names)

        # every bound that takes part, not only the one whose line the error points at; an unlisted
        # asset's default too (a short's -1 counts in the sum)
        def listed(name: str, value: float) -> str:
            return f"{name} {value:.4g}" + ("" if name in constraints.bounds else " (default)")

        if sum(lows) > 1.0 + 1e-12:
            parts = ", ".join(listed(name, low) for name, low in zip(names, lows, strict=True) if low != 0)
            raise ValueError(
                f"optimize.constraints.bounds: weights cannot sum to 1: the minimums add to {sum(lows):.4g} "
                f"({parts}); lower them"
            )
        if sum(highs) < 1.0 - 1e-12:
            parts = ", ".join(listed(name, high) for name, high in zip(names, highs, strict=True))
            raise ValueError(
                f"optimize.constraints.bounds: weights cannot sum to 1: the maximums add to {sum(highs):.4g} "
                f"({parts}); raise them"
            )
        optimize = self.optimize
        source_paths = getattr(optimize.scenarios, "n", None) or optimize.fit_paths(self.simulation.n_paths)
        if optimize.objectives and optimize.batches >= 2 and source_paths // optimize.batches < 2:
            raise ValueError(
                f"optimize.batches: {optimize.batches} batches of the optimiser's {source_paths} paths leave "
                "fewer than 2 paths each; lower batches (0 turns stability.csv off) or raise optimize.n_paths"
            )
        labels = [objective.label for objective in self.optimize.objectives]
        unknown_portfolios = [
            p for p in self.output.report_portfolios if p not in {*labels, *self.portfolio.benchmarks}
        ]
        if unknown_portfolios:
            raise ValueError(
                f"output.report_portfolios: '{unknown_portfolios[0]}' is neither a benchmark nor an objective's name"
            )
        clashes = set(labels) & set(self.portfolio.benchmarks) | {x for x in labels if labels.count(x) > 1}
        if clashes:
            raise ValueError(
                f"optimize.objectives: portfolio name(s) {', '.join(sorted(clashes))} used twice; "
                "give each objective a distinct 'name'"
            )
        for index, objective in enumerate(self.optimize.objectives):
            target = objective.min_return
            if isinstance(target, str) and target.removeprefix("benchmark:") not in self.portfolio.benchmarks:
                raise ValueError(
                    f"optimize.objectives: min_return '{target}' names no benchmark in portfolio.benchmarks"
                )
            budgets = getattr(objective, "budgets", None)
            unknown = [asset for asset in budgets or {} if asset not in names]
            if unknown:
                raise ValueError(f"optimize.objectives.{index}.budgets: unknown asset '{unknown[0]}'")
            missing = [asset for asset in names if asset not in (budgets or {})]
            if budgets is not None and missing:
                raise ValueError(
                    f"optimize.objectives.{index}.budgets: no budget for {', '.join(missing)}; give every asset a "
                    "share of risk (an asset without one would get no weight), or drop budgets for equal shares"
                )
            if objective.kind == "risk_parity" and not constraints.long_only:
                raise ValueError(f"optimize.objectives.{index}: risk_parity needs optimize.constraints.long_only: true")
            if objective.kind == "risk_parity" and (constraints.max_assets or len(names)) < len(names):
                raise ValueError(
                    f"optimize.constraints.max_assets: {constraints.max_assets} assets, but risk_parity "
                    f"(optimize.objectives.{index}) gives each of the {len(names)} its share of the risk, so it holds "
                    "them all; drop max_assets or choose another objective"
                )
            if objective.kind == "risk_parity" and objective.min_return is not None:
                raise ValueError(
                    f"optimize.objectives.{index}.min_return: risk_parity fixes the weights by their risk shares "
                    "alone; drop min_return or choose another objective"
                )
            if objective.log_growth and not constraints.long_only:
                raise ValueError(
                    f"optimize.objectives.{index}: {objective.kind} works on log growth, which short positions can "
                    "make undefined (a path that loses everything); set optimize.constraints.long_only: true"
                    + (" or form: uncompounded" if objective.kind == "min_cvar" else "")
                )
        for group_name, group in constraints.groups.items():
            unknown = [asset for asset in group.assets if asset not in names]
            if unknown:
                raise ValueError(f"optimize.constraints.groups.{group_name}.assets: unknown asset '{unknown[0]}'")
        turnover = constraints.turnover
        if turnover is not None:
            unknown = [asset for asset in turnover.current if asset not in names]
            if unknown:
                raise ValueError(f"optimize.constraints.turnover.current: unknown asset '{unknown[0]}'")
            if abs(sum(turnover.current.values()) - 1.0) > 1e-6:
                raise ValueError(
                    f"optimize.constraints.turnover.current: weights sum to {sum(turnover.current.values()):.6g}, not 1"
                )
        step = self.optimize.grid_step
        if step is not None and abs(round(1.0 / step) * step - 1.0) > 1e-9:
            raise ValueError(f"optimize.grid_step: {step} does not divide 1; use e.g. 0.1, 0.05 or 0.02")
        source = self.optimize.scenarios
        if source.kind == "parametric":
            if sorted(source.mean) != sorted(names):
                raise ValueError(f"optimize.scenarios.mean: needs one mean per asset ({', '.join(names)})")
            if len(source.covariance) != len(names):
                raise ValueError(
                    f"optimize.scenarios.covariance: is {len(source.covariance)}x{len(source.covariance)} but there "
                    f"are {len(names)} assets"
                )
        if constraints.max_assets is not None and constraints.max_assets > len(names):
            raise ValueError(
                f"optimize.constraints.max_assets: {constraints.max_assets} is more than the {len(names)} assets"
            )
