"""The one place where mcalloc's stages are wired together, top to bottom.

    load scenario -> load data -> returns -> fit marginals -> fit dependence
      -> simulate the optimiser's paths -> optimise
      -> simulate paths, accounting benchmarks and optimised portfolios -> metrics
      -> write results

The optimiser works on paths of its own (``optimize.n_paths``, from a seed
stream apart from the main one). Every portfolio, benchmark or optimised, is
then judged on the main ``simulation.n_paths`` paths in one pass, so an
optimised portfolio's metrics come from futures it was not fitted to, and
``optimization.csv`` shows its objective on both.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mcalloc.backtest.evaluate import (
    BacktestPlan,
    Variant,
    check_distinct_tests,
    describe_test,
    evaluate_variant,
    first_test_row,
    minimum_fit_rows,
)
from mcalloc.backtest.forecasts import Targets
from mcalloc.backtest.tables import split_summary, verdicts, window_p_value
from mcalloc.config.loader import config_hash, scenario_to_dict
from mcalloc.config.schema import Scenario
from mcalloc.config.sections import CurrencyConfig
from mcalloc.data.files import file_sha256
from mcalloc.data.market import MarketData, load_market_data
from mcalloc.errors import ConfigError, McallocError, ModelError, OutputError
from mcalloc.metrics.distributions import drawdown_distribution_table
from mcalloc.metrics.diversification import DIVERSIFICATION_COLUMNS, diversification_table, standard_errors
from mcalloc.metrics.fan import fan_table
from mcalloc.metrics.horizons import horizons_table, paths_table
from mcalloc.metrics.summary import metrics_table, with_standard_errors
from mcalloc.models.assembly import joint_model_from_config
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.calibration import refit_warnings
from mcalloc.models.joint import JointModel
from mcalloc.models.joint_fit import fit_joint_model
from mcalloc.models.report import model_row
from mcalloc.models.validation import CalibrationSettings, calibration_table
from mcalloc.optimize.run import (
    OPTIMIZATION_COLUMNS,
    Optimization,
    check_constraints,
    optimise,
    optimization_table,
    scenarios_of,
)
from mcalloc.optimize.scenarios import parametric
from mcalloc.portfolio.costs import Band, FeeModel, RebalancePolicy, TradingCosts
from mcalloc.portfolio.flows import CashFlowSchedule
from mcalloc.portfolio.schedule import Schedule
from mcalloc.portfolio.taxes import AccountTax, DepotTax, IskTax
from mcalloc.results.writer import RunFolder, check_final, place_problem, provenance_records
from mcalloc.simulation.currency import CurrencyOverlay
from mcalloc.simulation.paths import ChunkResult, SimulationPlan, local_threads, run_simulation, seed_sequence

__all__ = [
    "BacktestOutcome",
    "RunOutcome",
    "build_model",
    "calibration_gaps",
    "calibration_report",
    "check_inputs",
    "models_table",
    "run_backtest",
    "run_scenario",
]


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run wrote, also kept in memory for callers."""

    folder: Path
    metrics: pd.DataFrame
    weights: pd.DataFrame
    models: pd.DataFrame
    optimization: pd.DataFrame
    diversification: pd.DataFrame
    warnings: tuple[str, ...] = ()
    stability: pd.DataFrame | None = None
    frontier: pd.DataFrame | None = None


