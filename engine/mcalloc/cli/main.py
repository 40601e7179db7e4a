"""The ``mcalloc`` command line.

Exit codes: 0 success; 2 a problem with the user's input (config, data,
infeasible constraints, output folder), reported in one line; 1 an
unexpected error, with a traceback only under ``-v``.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import yaml

from mcalloc.cli import (
    backtest_command,
    batch_command,
    compare_command,
    data_commands,
    model_commands,
    report_command,
    runs_command,
)
from mcalloc.cli.common import add_config_command, load_with_options, scenario_files
from mcalloc.config.loader import scenario_to_dict
from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError, McallocError, Terminated, check_stop, request_stop

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its errors in one line (not the usage block first), exit 2; subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcalloc",
        description="Monte Carlo portfolio allocation: GARCH-copula paths, drawdowns and cvxpy-optimised weights.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of unexpected errors")
    from mcalloc import __version__

    parser.add_argument("--version", action="version", version=f"mcalloc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        return add_config_command(commands, name, help_text)

    run = with_config("run", "run a scenario and write its results folder")
    run.add_argument("--out", type=Path, help="results folder (default: <output.dir>/<scenario>/<run-id>)")
    run.add_argument("--n-jobs", type=int, help="parallel workers (default: simulation.n_jobs); results do not change")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's seed)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the results folder; log only warnings")
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="what stderr shows: stages and progress (info, the default), warnings, errors",
    )
    run.add_argument("--log-file", type=Path, help="also write the log (timestamped) to this file")
    run.add_argument(
        "--force", action="store_true", help="run even when the estimated memory exceeds what the machine has free"
    )
    run.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="off a terminal: a progress line at most this often (default 10)",
    )
    with_config("validate", "check a scenario and the files it reads; report the first problem")
    with_config("show-config", "print the resolved scenario with all defaults")
    data_commands.register(commands)
    model_commands.register(commands)
    compare_command.register(commands)
    report_command.register(commands)
    batch_command.register(commands)
    backtest_command.register(commands)
    runs_command.register(commands)
    return parser


def _summary(metrics: pd.DataFrame, scenario: Scenario) -> str:
    portfolio = metrics["portfolio"]
    if metrics["currency"].nunique() > 1:
        portfolio = portfolio + " (" + metrics["currency"] + ")"
    table = pd.DataFrame(
        {
            "portfolio": portfolio,
            "CAGR p50": metrics["cagr_median"].map("{:.2%}".format),
            "CAGR p05..p95": [
                f"{low:.1%}..{high:.1%}" for low, high in zip(metrics["cagr_p05"], metrics["cagr_p95"], strict=True)
            ],
            "vol": metrics["vol_ann"].map("{:.1%}".format),
            "maxDD p50": metrics["maxdd_median"].map("{:.1%}".format),
            "maxDD p95": metrics["maxdd_p95"].map("{:.1%}".format),
            "CVaR95 yr": metrics["cvar_95_annual"].map("{:.1%}".format),
            "P(loss)": metrics["prob_loss"].map("{:.1%}".format),
            "wealth p50": metrics["terminal_wealth_p50"].map("{:,.0f}".format),
        }
    )
    simulation = scenario.simulation
    years = simulation.horizon_years
    rebalance = scenario.portfolio.rebalance
    # "rebalanced annually", "never rebalanced"; "1 year"
    rebalanced = "never rebalanced" if rebalance == "never" else f"rebalanced {_ADVERBS.get(rebalance, rebalance)}"
    header = (
        f"{scenario.name}: {simulation.n_paths:,} paths x {years} year{'' if years == 1 else 's'}, "
        f"{rebalanced}, start {scenario.portfolio.initial_wealth:,.0f} {scenario.currency.base}"
    )
    body = table.to_string(index=False) + _errors_line(metrics)
    return header + "\n" + body + _money_summary(metrics, portfolio, scenario)


_ADVERBS = {"annual": "annually", "flows": "with its flows"}
"""The header's words for a rebalancing value that is not already an adverb (daily, monthly, quarterly are)."""


