"""The backtest's plan (splits, refits, draws) and the evaluation of one model variant at one split.

The test period runs from the first trading day on or after a split to the
end of the data. Several splits (rolling origins) repeat the whole backtest
from each, so that a verdict does not rest on one stretch of history.

With ``refit_every`` months (of ``MONTH`` trading days) the test period is
cut into segments; each is forecast by a model fitted to all
the data before it (an expanding window), filtered forward through the
segment. Without it, one fit before the split serves the whole period. The
whole-window checks always use the fit at the split.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mcalloc.backtest.forecasts import MONTH, HorizonForecasts, Targets, forecast, window_rows
from mcalloc.backtest.tables import VALIDATION_COLUMNS, forecast_rows, window_check_rows
from mcalloc.config.model_schema import BASELINE_KINDS, StartConfig
from mcalloc.config.schema import Scenario
from mcalloc.data.checks import observations_needed
from mcalloc.data.market import MarketData
from mcalloc.errors import ConfigError, McallocError, check_stop
from mcalloc.models.joint import JointModel
from mcalloc.models.joint_fit import fit_joint_model

__all__ = [
    "MIN_TEST_DAYS",
    "BacktestPlan",
    "Variant",
    "VariantResult",
    "evaluate_variant",
    "first_test_row",
    "parse_split",
    "parse_splits",
]

MIN_TEST_DAYS = 252
"""Test days needed after the split: a year, so that there are twelve monthly forecasts."""


@dataclass(frozen=True)
class BacktestPlan:
    """How the backtest is run.

    Attributes
    ----------
    splits
        The first day of each test period (``YYYY-MM-DD``), oldest first.
    refit_every
        Months (of ``MONTH`` trading days) between refits, or ``None`` for one fit at the split.
    n_draws
        Predictive draws per daily or monthly forecast.
    n_paths
        Simulated test windows for the whole-window checks.
    seed
        Seeds every draw, per variant and segment.
    """

    splits: tuple[str, ...]
    refit_every: int | None = None
    n_draws: int = 2000
    n_paths: int = 1000
    seed: int = 0

    def segments(self, first: int, n_obs: int) -> list[tuple[int, int]]:
        """``(start, stop)`` rows of each fitted segment of the test period."""
        if self.refit_every is None:
            return [(first, n_obs)]
        step = self.refit_every * MONTH
        starts = list(range(first, n_obs, step))
        if len(starts) > 1 and n_obs - starts[-1] < MONTH:
            starts.pop()  # a stub shorter than a month joins the segment before it
        return [(start, stops) for start, stops in zip(starts, [*starts[1:], n_obs], strict=True)]


def parse_split(split: str) -> pd.Timestamp:
    """The split date, which must be written ``YYYY-MM-DD`` and exist.

    Raises
    ------
    ConfigError
        Saying how to write it.
    """
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", split) is None:
            raise ValueError(split)
        return pd.Timestamp(date.fromisoformat(split))
    except ValueError:
        raise ConfigError(f"--split: '{split}' is not a date; give it as YYYY-MM-DD") from None


def parse_splits(texts: Sequence[str]) -> tuple[str, ...]:
    """The split dates of ``--split`` options (each one date or several joined by commas), oldest first, once each.

    Raises
    ------
    ConfigError
        If any is not a ``YYYY-MM-DD`` date, or none is given.
    """
    days = {parse_split(part.strip()) for text in texts for part in text.split(",") if part.strip()}
    if not days:
        raise ConfigError("--split: no date given; give one or more as YYYY-MM-DD[,YYYY-MM-DD...]")
    return tuple(str(day.date()) for day in sorted(days))


def first_test_row(index: pd.DatetimeIndex, split: str, min_fit: int) -> int:
    """The row of the first return on or after ``split``, checked to leave enough data on both sides.

    Raises
    ------
    ConfigError
        If ``split`` is not a date, lies outside the data, or leaves fewer
        than ``min_fit`` returns before it or ``MIN_TEST_DAYS`` after it.
    """
    day = parse_split(split)
    first_day, last_day = index[0].date(), index[-1].date()
    span = f"the data's returns run from {first_day} to {last_day}"
    if day.date() < first_day or day.date() > last_day:
        raise ConfigError(f"--split: {day.date()} is outside the data ({span}); choose a date inside it")
    if index.size < min_fit + MIN_TEST_DAYS:
        raise ConfigError(
            f"data: {span}, {index.size} in all, and a backtest needs {min_fit + MIN_TEST_DAYS} whatever the split "
            f"({min_fit} to fit, {MIN_TEST_DAYS} to test on); move data.start earlier or data.end later"
        )
    first = int(index.searchsorted(day))
    latest = index[-MIN_TEST_DAYS].date() if index.size >= MIN_TEST_DAYS else first_day
    earliest = index[min(min_fit, index.size - 1)].date()
    if first < min_fit:
        raise ConfigError(
            f"--split: only {first} daily returns before {day.date()}, and the model needs at least {min_fit} "
            f"to fit ({span}); choose a split on or after {earliest}"
        )
    if index.size - first < MIN_TEST_DAYS:
        raise ConfigError(
            f"--split: only {index.size - first} daily returns on or after {day.date()}, and the backtest needs "
            f"at least {MIN_TEST_DAYS} (a year) to test on ({span}); choose a split on or before {latest}"
        )
    return first


def check_distinct_tests(index: pd.DatetimeIndex, firsts: dict[str, int]) -> None:
    """Refuse two splits whose tests open on the same trading day: they would run one test twice.

    Raises
    ------
    ConfigError
        Naming both dates and that day.
    """
    seen: dict[int, str] = {}
    for split, first in firsts.items():
        if first in seen:
            raise ConfigError(
                f"--split: {seen[first]} and {split} both start the test on {index[first].date()} (the first "
                "trading day on or after each), so they are the same test; give one of them"
            )
        seen[first] = split


def check_refits(plan: BacktestPlan, index: pd.DatetimeIndex, firsts: dict[str, int]) -> None:
    """Refuse a ``--refit-every`` longer than every split's test period: it would never refit, and say nothing.

    Raises
    ------
    ConfigError
        Naming the longest test period and the most months a refit can be apart inside it.
    """
    if plan.refit_every is None or any(len(plan.segments(first, index.size)) > 1 for first in firsts.values()):
        return
    split = min(firsts, key=firsts.__getitem__)
    n_test = index.size - firsts[split]
    months, most = n_test // MONTH, (n_test - MONTH) // MONTH
    advice = f"give at most {most}, or drop --refit-every" if most >= 1 else "drop --refit-every"
    raise ConfigError(
        f"--refit-every {plan.refit_every}: the longest test period (split {split}, {n_test:,} days from "
        f"{index[firsts[split]].date()}) holds {months} month{'s' if months != 1 else ''} of {MONTH} days, so no "
        "refit would fall "
        f"inside it; {advice}"
    )


def minimum_fit_rows(scenario: Scenario) -> int:
    """Returns the scenario's model needs before the split."""
    marginals = scenario.model.marginals
    kind = "gjr_garch" if marginals.kind == "auto" else marginals.kind
    return observations_needed(kind, marginals.dist, marginals.mean)