class _StageClock:
    """Seconds per stage; ``earlier`` holds time spent on a stage's work before it started (the data read before
    the folder is made), counted once the stage finishes."""

    def __init__(self, report: Callable[[str], None], earlier: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.report = report
        self.earlier = dict(earlier or {})

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.report(f"{name} ...")
        yield
        spent = time.perf_counter() - start + self.earlier.pop(name, 0.0)
        self.timings[name] = round(self.timings.get(name, 0.0) + spent, 3)


def build_model(scenario: Scenario, data: MarketData | None = None) -> tuple[JointModel, MarketData | None]:
    """The joint model, fitted to the scenario's data (also returned) or from its calibrated parameters.

    ``data``: the scenario's data already read (:func:`load_market_data`), for a fit.
    """
    start, steps = scenario.simulation.start, scenario.simulation.steps_per_year
    if scenario.model.source == "fit":
        assert scenario.data is not None  # guaranteed by the schema
        data = data if data is not None else load_market_data(scenario)
        try:
            fitted = fit_joint_model(scenario.model, data)
        except McallocError as error:
            if not data.warnings:
                raise
            # a fit that fails on odd data (an unadjusted split, a series ending early) says what was odd
            noted = "; ".join(data.warnings)
            raise type(error)(f"{error} (the data also warned, which may be why: {noted})") from None
        return fitted.starting_at(start, steps), data
    return joint_model_from_config(scenario.model, scenario.factor_names).starting_at(start, steps), None


FEW_PATHS = 100
"""Below this many paths a run warns that its Monte Carlo standard errors and intervals understate the error.

Measured on two identical assets (the true difference 0) over 100 samples
each: the paired 95% intervals of CVaR, drawdown, volatility and median CAGR
differences held 0 in 81% to 93% of samples of 10 paths, 87% to 96% of 20,
91% to 94% of 50; the standard errors of tail measures were 1.2 to 1.3 times
too small at 10 paths.
"""


def check_inputs(scenario: Scenario) -> list[str]:
    """Read what a run reads before it fits: the warnings a run would record; its errors are raised.

    A fitted model's data files are read, aligned and checked, but nothing
    is fitted; a calibrated model is built from its parameters, reading an
    ``fhs`` residual file. Nothing is simulated; the optimiser's constraints
    are checked to leave some weights (a linear program).
    """
    from mcalloc.simulation.resources import check_memory

    check_constraints(scenario)
    check_output_dir(scenario)
    found = _unchecked(scenario)
    try:  # the machine that runs it may have more: a warning here, an error for mcalloc run
        check_memory(scenario, force="pass --force to mcalloc run")
    except ConfigError as error:
        found.append(f"{error} (on this machine, where mcalloc run refuses it)")
    if scenario.model.source == "fit":
        return [*found, *load_market_data(scenario).warnings]
    model, _ = build_model(scenario)
    return [*found, *model.warnings]


def calibration_report(scenario: Scenario, model: JointModel, data: MarketData) -> pd.DataFrame:
    """The fitted model's calibration table (see :mod:`mcalloc.models.validation`)."""
    check = scenario.output.calibration
    pairs = tuple(
        (asset.name, f"fx_{asset.currency.lower()}")
        for asset in scenario.assets
        if asset.currency is not None and f"fx_{asset.currency.lower()}" in scenario.factor_names
    )
    settings = CalibrationSettings(
        n_paths=check.n_paths,
        window_years=check.window_years,
        steps_per_year=scenario.simulation.steps_per_year,
        seed=scenario.seed,
        currency_pairs=pairs,
    )
    return calibration_table(model, data.returns, settings)


def calibration_gaps(scenario: Scenario, model: JointModel, data: MarketData | None) -> list[str]:
    """A warning when the calibration report can judge no window: the data is shorter than one."""
    check = scenario.output.calibration
    if data is None or check.n_paths == 0:
        return []
    n_obs = len(model.fit_index) if model.fit_index is not None else data.returns.shape[0]
    steps = scenario.simulation.steps_per_year
    if n_obs >= check.window_years * steps:
        return []
    years = n_obs / steps
    fits = f"set it to {math.floor(years)} or fewer" if years >= 1 else "fit to more data"
    return [
        f"output.calibration.window_years: no window of {check.window_years} years fits in the {years:.2f} years "
        f"of fitted data, so the calibration report judges no window (only the in-sample VaR); {fits}"
    ]


def _unchecked(scenario: Scenario) -> list[str]:
    """Warnings for what the scenario leaves unsaid: calibrated parameters' step length, assets' currency.

    Assets that name no currency are priced in the base currency. Under a
    base other than the default (USD), that is worth saying: setting
    ``currency.base: SEK`` on a scenario of US funds turns them into
    krona funds, with no exchange-rate risk, rather than converting them.
    """
    found = []
    model = scenario.model
    if model.source == "calibrated" and model.marginals.step is None:
        found.append(
            "model.marginals.step is not set, so nothing checks that the calibrated parameters describe steps of "
            f"1/{scenario.simulation.steps_per_year} year (simulation.steps_per_year); add step: daily, weekly or "
            "monthly"
        )
    found += [
        f"tax.{name}: set, but tax.kind is {scenario.tax.kind}, so it does nothing; set tax.kind: {name} or drop it"
        for name in scenario.tax.unused_settings()
    ]
    dependence = model.dependence
    if dependence.block_length != 1 and dependence.kind not in ("fhs", "bootstrap_returns"):
        found.append(
            f"model.dependence.block_length: {dependence.block_length:g} is used by fhs and bootstrap_returns "
            f"only, so kind {dependence.kind} ignores it; drop it"
        )
    n_paths = scenario.simulation.n_paths
    if n_paths < FEW_PATHS:
        found.append(
            f"simulation.n_paths: {n_paths} paths are too few for the Monte Carlo standard errors and 95% intervals, "
            f"which hold for many paths (at 10 paths the intervals held the true value 81% to 93% of the time, at "
            f"50 paths 91% to 94%); use {FEW_PATHS} or more"
        )
    horizon = scenario.simulation.horizon_years
    found += [
        f"portfolio.flows.{index}: starts in year {flow.start_year:g}, after the {horizon} simulated years, so "
        f"no {flow.kind} happens in this run"
        for index, flow in enumerate(scenario.portfolio.flows)
        if flow.month_span(horizon)[0] >= 12 * horizon
    ]
    if dependence.lead_lag_series and not dependence.lead_lag:
        found.append("model.dependence.lead_lag_series: set, but lead_lag is 0, so it does nothing; set lead_lag: 1")
    found += refit_warnings(scenario)
    base = scenario.currency.base
    implicit = [asset.name for asset in scenario.assets if asset.currency is None]
    if base != CurrencyConfig.model_fields["base"].default and implicit:
        found.append(
            f"assets {', '.join(implicit)} name no currency, so they are taken as priced in {base} "
            f"(currency.base), with no exchange-rate risk; for funds priced in another currency set "
            f"assets[].currency (and currency.fx), or set currency: {base} to say so"
        )
    return found


def _model_files(scenario: Scenario, model: JointModel) -> list[dict[str, object]]:
    """The manifest's record of a calibrated model's own file: the residuals an ``fhs`` model resamples."""
    residuals = scenario.model.dependence.residuals
    if (
        scenario.model.source != "calibrated"
        or residuals is None
        or not isinstance(model.dependence, ResidualBootstrap)
    ):
        return []
    rows = model.dependence.residuals.shape[0]
    record = {"source": "model.dependence.residuals", "path": str(Path(residuals).resolve())}
    return [{**record, "sha256": file_sha256(Path(residuals)), "first_date": None, "last_date": None, "rows": rows}]


def _data_window(data: MarketData | None) -> dict[str, object] | None:
    """The part of the data the model was fitted to, for the manifest."""
    if data is None:
        return None
    return {
        "frequency": data.frequency,
        "first_return": str(data.returns.index[0].date()),
        "last_return": str(data.returns.index[-1].date()),
        "n_returns": int(data.returns.shape[0]),
        "series": list(data.returns.columns),
        "dropped_dates": data.dropped_dates,
        "filled_values": data.filled_dates,
    }


def models_table(model: JointModel, scenario: Scenario) -> pd.DataFrame:
    """One row per asset: parameters (percent units), their standard errors and the fit's diagnostics."""
    rows = []
    steps = scenario.simulation.steps_per_year
    start_variance, _ = model.start_levels()
    # exchange rates are simulated series in factor mode only (translate mode applies historical rates)
    simulated_rates = scenario.foreign_currencies if scenario.fx_factor_names else []
    labels = [asset.display_name for asset in scenario.assets] + [
        f"{code}/{scenario.currency.base} exchange rate" for code in simulated_rates
    ]
    if model.baseline is not None:
        start_variance = np.array([m.unconditional_variance for m in model.marginals])
    with np.errstate(invalid="ignore"):
        total = np.sqrt(np.diag(model.long_run_covariance()) * steps) / 100.0
    mean_se = np.full(len(model.marginals), np.nan)
    if model.mean_years is not None:
        mean_se = np.sqrt(np.diag(model.drift_covariance())) * steps
    factor = model.factor
    for index, (name, label, marginal) in enumerate(zip(scenario.factor_names, labels, model.marginals, strict=True)):
        row = model_row(marginal, steps, float(start_variance[index]), model.start.kind)
        role = "series" if factor is None else ("market" if index == factor.market else "idiosyncratic")
        loadings = (
            {} if factor is None else {f"loading_lag{lag}": float(v) for lag, v in enumerate(factor.loadings[index])}
        )
        rows.append(
            {
                "asset": name,
                "label": label,
                "role": role,
                **row,
                "vol_ann_total": float(total[index]),
                "mean_se_ann": float(mean_se[index]),
                **loadings,
            }
        )
    return pd.DataFrame(rows)


def account_tax(scenario: Scenario) -> AccountTax | None:
    """The tax the scenario's account pays along the paths, if any."""
    dividend_yield = np.array([asset.dividend_yield for asset in scenario.assets])
    if scenario.tax.kind == "isk":
        # withheld abroad on foreign funds' dividends; a fund priced in the krona pays none into the ISK
        base = scenario.currency.base
        foreign = np.array([asset.currency not in (None, base) for asset in scenario.assets])
        withheld_on = np.where(foreign, dividend_yield, 0.0)
        return IskTax.from_config(scenario.tax.isk, scenario.portfolio.initial_wealth, withheld_on)
    if scenario.tax.kind == "depot":
        return DepotTax.from_config(scenario.tax.depot, scenario.portfolio.initial_wealth, dividend_yield)
    return None


def rebalance_policy(scenario: Scenario) -> RebalancePolicy:
    """The scenario's trading costs and no-trade band (either may be absent)."""
    portfolio = scenario.portfolio
    bps = np.array([asset.trading_cost_bps for asset in scenario.assets])
    costs = None
    if bps.any() or portfolio.courtage:
        costs = TradingCosts(bps=bps, fixed=portfolio.courtage / portfolio.initial_wealth)
    band = Band(portfolio.band.kind, portfolio.band.width) if portfolio.band is not None else None
    return RebalancePolicy(
        costs=costs, band=band, direct_flows=portfolio.rebalance == "flows", buy_in=portfolio.initial_costs
    )


def simulation_plan(
    scenario: Scenario,
    model: JointModel,
    weights: Sequence[np.ndarray],
    currency: CurrencyOverlay | None,
    investor: bool,
    keep_months: bool = False,
    wealth_fan: bool = False,
) -> SimulationPlan:
    """How the scenario's portfolios ``weights`` live along ``model``'s paths: its fees, rebalancing and policy,
    and, for the ``investor``'s own paths (not the optimiser's), its cash flows and account tax."""
    simulation = scenario.simulation
    flows = CashFlowSchedule.from_config(
        scenario.portfolio.flows, simulation.horizon_years, scenario.portfolio.initial_wealth
    )
    return SimulationPlan(
        model=model,
        fees=FeeModel.of(scenario.assets, simulation.steps_per_year),
        schedule=Schedule(simulation.horizon_years, simulation.steps_per_year, scenario.portfolio.rebalance),
        weights=np.array(weights).reshape(len(weights), len(scenario.assets)),
        currency=currency,
        policy=rebalance_policy(scenario),
        flows=flows if flows.active and investor else None,
        tax=account_tax(scenario) if investor else None,
        keep_months=keep_months,
        wealth_fan=wealth_fan,
    )


def benchmark_weights(scenario: Scenario) -> dict[str, np.ndarray]:
    """Each benchmark portfolio's weights, in the order of the scenario's assets."""
    names = scenario.asset_names
    return {
        name: np.array([mix.get(asset, 0.0) for asset in names]) for name, mix in scenario.portfolio.benchmarks.items()
    }


RELEASE_WORKERS_PATHS = 100_000
"""From this many paths the worker processes are stopped as soon as the main simulation's chunks are back."""

OPTIMIZER_STREAM = 1
"""Seed stream of the optimiser's own paths (see :func:`mcalloc.simulation.paths.seed_sequence`)."""


def _judge(
    scenario: Scenario,
    evaluation: ChunkResult,
    names: list[str],
    vectors: list[np.ndarray],
    currency: str,
    clock: _StageClock,
) -> list[pd.DataFrame]:
    """Every portfolio as lived in ``currency``: metrics (with standard errors), diversification benefit,
    wealth percentiles by month, drawdown distributions, and the assets' simulated return correlation."""
    simulation = scenario.simulation
    with clock.stage("metrics"):
        metrics = metrics_table(
            evaluation.book,
            names,
            scenario.portfolio.initial_wealth,
            simulation.horizon_years,
            scenario.portfolio.risk_free,
            scenario.portfolio.inflation,
        )
        errors = standard_errors(
            evaluation.book, names, simulation.horizon_years, scenario.seed, n_jobs=local_threads(simulation.n_jobs)
        )
        metrics = with_standard_errors(metrics, errors)
    metrics.insert(1, "currency", currency)
    reference = scenario.portfolio.reference_name
    diversification = pd.DataFrame(columns=DIVERSIFICATION_COLUMNS)
    if reference is not None:
        with clock.stage("diversification"):
            diversification = diversification_table(
                evaluation.book,
                names,
                reference,
                simulation.horizon_years,
                scenario.seed,
                simulation.chunk_size,
                np.array(vectors).reshape(len(names), len(scenario.assets)),
                evaluation.daily_covariance,
                scenario.asset_names,
                evaluation.asset_growth,
                n_jobs=local_threads(simulation.n_jobs),
            )
    diversification["currency"] = currency
    assert evaluation.fan is not None
    fan = fan_table(evaluation.fan, names, scenario.portfolio.initial_wealth, currency)
    drawdowns = drawdown_distribution_table(evaluation.book, names, simulation.horizon_years, currency)
    return [metrics, diversification, fan, drawdowns, _return_correlation(evaluation, scenario.asset_names, currency)]


def _return_correlation(evaluation: ChunkResult, assets: list[str], currency: str) -> pd.DataFrame:
    """The assets' correlation of simulated daily after-fee returns in ``currency``, pooled over paths and days.

    What an investor sees between the assets (with a market factor, the
    shocks' correlation in ``correlation.csv`` is only the idiosyncratic parts').
    """
    covariance = evaluation.daily_covariance
    scale = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):  # an asset that never moves has no correlation
        correlation = covariance / np.outer(scale, scale)
    table = pd.DataFrame(correlation, columns=assets)
    table.insert(0, "asset", assets)
    table.insert(0, "currency", currency)
    return table