_ERROR_COLUMNS = {
    "CAGR p50": ("cagr_median_se",),
    "CAGR p05..p95": ("cagr_p05_se", "cagr_p95_se"),
    "vol": ("vol_ann_se",),
    "maxDD p50": ("maxdd_median_se",),
    "maxDD p95": ("maxdd_p95_se",),
    "CVaR95 yr": ("cvar_95_annual_se",),
    "P(loss)": ("prob_loss_se",),
}


def _errors_line(metrics: pd.DataFrame) -> str:
    """The table's Monte Carlo standard errors, the largest over its rows: what another seed would move."""
    parts = []
    for label, columns in _ERROR_COLUMNS.items():
        found = [metrics[column].to_numpy(dtype=float) for column in columns if column in metrics]
        values = np.concatenate(found) if found else np.array([])
        if values.size and np.isfinite(values).any():
            parts.append(f"{label} {100 * np.nanmax(values):.2f}")
    if not parts:
        return ""
    return (
        "\nMonte Carlo standard errors, the largest in each column, in percentage points (another seed moves a "
        "figure by about this; metrics.csv has each): " + ", ".join(parts)
    )


def _money_summary(metrics: pd.DataFrame, portfolio: pd.Series, scenario: Scenario) -> str:
    """With savings, withdrawals or taxes: the investor's own money, which the fund's CAGR and P(loss) leave out."""
    if scenario.tax.kind == "none" and not scenario.portfolio.flows:
        return ""
    table = pd.DataFrame(
        {
            "portfolio": portfolio,
            "paid in (net)": metrics["invested_mean"].map("{:,.0f}".format),
            "money-weighted p50": metrics["mwr_median"].map("{:.2%}".format),
            "P(end below paid in)": metrics["prob_shortfall"].map("{:.1%}".format),
            "P(ran dry)": metrics["prob_depleted"].map("{:.1%}".format),
            "taxes (mean)": metrics["taxes_mean"].map("{:,.0f}".format),
            "real wealth p50": metrics["terminal_wealth_real_p50"].map("{:,.0f}".format),
        }
    )
    header = (
        f"\n\nthe investor's money ({scenario.currency.base}; taxes: {scenario.tax.kind}; real: in today's money at "
        f"{scenario.portfolio.inflation:.1%} inflation): CAGR and P(loss) above follow one unit of the fund"
    )
    return header + "\n" + table.to_string(index=False)


def _diversification_summary(table: pd.DataFrame) -> str:
    """Each portfolio minus the reference on the same paths, with 95% intervals, in percentage points."""
    if table.empty:
        return ""
    columns = {
        "cagr_median": "CAGR p50",
        "maxdd_p95": "maxDD p95",
        "cvar_95_annual": "CVaR95 yr",
        "vol_ann": "vol",
        "prob_wealthier": "P(wealthier)",
    }
    several = table["currency"].nunique() > 1
    rows = []
    for (currency, portfolio), group in table.groupby(["currency", "portfolio"], sort=False):
        by_statistic = group.set_index("statistic")
        row = {"portfolio": f"{portfolio} ({currency})" if several else portfolio}
        for statistic, label in columns.items():
            entry = by_statistic.loc[statistic]
            if statistic == "prob_wealthier" and pd.isna(entry["difference"]):
                row[label] = "same mix"  # level with the reference on every path
            elif statistic == "prob_wealthier":
                row[label] = f"{entry['difference']:.0%} ({entry['ci_low']:.0%}..{entry['ci_high']:.0%})"
            else:
                row[label] = (
                    f"{100 * entry['difference']:+.2f} ({100 * entry['ci_low']:+.2f}..{100 * entry['ci_high']:+.2f})"
                )
        rows.append(row)
    reference = table["reference"].iloc[0]
    header = (
        f"diversification: each portfolio minus {reference} on the same paths"
        + (", each in its own currency" if several else "")
        + ", percentage points, 95% Monte Carlo intervals (paired bootstrap: where the figures would settle with "
        "endless paths, not the model's own uncertainty; diversification.csv has the unpaired ones)"
    )
    return header + "\n" + pd.DataFrame(rows).to_string(index=False)