@dataclass(frozen=True)
class Variant:
    """One generator to backtest: a dependence model and a marginal law, as a full scenario.

    ``dist`` is ``auto`` under ``model.marginals.kind: auto`` (each series'
    law chosen by BIC); ``notes`` say how the scenario was changed for it.
    """

    dependence: str
    dist: str
    scenario: Scenario
    notes: tuple[str, ...] = ()

    @property
    def is_baseline(self) -> bool:
        """A plain baseline has no volatility models, so no law of their shocks."""
        return self.dependence in BASELINE_KINDS

    @property
    def label(self) -> str:
        return self.dependence if self.is_baseline else f"{self.dependence}/{self.dist}"

    def seed(self, base: int, split: str, segment: int) -> np.random.SeedSequence:
        """The seed of one segment, from the base seed, the variant's label and the split (not positions in lists)."""
        return np.random.SeedSequence([base, zlib.crc32(self.label.encode()), zlib.crc32(split.encode()), segment])


@dataclass(frozen=True)
class VariantResult:
    """One variant's checks (``rows``) and PITs at one split, warnings, and the error that stopped it, if any."""

    label: str
    split: str
    rows: pd.DataFrame
    pits: pd.DataFrame
    warnings: tuple[str, ...] = ()
    error: str | None = None


def _fit(variant: Variant, data: MarketData, stop: int) -> JointModel:
    """The variant's model fitted to the returns before row ``stop``, starting from the last fitted day."""
    before = replace(data, returns=data.returns.iloc[:stop])
    model = fit_joint_model(variant.scenario.model, before)
    return model.starting_at(StartConfig(kind="last"), variant.scenario.simulation.steps_per_year)