def _record_failure(folder: RunFolder, clock: _StageClock, error: BaseException) -> None:
    """Keep the stage timings and move the unfinished folder aside as failed, naming ``error``."""
    folder.update(timings_s=clock.timings)
    folder.fail(error)


def check_output_dir(scenario: Scenario) -> None:
    """Refuse an ``output.dir`` under which no run's folder can be made (a file, a folder not writable)."""
    problem = place_problem(scenario.output.dir / scenario.name)
    if problem is not None:
        raise OutputError(f"output.dir {scenario.output.dir}: {problem}; set output.dir to a folder, or give --out")


def _default_folder(scenario: Scenario, digest: str) -> Path:
    run_id = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
    return scenario.output.dir / scenario.name / run_id


def run_scenario(
    scenario: Scenario,
    out: Path | None = None,
    report: Callable[[str], None] = lambda message: None,
    progress: Callable[[str, int, int], None] | None = None,
    extra_manifest: dict[str, object] | None = None,
) -> RunOutcome:
    """Run a scenario end to end and write its results folder.

    Parameters
    ----------
    scenario
        The validated scenario (``simulation.n_jobs`` and ``seed`` included).
    out
        Folder to write; by default ``<output.dir>/<name>/<run-id>``.
    report
        Called with a short message as each stage starts.
    progress
        Called as ``progress(stage, paths_done, paths_total)`` as each
        simulation pass starts (with 0 done) and as its chunks finish.
    extra_manifest
        More fields for ``manifest.json`` (a batch's run key, say).
    """
    check_constraints(scenario)  # before anything is written or simulated
    if out is None:
        check_output_dir(scenario)
    else:
        check_final(out, "manifest.json", "results folder")
    # a data file missing or broken is the scenario's error, found before a folder is made (as validate finds it);
    # the time it takes is the model stage's, as when the fit read it
    reading = time.perf_counter()
    data = load_market_data(scenario) if scenario.model.source == "fit" else None
    reading = time.perf_counter() - reading
    report(f"{scenario.name}: {scenario.simulation.n_paths:,} paths x {scenario.simulation.horizon_years} years")
    digest = config_hash(scenario)
    final = out if out is not None else _default_folder(scenario, digest)
    simulation = scenario.simulation
    folder = RunFolder.create(
        final,
        {
            "scenario": scenario.name,
            "run_id": final.name,
            "seed": scenario.seed,
            "config_sha256": digest,
            "n_paths": simulation.n_paths,
            "horizon_years": simulation.horizon_years,
            "steps_per_year": simulation.steps_per_year,
            "chunk_size": simulation.chunk_size,
            "n_chunks": simulation.n_chunks,
            "n_jobs": simulation.n_jobs,
            "backend": simulation.backend,
            "data": [],
            "timings_s": {},
            **(extra_manifest or {}),
        },
    )
    clock = _StageClock(report, {"model": reading})
    cluster = ExitStack()
    try:
        if simulation.backend == "dask":
            from mcalloc.simulation.distributed import dask_client

            with clock.stage("connect to dask"):
                cluster.enter_context(dask_client(simulation.scheduler, simulation.n_jobs))
        folder.write_yaml("config.yaml", scenario_to_dict(scenario))
        with clock.stage("model"):
            model, data = build_model(scenario, data)
            models = models_table(model, scenario)
        folder.update(
            data=provenance_records(data.provenance) if data is not None else _model_files(scenario, model),
            data_window=_data_window(data),
            warnings=[
                *folder.manifest.get("warnings", []),
                *_unchecked(scenario),
                *(data.warnings if data else ()),
                *model.warnings,
                *calibration_gaps(scenario, model, data),
            ],
            model_selection=model.selection_records(),
            dependence={"kind": model.dependence.kind if model.baseline is None else model.baseline.kind},
            stressed_date=model.stressed_date,
        )
        folder.write_csv("models.csv", models)
        if model.selection_records():
            folder.write_csv("model_selection.csv", pd.DataFrame(model.selection_records()))
        folder.write_csv("dependence.csv", pd.DataFrame(model.dependence_records()))
        if data is not None and scenario.output.calibration.n_paths > 0:
            with clock.stage("calibration report"):
                folder.write_csv("calibration.csv", calibration_report(scenario, model, data))
        folder.write_csv(
            "correlation.csv",
            pd.DataFrame(model.copula.correlation, columns=scenario.factor_names).assign(asset=scenario.factor_names)[
                ["asset", *scenario.factor_names]
            ],
        )

        benchmarks = benchmark_weights(scenario)

        def simulate(
            weights: list[np.ndarray],
            n_paths: int,
            stream: int,
            currency: CurrencyOverlay | None,
            keep: bool = False,
            label: str = "simulate",
            fan: bool = False,
        ) -> ChunkResult:
            plan = simulation_plan(scenario, model, weights, currency, stream == 0, keep, fan)
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                if progress is not None:
                    progress(label, done, n_paths)

            advance(0)  # the pass starts now: its rate and time left count from here, not from its first chunk
            return run_simulation(
                plan,
                n_paths,
                simulation.chunk_size,
                scenario.seed,
                simulation.n_jobs,
                stream,
                progress=advance,
                backend=simulation.backend,
                # large runs: the idle workers' memory (a few hundred MB each) is better spent on the copies and metrics
                release=stream == 0 and n_paths >= RELEASE_WORKERS_PATHS,
            )

        overlay = CurrencyOverlay.from_scenario(scenario)
        optimization: Optimization | None = None
        n_fit_paths = 0
        if scenario.optimize.objectives:
            source = scenario.optimize.scenarios
            if source.kind == "parametric":
                rng = np.random.default_rng(seed_sequence(scenario.seed, OPTIMIZER_STREAM))
                mean = np.array([source.mean[name] for name in scenario.asset_names])
                covariance = np.array(source.covariance)
                fit_scenarios = parametric(mean, covariance, source.n, source.periods_per_year, rng, source.nu)
                n_fit_paths = source.n
            else:
                with clock.stage("simulate the optimiser's paths"):
                    n_fit_paths = scenario.optimize.fit_paths(simulation.n_paths)
                    identity = list(np.eye(len(scenario.assets)))
                    fit_pass = simulate(identity, n_fit_paths, OPTIMIZER_STREAM, overlay, True, "optimiser's paths")
                    assert fit_pass.month_growth is not None
                    fit_scenarios = scenarios_of(scenario, fit_pass.month_growth)
                    del fit_pass
            with clock.stage("optimise"):
                optimization = optimise(scenario, fit_scenarios, benchmarks)
            del fit_scenarios
            folder.update(warnings=[*folder.manifest.get("warnings", []), *optimization.warnings])
        optimized = optimization.portfolios if optimization is not None else []
        names = [*benchmarks, *(p.name for p in optimized)]
        all_vectors = [*benchmarks.values(), *(p.result.weights for p in optimized)]
        with clock.stage("simulate"):
            evaluation = simulate(all_vectors, simulation.n_paths, 0, overlay, fan=True)
        judged = _judge(scenario, evaluation, names, all_vectors, scenario.currency.base, clock)
        compare_in = scenario.currency.compare_in
        if compare_in is not None:
            # the same paths (same seed and stream), the assets' own-currency returns left unconverted
            with clock.stage(f"simulate in {compare_in}"):
                own_currency = CurrencyOverlay((None,) * len(scenario.assets))  # drops the FX factors unapplied
                own = simulate(
                    all_vectors, simulation.n_paths, 0, own_currency, label=f"simulate in {compare_in}", fan=True
                )
            own_judged = _judge(scenario, own, names, all_vectors, compare_in, clock)
            judged = [pd.concat(pair, ignore_index=True) for pair in zip(judged, own_judged, strict=True)]
        # the horizons and optimisation tables, and every table written (paths.parquet too)
        with clock.stage("write tables"):
            metrics, diversification, fan, drawdowns, return_correlation = judged
            reference = scenario.portfolio.reference_name
            all_weights = {**benchmarks, **{p.name: p.result.weights for p in optimized}}
            weights = pd.DataFrame(
                [
                    {"portfolio": name, "asset": asset, "weight": float(value)}
                    for name, vector in all_weights.items()
                    for asset, value in zip(scenario.asset_names, vector, strict=True)
                ],
                columns=["portfolio", "asset", "weight"],
            )
            table = pd.DataFrame(columns=OPTIMIZATION_COLUMNS)
            if optimization is not None:
                columns = {name: index for index, name in enumerate(names)}
                table = optimization_table(
                    optimized,
                    evaluation.book,
                    columns,
                    n_fit_paths,
                    simulation.horizon_years,
                    scenario.portfolio.risk_free,
                    scenario.seed,
                    single_period=scenario.optimize.scenarios.kind == "parametric",
                    monthly_periods=scenario.portfolio.rebalance == "monthly",
                )
            folder.write_csv("metrics.csv", metrics)
            folder.write_csv("diversification.csv", diversification)
            horizons = horizons_table(evaluation.book, names, reference, n_jobs=local_threads(simulation.n_jobs))
            folder.write_csv("horizons.csv", horizons)
            folder.write_csv("fan.csv", fan)
            folder.write_csv("drawdowns.csv", drawdowns)
            folder.write_csv("return_correlation.csv", return_correlation)
            if scenario.output.paths:
                wealth = scenario.portfolio.initial_wealth
                folder.write_parquet(
                    "paths.parquet", paths_table(evaluation.book, names, wealth, simulation.horizon_years)
                )
            folder.write_csv("weights.csv", weights)
            folder.write_csv("optimization.csv", table)
            if optimization is not None:
                folder.write_csv("frontier.csv", optimization.frontier)
                folder.write_csv("stability.csv", optimization.stability)
        if scenario.output.report:
            with clock.stage("report"):
                # drawn from the files just written, as `mcalloc report` would draw it again
                from mcalloc.api import Run
                from mcalloc.report import write_report

                write_report(Run.from_folder(folder.working, folder.manifest, with_paths=False))
        folder.update(timings_s=clock.timings)
        path = folder.complete()
    except BaseException as error:
        _record_failure(folder, clock, error)
        raise
    finally:
        cluster.close()
    return RunOutcome(
        folder=path,
        metrics=metrics,
        weights=weights,
        models=models,
        optimization=table,
        diversification=diversification,
        warnings=tuple(folder.manifest.get("warnings", [])),
        stability=optimization.stability if optimization is not None else None,
        frontier=optimization.frontier if optimization is not None else None,
    )


