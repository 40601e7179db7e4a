"""The one place where a run's stages are wired together, top to bottom (a backtest's: :mod:`mcalloc.backtest.run`).

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

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mcalloc.config.loader import config_hash, scenario_to_dict
from mcalloc.config.schema import Scenario
from mcalloc.data.market import MarketData, load_market_data
from mcalloc.errors import ConfigError, McallocError, OutputError
from mcalloc.metrics.distributions import drawdown_distribution_table
from mcalloc.metrics.diversification import DIVERSIFICATION_COLUMNS, diversification_table, standard_errors
from mcalloc.metrics.fan import fan_table
from mcalloc.metrics.horizons import horizons_table, paths_table
from mcalloc.metrics.summary import metrics_table, with_standard_errors
from mcalloc.models.assembly import joint_model_from_config
from mcalloc.models.joint import JointModel
from mcalloc.models.joint_fit import fit_joint_model
from mcalloc.models.report import models_table
from mcalloc.models.validation import CalibrationSettings, calibration_table
from mcalloc.optimize.run import Optimization, check_constraints, optimise, scenarios_of
from mcalloc.optimize.scenarios import parametric
from mcalloc.optimize.tables import OPTIMIZATION_COLUMNS, optimization_table
from mcalloc.portfolio.costs import Band, FeeModel, RebalancePolicy, TradingCosts
from mcalloc.portfolio.flows import CashFlowSchedule
from mcalloc.portfolio.schedule import Schedule
from mcalloc.portfolio.taxes import AccountTax, DepotTax, IskTax
from mcalloc.results.writer import (
    RunFolder,
    StageClock,
    check_final,
    data_window,
    model_files,
    place_problem,
    provenance_records,
    record_failure,
)
from mcalloc.scenario_warnings import calibration_gaps, unsaid_warnings
from mcalloc.simulation.currency import CurrencyOverlay
from mcalloc.simulation.parallel import local_threads
from mcalloc.simulation.paths import ChunkResult, SimulationPlan, run_simulation, seed_sequence

__all__ = [
    "RunOutcome",
    "build_model",
    "calibration_report",
    "check_inputs",
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
    found = unsaid_warnings(scenario)
    try:  # the machine that runs it may have more: a warning here, an error for mcalloc run
        check_memory(scenario, force="pass --force to mcalloc run")
    except ConfigError as error:
        found.append(f"{error} (on this machine, where mcalloc run refuses it)")
    return [*found, *_read_inputs(scenario)]


def check_readable(scenario: Scenario) -> list[str]:
    """The optimiser's constraints, and the files a run reads before it fits: their warnings; errors raised.

    What :func:`check_inputs` checks of a scenario wherever it runs (a
    batch's dry run: not where its results would go, nor the memory).
    """
    check_constraints(scenario)
    return _read_inputs(scenario)


def _read_inputs(scenario: Scenario) -> list[str]:
    """The data a fit reads, or the model a calibrated scenario builds: their warnings; errors raised."""
    if scenario.model.source == "fit":
        return list(load_market_data(scenario).warnings)
    model, _ = build_model(scenario)
    return list(model.warnings)


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


def account_tax(scenario: Scenario) -> AccountTax | None:
    """The tax the scenario's account pays along the paths, if any."""
    dividend_yield = np.array([asset.dividend_yield for asset in scenario.assets])
    if scenario.tax.kind == "isk":
        # withheld abroad on foreign funds' dividends; a fund priced in the krona pays none into the ISK
        base = scenario.currency.base
        foreign = np.array([asset.withholds(base) for asset in scenario.assets])
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
    clock: StageClock,
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


def check_output_dir(scenario: Scenario) -> None:
    """Refuse an ``output.dir`` under which no run's folder can be made (a file, a folder not writable)."""
    problem = place_problem(scenario.output.dir / scenario.name)
    if problem is not None:
        raise OutputError(f"output.dir {scenario.output.dir}: {problem}; set output.dir to a folder, or give --out")


def _default_folder(scenario: Scenario, digest: str) -> Path:
    run_id = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
    return scenario.output.dir / scenario.name / run_id


def default_folder_names(base: Path, tries: int = 100) -> Iterator[Path]:
    """``base`` and then ``base-2``, ``base-3``, ...: a run's default folder, the first that no run has taken.

    Runs of one configuration started in the same second (the same scenario with other ``--n-jobs``, or a
    script starting several) share a run-id; the second refused to start, or replaced the first.
    """
    for number in range(1, tries + 1):
        final = base if number == 1 else base.with_name(f"{base.name}-{number}")
        if not final.exists() and not final.with_name(f".{final.name}.partial").exists():
            yield final


def claim_default_folder(base: Path, create: Callable[[Path], RunFolder]) -> RunFolder:
    """The folder ``create`` starts at the first of :func:`default_folder_names` no other run claims first."""
    for final in default_folder_names(base):
        try:
            return create(final)
        except OutputError:
            if not final.with_name(f".{final.name}.partial").exists():
                raise  # not a run that took the name between the look and the claim
    raise OutputError(f"{base}: a hundred runs of this configuration started this second; give each its own --out")


def _create_folder(final: Path, scenario: Scenario, digest: str, extra_manifest: dict[str, object] | None) -> RunFolder:
    """The run's folder started at ``final``, its manifest saying what runs (see :meth:`RunFolder.create`)."""
    simulation = scenario.simulation
    return RunFolder.create(
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
    simulation = scenario.simulation
    if out is not None:
        folder = _create_folder(out, scenario, digest, extra_manifest)
    else:
        base = _default_folder(scenario, digest)
        folder = claim_default_folder(base, lambda final: _create_folder(final, scenario, digest, extra_manifest))
    clock = StageClock(report, {"model": reading})
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
            data=provenance_records(data.provenance) if data is not None else model_files(scenario, model),
            data_window=data_window(data),
            warnings=[
                *folder.manifest.get("warnings", []),
                *unsaid_warnings(scenario),
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
                if not optimization.frontier.empty:  # optimize.frontier.points: 0 writes no frontier
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
        record_failure(folder, clock, error)
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
