"""``mcalloc batch SWEEP.yaml | CONFIG... | DIR``: many runs, resumable, failures isolated, one index.

Runs land in ``<out>/runs/<name>/`` (default ``<out>`` = ``results/<batch
name>``), with ``index.csv`` and ``index.parquet`` beside them, rewritten
after every run. Re-running the same command skips the runs already
complete (same resolved config, seed and data) and retries the others.
Exit code 0 when every run is complete, 2 when any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mcalloc.cli.common import add_command
from mcalloc.errors import ConfigError, McallocError

__all__ = ["register"]

EXAMPLES = """examples:
  mcalloc batch configs/sweeps/horizon_x_smallcaps.yaml --dry-run
  mcalloc batch configs/sweeps/horizon_x_smallcaps.yaml --set simulation.n_paths=2000
  mcalloc batch configs/examples/sweden.yaml configs/examples/isk_vs_depot.yaml --out results/swedes
  mcalloc batch configs/sweeps/sek_account_x_rebalance.yaml --backend dask --scheduler tcp://10.0.0.5:8786
"""


def register(commands: Any) -> None:
    """Add ``batch`` to the top-level sub-parsers."""
    help_text = "run many scenarios (a sweep file, scenario files or a folder): resumable, with an index"
    batch = add_command(commands, "batch", help_text, __doc__, EXAMPLES)
    batch.add_argument("inputs", nargs="+", type=Path, metavar="SWEEP|CONFIG|DIR", help="what to run")
    batch.add_argument("--out", type=Path, help="batch folder (default: results/<batch name>)")
    batch.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting in every run (repeatable), e.g. simulation.n_paths=2000",
    )
    batch.add_argument("--n-jobs", type=int, help="workers per run (default: each scenario's simulation.n_jobs)")
    batch.add_argument("--backend", choices=["loky", "dask"], help="where paths run (default: the scenario's)")
    batch.add_argument("--scheduler", help="dask scheduler address, tcp://HOST:PORT (default: a local cluster)")
    batch.add_argument("--dry-run", action="store_true", help="list the runs, their status and memory; run nothing")
    batch.add_argument("--log-file", type=Path, help="also write the batch's log (timestamped) to this file")
    batch.add_argument(
        "--force", action="store_true", help="run every run even when its estimated memory exceeds what is free"
    )
    batch.set_defaults(handler=_batch)


def _with_options(batch: Any, args: argparse.Namespace) -> tuple[Any, list[str]]:
    """Every run with the command line's settings after its own, and how errors name those settings.

    An error here names the option that gave a setting.
    """
    from dataclasses import replace

    from mcalloc.batch.sweep import sets_within

    settings: list[tuple[str, str | None]] = [(override, None) for override in args.overrides]
    if args.n_jobs is not None:
        settings.append((f"simulation.n_jobs={args.n_jobs}", "--n-jobs"))
    if args.backend is not None or args.scheduler is not None:
        settings.append((f"simulation.backend={args.backend or 'dask'}", "--backend"))
    if args.scheduler is not None:
        from mcalloc.config.sections import check_scheduler_address

        try:  # refused once here, not in every run
            check_scheduler_address(args.scheduler)
        except ValueError as error:
            raise ConfigError(f"--scheduler: {error}") from None
        settings.append((f"simulation.scheduler={args.scheduler}", "--scheduler"))
    for setting, origin in settings:
        key = setting.partition("=")[0].strip()
        hit = next((other for other in batch.varied if sets_within(key, other)), None)
        if hit is not None:
            given = f"--set {setting}" if origin is None else origin
            whole = f" (a whole section, {hit} included)" if hit.startswith(key + ".") else ""
            raise ConfigError(
                f"{given}: the batch varies {hit} from run to run, and this would set it{whole} in every run "
                f"alike; drop {origin or 'the --set'}, set the section's keys one by one, or change the sweep"
            )
    overrides, origins = [text for text, _ in settings], [origin for _, origin in settings]
    # how errors name each setting: the option that gave it, or --set KEY
    options = [origin or f"--set {text.partition('=')[0].strip()}" for text, origin in settings]
    return replace(batch, runs=tuple(run.with_settings(overrides, origins) for run in batch.runs)), options


def _dry_run(batch: Any, out: Path, options: list[str], force: bool) -> int:
    import pandas as pd

    from mcalloc.batch.runner import (
        batch_in_use,
        check_batch_folder,
        check_distinct_runs,
        estimate,
        in_use,
        is_complete,
        run_key,
    )
    from mcalloc.config.loader import load_scenario
    from mcalloc.pipeline import check_readable
    from mcalloc.simulation.resources import check_memory

    check_batch_folder(out)  # the batch refuses a folder it cannot make before any run, so the dry run does
    check_distinct_runs(batch, [], options)  # and two runs that are one, or settings that fail every run
    holder = batch_in_use(out)  # and one another batch is running in
    if holder is not None:
        raise in_use(out, holder)
    rows = []
    failing: list[dict[str, object]] = []  # the rows of runs that would fail
    for run in batch.runs:
        row: dict[str, object] = {"run": run.name}
        try:
            scenario = load_scenario(run.config, run.overrides, run.origins)
            done = is_complete(out / "runs" / run.name, run_key(scenario))
            if not done:  # what the run would refuse before it fits: its constraints, its files
                check_readable(scenario)
            row.update(
                status="complete" if done else "to run",
                paths=f"{scenario.simulation.n_paths:,}",
                years=f"{scenario.simulation.horizon_years:g}",
                **estimate(scenario),
            )
        except McallocError as error:
            row.update(status=f"invalid: {str(error).splitlines()[0]}")
            failing.append(row)
        else:
            try:
                if not done:  # the batch refuses a run the machine cannot hold, so the dry run does
                    check_memory(scenario, force="pass --force")
            except McallocError as error:
                if force:
                    row.update(status="to run (--force: more memory than is free)")
                else:
                    row.update(status=f"too large: {str(error).splitlines()[0]}")
                    failing.append(row)
        rows.append(row)
    print(f"{batch.name}: {len(batch.runs)} run{'s' if len(batch.runs) != 1 else ''} into {out}")
    print(pd.DataFrame(rows).astype(object).fillna("").to_string(index=False))
    if failing:  # like the batch itself: exit 2 when a run would fail, with the first reason on stderr
        first = failing[0]
        raise McallocError(
            f"{len(failing)} of {len(rows)} runs would fail; the first, {first['run']}: {first['status']}"
        )
    return 0


def _batch(args: argparse.Namespace) -> int:
    from mcalloc.batch import batch_from_inputs, run_batch
    from mcalloc.batch.runner import check_batch_folder
    from mcalloc.cli.progress import LOGGER, configure_logging

    batch = batch_from_inputs(args.inputs)
    out = args.out if args.out is not None else Path("results") / batch.name
    batch, options = _with_options(batch, args)
    if args.dry_run:
        return _dry_run(batch, out, options, args.force)
    check_batch_folder(out)  # before the log file, which may be made inside it
    configure_logging("info", args.log_file, sys.stderr.isatty())
    outcome = run_batch(batch, out, report=LOGGER.info, options=options, force=args.force)
    shown = outcome.index[["run", "status", *batch.parameters, "error"]]
    print(shown.to_string(index=False))
    complete = sum(record.status in ("complete", "skipped") for record in outcome.records)
    print(f"\n{complete} of {len(outcome.records)} runs complete; index: {out / 'index.csv'}")
    if outcome.failed:  # the first reason on stderr, as every command's failure is said
        first = outcome.failed[0]
        raise McallocError(
            f"{len(outcome.failed)} of {len(outcome.records)} runs failed; the first, {first.run.name}: {first.error}"
        )
    return 0