def _window_power(n_paths: int, threshold: float) -> list[str]:
    """A warning when the simulated windows are too few for a window check ever to fail (docs/backtest.md)."""
    smallest = window_p_value(0.0, n_paths)  # the data beyond every simulated window
    if smallest < threshold:
        return []
    return [
        f"simulation.n_paths: among {n_paths:,} simulated windows no window check's p-value falls below "
        f"{smallest:.2g}, which is not below the threshold {threshold:.2g}: those checks cannot fail; "
        f"use at least {math.floor(2.0 / threshold - 1.0) + 1:,} paths"
    ]


@dataclass(frozen=True)
class BacktestOutcome:
    """What a finished backtest wrote: every check, the verdicts, the periods and the models that could not be fitted.

    ``verdicts`` has one row per split and model, ``summary`` one row per
    model over the splits, ``periods`` the fit and test periods of each split
    and ``failures`` a record (split, model, error) per model that could not
    be fitted.
    """

    folder: Path
    validation: pd.DataFrame
    verdicts: pd.DataFrame
    summary: pd.DataFrame
    periods: dict[str, dict[str, object]]
    failures: tuple[dict[str, str], ...]
    warnings: tuple[str, ...] = ()


def _backtest_folder(base: Scenario, digest: str, plan: BacktestPlan, variants: list[Variant]) -> Path:
    """The default folder of a backtest, named by its start time and what it runs.

    The name's hash covers the splits, refits, draws and models as well as
    the scenario, so that backtests of one scenario started together (a job
    per split) write to folders of their own.
    """
    task = json.dumps(
        [digest, list(plan.splits), plan.refit_every, plan.n_draws, plan.n_paths, [v.label for v in variants]]
    )
    key = hashlib.sha256(task.encode("utf-8")).hexdigest()[:8]
    return base.output.dir / base.name / f"backtest-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{key}"


