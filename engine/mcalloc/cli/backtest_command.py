"""``mcalloc backtest CONFIG --split YYYY-MM-DD[,...]``: does each generator predict data it never saw?

Every model named by ``--models`` (default: every dependence model and
baseline) is fitted, with each law of ``--marginals`` (default: the
scenario's), to the data before the split; it then forecasts each day and
month after it, from its volatility state filtered through the realised
returns. Several splits (``--split 2008-01-01,2012-01-01`` or the option
repeated) repeat the backtest from each, and summary.csv counts the splits
each model passes. Results go to ``<output.dir>/<scenario>/backtest-<id>/``
(or ``--out``): validation.csv (one row per check), verdicts.csv (one row per
split and model), summary.csv, pits.csv and report.html. The scenario must
fit its model to daily data (``model.source: fit``, ``data.frequency: daily``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast, get_args

from mcalloc.cli.common import add_config_command, as_help, load_with_options, scenario_files
from mcalloc.config.dependence_schema import stress_problem
from mcalloc.config.model_schema import BASELINE_KINDS, DependenceKind, Distribution
from mcalloc.errors import ConfigError

MAX_DRAWS = 100_000
"""Predictive draws per forecast at most: a month's are ``draws x 21 x series`` values at once."""

__all__ = ["register"]

ALL_MODELS: tuple[str, ...] = get_args(DependenceKind)


def register(commands: Any) -> None:
    """Add ``backtest`` to the top-level sub-parsers."""
    backtest = add_config_command(
        commands,
        "backtest",
        "fit before a date, forecast after it: VaR, PIT and test-window checks of every model",
        "scenario YAML file that fits its model to data (model.source: fit)",
        "data.paths.sp500=spy.csv",
    )
    backtest.description = as_help(__doc__)
    backtest.add_argument(
        "--split",
        required=True,
        action="append",
        metavar="YYYY-MM-DD[,...]",
        help="first day of the test period; several dates (comma-separated or the option repeated) "
        "repeat the backtest from each",
    )
    backtest.add_argument(
        "--refit-every", type=int, metavar="MONTHS", help="refit every MONTHS months of 21 days (default: never)"
    )
    backtest.add_argument(
        "--models",
        default=",".join(ALL_MODELS),
        help=f"comma-separated dependence models (default: {','.join(ALL_MODELS)})",
    )
    backtest.add_argument(
        "--marginals", help="comma-separated laws of the shocks: normal, t, skewt (default: the scenario's)"
    )
    backtest.add_argument(
        "--draws", type=int, default=2000, help=f"predictive draws per forecast, 100 to {MAX_DRAWS:,} (default 2000)"
    )
    backtest.add_argument("--out", type=Path, help="results folder (default: <output.dir>/<scenario>/backtest-<id>)")
    backtest.add_argument("--n-jobs", type=int, help="models evaluated in parallel (default: simulation.n_jobs)")
    backtest.add_argument("--seed", type=int, help="random seed (default: the scenario's seed)")
    backtest.add_argument("-q", "--quiet", action="store_true", help="print only the results folder")
    backtest.add_argument("--log-file", type=Path, help="also write the log (timestamped) to this file")
    backtest.set_defaults(handler=_backtest)