def _percent(value: float) -> str:
    return f"{0.0 if abs(value) < 5e-7 else value:.1%}"


def _weights_summary(weights: pd.DataFrame, stability: pd.DataFrame | None = None) -> str:
    """Every portfolio's weights; optimised ones with their range over independent batches of paths.

    The range, not a symmetric +- spread: a weight at a bound (100%, 0%) only
    moves one way.
    """
    wide = weights.pivot(index="portfolio", columns="asset", values="weight")
    wide = wide.loc[list(dict.fromkeys(weights["portfolio"])), list(dict.fromkeys(weights["asset"]))]
    text = wide.map(_percent)
    header = "weights"
    from mcalloc.api import weight_ranges

    ranged = weight_ranges(stability, text)
    if ranged is not None:
        text = ranged
        header += " (optimised: lowest..highest % over independent batches of the optimiser's paths)"
    return header + "\n" + text.to_string()


def _own_and_new(row: pd.Series, measure: str, form: str) -> str:
    """``measure`` on the optimiser's paths and on the evaluation paths, ``-`` for one that has none."""
    values = (row[f"{measure}_fit"], row[f"{measure}_new_paths"])
    return " / ".join("-" if pd.isna(value) else form.format(value) for value in values)


def _grid_gap(gap: float, objective: float) -> str:
    """The grid's gap in the summary: ``0`` within rounding of the objective, where its digits are the machine's.

    Two sums of the same losses in another order (a BLAS kernel's, which
    depends on the CPU) differ in the last place: the default run's gap read
    -2.2e-16 on one machine and -4.4e-16 on another.
    """
    if pd.isna(gap):
        return "-"
    if abs(gap) <= 1e-12 * max(1.0, abs(objective)):
        return "0"
    return f"{gap:+.1e}"


def _optimization_summary(table: pd.DataFrame) -> str:
    """Each optimised portfolio's objective on the optimiser's paths and on the paths it never saw."""
    if table.empty:
        return ""
    rows = []
    for _, row in table.iterrows():
        fresh = row["objective_new_paths"]
        rows.append(
            {
                "portfolio": row["portfolio"],
                "objective (own paths)": f"{row['objective_value']:.4f}",
                "on new paths": "-" if pd.isna(fresh) else f"{fresh:.4f} +- {row['objective_new_paths_se']:.4f}",
                "grid gap": _grid_gap(row["grid_gap"], row["objective_value"]),
                "CVaR95 log loss (own/new)": _own_and_new(row, "horizon_cvar_95", "{:.3f}"),
                "month-end maxDD p95 (own/new)": _own_and_new(row, "maxdd_p95", "{:.1%}"),
            }
        )
    header = (
        "optimised: the objective on the optimiser's own paths and on the evaluation paths (+- standard error); "
        "grid gap <= 0 (to rounding): no mix on the grid does better; drawdowns of month-end values on both "
        "(the table above has the daily ones); optimization.csv, stability.csv and frontier.csv have more"
    )
    return header + "\n" + pd.DataFrame(rows).to_string(index=False)