def run_backtest(
    base: Scenario,
    variants: list[Variant],
    plan: BacktestPlan,
    out: Path | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> BacktestOutcome:
    """Fit each variant before each of ``plan.splits``, forecast the data after it and write the validation folder.

    ``base`` supplies the data, benchmark portfolios, output settings and
    workers (variant-split pairs run in parallel, ``simulation.n_jobs`` of
    them; each pair's numbers depend only on the seed, its label and split).

    Raises
    ------
    ConfigError
        If the data is not daily or a split leaves too little on either side.
    ModelError
        If no variant could be fitted.
    """
    from joblib import Parallel, delayed, parallel_config

    from mcalloc.simulation.workers import watched_workers

    data = load_market_data(base)
    if data.frequency != "daily":
        raise ConfigError(
            f"data.frequency: the backtest forecasts days and months, so it needs daily data, not {data.frequency}"
        )
    index = pd.DatetimeIndex(data.returns.index)
    min_fit = max(minimum_fit_rows(v.scenario) for v in variants)
    firsts = {split: first_test_row(index, split, min_fit) for split in plan.splits}
    check_distinct_tests(index, firsts)
    names = base.factor_names
    # the mixes are the investor's, in the base currency: a foreign asset's return plus its exchange rate's
    conversion = np.eye(len(names))
    for column, asset in enumerate(base.assets):
        rate = f"fx_{asset.currency.lower()}" if asset.currency is not None else ""
        if rate in names:
            conversion[names.index(rate), column] = 1.0
    converted = np.flatnonzero(conversion.sum(axis=0) > 1.0)
    # a portfolio wholly in one asset would repeat that asset's checks, unless it is the asset in another currency
    portfolios = {
        name: w
        for name, w in benchmark_weights(base).items()
        if np.count_nonzero(w) > 1 or np.isin(np.flatnonzero(w), converted).any()
    }
    weights = np.zeros((len(portfolios), len(names)))
    weights[:, : len(base.assets)] = np.array(list(portfolios.values())).reshape(len(portfolios), len(base.assets))
    targets = Targets(tuple(names), tuple(portfolios), weights, conversion if converted.size else None)
    digest = config_hash(base)
    final = out if out is not None else _backtest_folder(base, digest, plan, variants)
    periods = {split: describe_test(data, first) for split, first in firsts.items()}
    folder = RunFolder.create(
        final,
        {
            "kind": "backtest",
            "scenario": base.name,
            "run_id": final.name,
            "seed": plan.seed,
            "config_sha256": digest,
            "splits": list(plan.splits),
            "refit_every_months": plan.refit_every,
            "n_draws": plan.n_draws,
            "n_paths": plan.n_paths,
            "models": [v.label for v in variants],
            "portfolios": list(portfolios),
            "periods": periods,
            "data": provenance_records(data.provenance),
            "data_window": _data_window(data),
            "timings_s": {},
        },
    )
    clock = _StageClock(report)
    try:
        folder.write_yaml("config.yaml", scenario_to_dict(base))
        workers = parallel_config(backend="loky", n_jobs=base.simulation.n_jobs, **watched_workers())
        tasks = [(variant, split) for split in plan.splits for variant in variants]
        stage = f"backtest {len(variants)} models" + (f" at {len(plan.splits)} splits" if len(plan.splits) > 1 else "")
        with clock.stage(stage), workers:
            results = Parallel()(
                delayed(evaluate_variant)(variant, data, split, firsts[split], plan, targets)
                for variant, split in tasks
            )
        failures = tuple({"split": r.split, "model": r.label, "error": r.error} for r in results if r.error is not None)
        if len(failures) == len(results):
            first_failure = failures[0]
            raise ModelError(
                f"no model could be evaluated ({first_failure['model']} at split "
                f"{first_failure['split']}: {first_failure['error']})"
            )
        validation = pd.concat([r.rows for r in results if r.error is None], ignore_index=True)
        verdict = verdicts(validation)
        summary = split_summary(verdict, [(f["split"], f["model"]) for f in failures])
        folder.write_csv("validation.csv", validation)
        folder.write_csv("verdicts.csv", verdict)
        folder.write_csv("summary.csv", summary)
        folder.write_csv("pits.csv", pd.concat([r.pits for r in results if r.error is None], ignore_index=True))
        warnings = [*data.warnings, *dict.fromkeys(w for r in results for w in r.warnings)]
        warnings += [f"{f['model']} at split {f['split']}: not evaluated: {f['error']}" for f in failures]
        warnings += _window_power(plan.n_paths, float(verdict["threshold"].min()))
        folder.update(warnings=warnings, failures=list(failures))
        if base.output.report:
            with clock.stage("report"):
                from mcalloc.report import write_backtest_report

                write_backtest_report(folder.working)
        folder.update(timings_s=clock.timings)
        path = folder.complete()
    except BaseException as error:
        _record_failure(folder, clock, error)
        raise
    return BacktestOutcome(path, validation, verdict, summary, periods, failures, tuple(warnings))