def _pit_frame(forecasts: HorizonForecasts, names: list[str], dates: pd.Index) -> pd.DataFrame:
    n_periods = forecasts.starts.size
    return pd.DataFrame(
        {
            "horizon": forecasts.horizon,
            "series": np.tile(names, n_periods),
            "start": np.repeat([str(pd.Timestamp(d).date()) for d in dates[forecasts.starts]], len(names)),
            "realised": forecasts.realised.ravel(),
            "pit": forecasts.pit.ravel(),
        }
    )


def evaluate_variant(
    variant: Variant, data: MarketData, split: str, first: int, plan: BacktestPlan, targets: Targets
) -> VariantResult:
    """Fit, forecast and check one variant over the test period from ``split`` (data row ``first``).

    A model that cannot be fitted is reported, not raised. BLAS runs on one
    thread, as in a joblib worker, so that sums over matrices round the same
    way whichever process evaluates the variant.
    """
    with threadpool_limits(limits=1):
        return _evaluate(variant, data, split, first, plan, targets)


def _evaluate(
    variant: Variant, data: MarketData, split: str, first: int, plan: BacktestPlan, targets: Targets
) -> VariantResult:
    returns = data.returns[list(targets.series)].to_numpy(dtype=float)
    dates = data.returns.index
    segments = plan.segments(first, returns.shape[0])
    daily, monthly, warnings = [], [], []
    window: list[dict[str, object]] = []
    try:
        origin = first  # the first row after the data of the model in charge
        for number, (start, stop) in enumerate(segments):
            try:
                model = _fit(variant, data, start)
                origin = start
            except McallocError as error:
                check_stop()  # in the main process, an error on the way out of a SIGTERM stops the backtest
                if number == 0:
                    raise
                # as a user would: a refit that fails leaves the last model that fitted in charge
                warnings.append(
                    f"{variant.label}, refit before {dates[start].date()} failed, so the fit before "
                    f"{dates[origin].date()} forecasts on: {error}"
                )
            else:
                warnings += [f"{variant.label}, fit before {dates[start].date()}: {w}" for w in model.warnings]
            rng = np.random.default_rng(variant.seed(plan.seed, split, number))
            one_day, one_month = forecast(model, returns, start, stop, targets, plan.n_draws, rng, origin)
            daily.append(one_day)
            monthly.append(one_month)
            if number == 0:
                label = f"{dates[first].date()}..{dates[-1].date()}"
                rows = window_rows(
                    model,
                    returns,
                    first,
                    returns.shape[0],
                    targets,
                    plan.n_paths,
                    rng,
                    variant.scenario.simulation.steps_per_year,
                    label,
                )
                window = window_check_rows(rows, plan.n_paths)
    except McallocError as error:
        empty = pd.DataFrame(columns=VALIDATION_COLUMNS)
        return VariantResult(variant.label, split, empty, pd.DataFrame(), tuple(warnings), str(error))
    joined = [HorizonForecasts.joined(daily), HorizonForecasts.joined([m for m in monthly if m.starts.size])]
    names = targets.names
    records = [*forecast_rows(joined[0], names), *forecast_rows(joined[1], names), *window]
    table = pd.DataFrame.from_records(records).reindex(columns=VALIDATION_COLUMNS)
    table["model"], table["dependence"], table["marginals"] = variant.label, variant.dependence, variant.dist
    if variant.is_baseline:
        table["marginals"] = "-"
    table["split"] = split
    table["passed"] = table["passed"].astype(bool)
    pits = pd.concat([_pit_frame(f, names, dates) for f in joined], ignore_index=True)
    pits.insert(0, "model", variant.label)
    pits.insert(0, "split", split)
    return VariantResult(variant.label, split, table, pits, tuple(warnings))


def describe_test(data: MarketData, first: int) -> dict[str, object]:
    """The fit and test periods, for the manifest and the summary."""
    index = data.returns.index
    return {
        "fit_first": str(index[0].date()),
        "fit_last": str(index[first - 1].date()),
        "n_fit": int(first),
        "test_first": str(index[first].date()),
        "test_last": str(index[-1].date()),
        "n_test": int(index.size - first),
        "n_test_months": (index.size - first) // MONTH,
    }
