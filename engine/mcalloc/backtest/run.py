"""The backtest, wired: fit each model before each split, forecast the data after it, write the validation folder.

Like :mod:`mcalloc.pipeline` for a run, this is where the backtest's stages
meet: :mod:`mcalloc.backtest.evaluate` fits and forecasts one model at one
split, :mod:`mcalloc.backtest.tables` judges the forecasts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mcalloc.backtest.evaluate import (
    BacktestPlan,
    Variant,
    check_distinct_tests,
    check_refits,
    describe_test,
    evaluate_variant,
    first_test_row,
    minimum_fit_rows,
)
from mcalloc.backtest.forecasts import Targets
from mcalloc.backtest.tables import split_summary, verdicts, window_p_value
from mcalloc.config.loader import config_hash, scenario_to_dict
from mcalloc.config.schema import Scenario
from mcalloc.data.market import load_market_data
from mcalloc.errors import ConfigError, ModelError
from mcalloc.pipeline import benchmark_weights, claim_default_folder
from mcalloc.results.writer import (
    RunFolder,
    StageClock,
    data_window,
    provenance_records,
    record_failure,
)

__all__ = ["BacktestOutcome", "run_backtest"]


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
    check_refits(plan, index, firsts)
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
    periods = {split: describe_test(data, first) for split, first in firsts.items()}

    def create(final: Path) -> RunFolder:
        return RunFolder.create(final, {**manifest, "run_id": final.name})

    manifest: dict[str, object] = {
        "kind": "backtest",
        "scenario": base.name,
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
        "data_window": data_window(data),
        "timings_s": {},
    }
    # of two backtests of one task started in the same second, the second takes NAME-2
    folder = (
        create(out) if out is not None else claim_default_folder(_backtest_folder(base, digest, plan, variants), create)
    )
    clock = StageClock(report)
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
        warnings = [*data.warnings, *dict.fromkeys(n for v in variants for n in v.notes)]
        warnings += dict.fromkeys(w for r in results for w in r.warnings)
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
        record_failure(folder, clock, error)
        raise
    return BacktestOutcome(path, validation, verdict, summary, periods, failures, tuple(warnings))