def _run(args: argparse.Namespace) -> int:
    from mcalloc.cli.progress import LOGGER, Mode, ProgressReporter, configure_logging
    from mcalloc.pipeline import run_scenario

    if not args.progress_every >= 0.0 or not math.isfinite(args.progress_every):
        raise ConfigError(
            f"--progress-every: {args.progress_every:g} is not a number of seconds; give 0 or more (default 10)"
        )
    scenario = load_with_options(args.config, args)
    if not args.force:
        from mcalloc.simulation.resources import check_memory

        check_memory(scenario)
    terminal = sys.stderr.isatty()
    # what a log file must not be appended to (only looked up when one is asked for)
    reads = scenario_files(args.config, scenario) if args.log_file is not None else []
    configure_logging("warning" if args.quiet else args.log_level, args.log_file, terminal, reads, args.out)
    # a live bar for people at a terminal; timed log lines in pipes and batch logs
    mode: Mode = "off" if args.quiet else ("bar" if terminal else "log")
    progress = ProgressReporter(mode, args.progress_every)

    def report(message: str) -> None:
        if message.startswith("warning:"):
            LOGGER.warning(message.removeprefix("warning: "))
        else:
            LOGGER.info(message)

    outcome = run_scenario(scenario, out=args.out, report=report, progress=progress)
    for warning in outcome.warnings:
        report(f"warning: {warning}")
    timings = json.loads((outcome.folder / "manifest.json").read_text(encoding="utf-8")).get("timings_s", {})
    summary = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items())
    LOGGER.info(f"done in {sum(timings.values()):.1f} s ({summary}); results: {outcome.folder}")
    if args.quiet:
        print(outcome.folder)
        return 0
    print(_summary(outcome.metrics, scenario))
    print()
    diversification = _diversification_summary(outcome.diversification)
    if diversification:
        print(diversification)
        print()
    optimised = _optimization_summary(outcome.optimization)
    if optimised:
        print(optimised)
        print()
    print(_weights_summary(outcome.weights, outcome.stability))
    print(f"\nresults: {outcome.folder}")
    if (outcome.folder / "report.html").is_file():
        print(f"report: {outcome.folder / 'report.html'}")
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    request_stop()
    raise Terminated


def _stop_workers() -> None:
    from mcalloc.simulation.workers import kill_workers

    kill_workers()


_BUILDS_RESULTS = {"run", "batch", "backtest"}
"""Commands that build a results folder, which an interruption marks failed (compare's is removed)."""


def _left_behind(command: str) -> str:
    """What an interrupted ``command`` leaves, for its last line."""
    if command in _BUILDS_RESULTS:
        return "unfinished results were marked failed"
    if command == "report":
        return "the report and figures were left as they were"
    if command == "clean":
        return "what was removed so far stays removed"
    return "files it had finished stay, and none is half-written"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcalloc`` console script; returns the exit code.

    SIGTERM (from a scheduler or ``kill``) is handled like Ctrl-C: the run's
    folder is marked failed, the worker processes are stopped, and the exit
    code is 143 (128 + 15), 130 for Ctrl-C.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    request_stop(False)
    try:
        code = _dispatch(args)
        check_stop()  # a SIGTERM whose exception was lost on the way
        return code
    except KeyboardInterrupt:
        _stop_workers()
        print(f"mcalloc: interrupted; {_left_behind(args.command)}", file=sys.stderr)
        return 130
    except Terminated:
        _stop_workers()
        print(f"mcalloc: terminated (SIGTERM); {_left_behind(args.command)}", file=sys.stderr)
        return 143
    finally:
        request_stop(False)  # handled: later work in this process (mcalloc.run in a notebook) is not stopped
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            result: int = handler(args)
            return result
        if args.command == "run":
            return _run(args)
        scenario = load_with_options(args.config, args)
        if args.command == "validate":
            from mcalloc.pipeline import check_inputs

            for warning in check_inputs(scenario):
                print(f"mcalloc: warning: {warning}", file=sys.stderr)
            count = len(scenario.assets)
            print(f"{args.config}: ok ({scenario.name}, {count} asset{'' if count == 1 else 's'})")
            fitted_with = scenario.model.fitted_with
            if fitted_with is not None:
                from mcalloc.models.calibration import fitted_with_text

                print(
                    f"calibrated from a fit with {fitted_with_text(fitted_with)} (model.fitted_with): the "
                    "parameters hold it, so a run does not apply it again; mcalloc fit and calibrate on this "
                    "file fit with it"
                )
        else:
            print(yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False), end="")
        return 0
    except McallocError as error:
        check_stop()  # an error on the way out of a SIGTERM is the termination
        print(f"mcalloc: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); nothing more to say
        sys.stderr.close()
        return 0
    except Exception as error:  # noqa: BLE001 - the one place unexpected errors are reported
        check_stop()
        if args.verbose:
            traceback.print_exc()
        summary = str(error).splitlines()[0] if str(error) else ""
        print(
            f"mcalloc: unexpected error: {type(error).__name__}: {summary} (run with -v for the traceback)",
            file=sys.stderr,
        )
        return 1