def _choices(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise ConfigError(f"{option}: unknown '{(unknown or [text])[0]}'; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


_NO_OPTIMISER = ["optimize.batches=0"]
"""Settings of the optimiser, which a backtest does not run, that would otherwise limit it."""


def _backtest(args: argparse.Namespace) -> int:
    from mcalloc.backtest.evaluate import BacktestPlan, Variant, parse_splits
    from mcalloc.backtest.run import run_backtest
    from mcalloc.cli.progress import LOGGER, configure_logging

    splits = parse_splits(args.split)  # a mistyped date is refused before any data is read
    # the backtest runs no optimiser: its settings (optimize.batches against few paths) cannot refuse it
    base = load_with_options(args.config, args, _NO_OPTIMISER)
    if base.model.source != "fit" or base.data is None:
        raise ConfigError(
            f"{args.config}: model.source is {base.model.source}, but the backtest fits the model to data before "
            "the split; use a scenario with a data section and model.source: fit (configs/examples/fit_etfs.yaml)"
        )
    if args.refit_every is not None and args.refit_every < 1:
        raise ConfigError(f"--refit-every: must be at least 1 month, got {args.refit_every}")
    if args.draws < 100:
        raise ConfigError(f"--draws: at least 100 draws per forecast are needed for a 1% VaR, got {args.draws}")
    if args.draws > MAX_DRAWS:
        raise ConfigError(
            f"--draws: at most {MAX_DRAWS:,} draws per forecast (memory grows with them, and the checks settle "
            f"long before), got {args.draws:,}"
        )
    models = _choices(args.models, ALL_MODELS, "--models")
    if args.marginals is not None and base.model.marginals.kind == "auto":
        # auto picks each series' law among its candidates by BIC, whatever model.marginals.dist says
        raise ConfigError(
            f"--marginals {args.marginals}: model.marginals.kind is auto, which chooses each series' law among its "
            "candidates, so every row would test the same models; drop --marginals, or set model.marginals.kind"
        )
    if args.marginals is not None and all(model in BASELINE_KINDS for model in models):
        raise ConfigError(
            f"--marginals {args.marginals}: every model in --models is a baseline ({', '.join(models)}), which has "
            "no volatility model and so no law of its shocks; drop --marginals, or add a dependence model to --models"
        )
    auto = base.model.marginals.kind == "auto"
    # under auto each series' law is chosen by BIC: the rows say so rather than name model.marginals.dist
    laws = (
        _choices(args.marginals, get_args(Distribution), "--marginals")
        if args.marginals is not None
        else ["auto" if auto else base.model.marginals.dist]
    )
    stress = base.model.dependence.stress
    variants = []
    for model in models:
        for law in laws if model not in BASELINE_KINDS else laws[:1]:
            extra = [*_NO_OPTIMISER, f"model.dependence.kind={model}"]
            extra += [] if auto else [f"model.marginals.dist={law}"]
            if model in BASELINE_KINDS:
                # a baseline has no factor and no copula: nothing for a lead-lag adjustment to act on
                extra += ["model.factor=null", "model.dependence.lead_lag=0", "model.dependence.lead_lag_series=null"]
            notes: tuple[str, ...] = ()
            if stress_problem(cast(DependenceKind, model), stress) is not None:
                # the scenario's stress is for its own kind of dependence; this one has no correlation to stress
                extra += ["model.dependence.stress.correlation_blend=0", "model.dependence.stress.worst_days=null"]
                notes = (
                    f"{model}: backtested without the scenario's correlation stress (model.dependence.stress), "
                    "which applies to gaussian, t, dcc, iid_normal and iid_t only",
                )
            try:
                scenario = load_with_options(args.config, args, extra)
            except ConfigError as error:
                given = f" with --marginals {law}" if args.marginals is not None else ""
                raise ConfigError(f"--models {model}{given}: {error}") from None
            variants.append(Variant(model, law, scenario, notes))
    # what a log file must not be appended to (only looked up when one is asked for)
    reads = scenario_files(args.config, base) if args.log_file is not None else []
    configure_logging("warning" if args.quiet else "info", args.log_file, sys.stderr.isatty(), reads, args.out)
    plan = BacktestPlan(splits, args.refit_every, args.draws, base.simulation.n_paths, base.seed)
    outcome = run_backtest(base, variants, plan, args.out, report=LOGGER.info)
    # the fits' own notes (fourth moments, persistence) repeat for every refit: counted, not listed
    fit_notes = [warning for warning in outcome.warnings if ", fit before " in warning]
    for warning in outcome.warnings:
        if warning not in fit_notes:
            LOGGER.warning(warning)
    if fit_notes:
        LOGGER.warning(
            f"{len(fit_notes)} note{'s' if len(fit_notes) != 1 else ''} from the models' fits, "
            f"such as: {fit_notes[0]}; "
            f"all are in {outcome.folder / 'manifest.json'} (warnings)"
        )
    if args.quiet:
        print(outcome.folder)
        return 0
    for split, period in outcome.periods.items():
        print(
            f"{base.name}, split {split}: fitted on {period['fit_first']}..{period['fit_last']} "
            f"({period['n_fit']:,} days), tested on {period['test_first']}..{period['test_last']} "
            f"({period['n_test']:,} days, {period['n_test_months']} months of 21 days)"
        )
    print(f"{args.draws:,} draws per forecast, {base.simulation.n_paths:,} simulated test windows")
    verdicts = outcome.verdicts
    shown = verdicts.assign(smallest_p=verdicts["smallest_p"].map("{:.2g}".format))
    shown = shown.assign(threshold=verdicts["threshold"].map("{:.2g}".format))
    print(
        "a model passes when no check's p-value is below 5% / checks (Bonferroni); "
        "validation.csv has every check, failed_at_5pct counts the individual failures"
    )
    columns = [
        "model",
        "checks",
        "failed_at_5pct",
        "failed_at_threshold",
        "smallest_p",
        "threshold",
        "verdict",
        "worst",
    ]
    several = len(outcome.periods) > 1
    print(shown[["split", *columns] if several else columns].to_string(index=False))
    if several:
        print("\nover the splits (their test periods overlap: a description, not a test):")
        columns = ["model", "splits", "passed", "failed", "not_evaluated", "failed_at_threshold", "passed_at"]
        # a model evaluated at no split has empty cells, one that passed at none an empty passed_at
        summary = outcome.summary[columns].astype(object).fillna("-").replace("", "-")
        print(summary.to_string(index=False))
    for split in outcome.periods:
        at = verdicts[verdicts["split"] == split]
        prefix = f"split {split}: " if several else ""
        passing = at.loc[at["verdict"] == "passes", "model"].tolist()
        failing = at.loc[at["verdict"] != "passes", "model"].tolist()
        print(f"\n{prefix}pass: {', '.join(passing) if passing else 'none'}")
        print(f"{prefix}fail: {', '.join(failing) if failing else 'none'}")
    for failure in outcome.failures:
        print(f"not evaluated: {failure['model']} at split {failure['split']}: {failure['error']}")
    print(f"\nresults: {outcome.folder}")
    if (outcome.folder / "report.html").is_file():
        print(f"report: {outcome.folder / 'report.html'}")
    return 0
