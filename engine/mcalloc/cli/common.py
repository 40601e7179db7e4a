"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcalloc.errors import ConfigError, McallocError, OutputError

if TYPE_CHECKING:
    from mcalloc.config.schema import Scenario

__all__ = [
    "EXAMPLES",
    "add_command",
    "add_config_command",
    "as_help",
    "check_not_read",
    "check_output_file",
    "check_outside_results",
    "extended_files",
    "load_with_options",
    "scenario_files",
]

_OPTION_KEYS = {"n_jobs": ("--n-jobs", "simulation.n_jobs"), "seed": ("--seed", "seed")}
"""Command-line options that set a config key: attribute, the option as typed, the key."""


def load_with_options(config: Path, args: argparse.Namespace, extra: Iterable[str] = ()) -> Scenario:
    """The scenario of ``config`` with ``--set`` overrides, then the options that set keys, then ``extra``.

    An error in a key an option set names the option (``--n-jobs: ...``),
    since that is what the user typed.
    """
    from mcalloc.config.loader import load_scenario

    given = {name: pair for name, pair in _OPTION_KEYS.items() if getattr(args, name, None) is not None}
    options = [f"{key}={getattr(args, name)}" for name, (_, key) in given.items()]
    try:
        return load_scenario(config, [*args.overrides, *options, *extra])
    except ConfigError as error:
        from mcalloc.batch.sweep import _is_sweep_quietly, check_not_a_sweep_without_base

        if config.is_file() and _is_sweep_quietly(config):
            raise ConfigError(
                f"{config}: a sweep file (it has base:), not a scenario; check it with mcalloc batch {config} --dry-run"
            ) from None
        if config.is_file():
            check_not_a_sweep_without_base(config)
        text = str(error)
        for option, key in given.values():
            if text.startswith(f"--set {key}:"):
                raise ConfigError(option + text.removeprefix(f"--set {key}")) from None
        raise


def check_output_file(option: str, path: Path, example: str) -> None:
    """Refuse, before any work, an output file that cannot be written or must not be.

    Refused: a folder, a place under a file or a locked folder, and a place
    inside a run's or a backtest's folder (:func:`check_outside_results`).
    ``example`` is a file name to suggest inside a folder given by mistake.
    A command that knows what it reads also calls :func:`check_not_read`.
    """
    from mcalloc.results.writer import place_problem

    if path.is_dir():
        # a results folder's own files are refused below: the example is then beside it
        inside = path / example
        suggested = inside if not _inside_results(inside) else Path(os.path.abspath(path)).parent / example
        raise OutputError(f"{option} {path}: a folder; give a file name, such as {suggested}")
    problem = place_problem(path)
    if problem is not None:
        raise OutputError(f"{option} {path}: {problem}; give another {option}")
    check_outside_results(option, path)


def check_outside_results(option: str, path: Path, error: type[McallocError] = OutputError) -> None:
    """Refuse a file to write (or append to) inside a run's, backtest's, batch's or comparison's folder.

    Their files are their results: ``compare --csv batch/index.csv`` left a
    comparison where the batch's index was, disagreeing with its
    ``index.parquet``.
    """
    holder = _inside_results(path)
    if holder is not None:
        raise error(
            f"{option} {path}: inside the mcalloc folder {holder}, whose files are its results; give another {option}"
        )


def _inside_results(path: Path) -> Path | None:
    """The nearest folder above ``path`` that mcalloc made: a run's, backtest's, batch's or comparison's."""
    from mcalloc.results.writer import mcalloc_folder_above

    holder = mcalloc_folder_above(path)
    if holder is None:
        holder = next((parent for parent in Path(os.path.abspath(path)).parents if _made_by_mcalloc(parent)), None)
    return holder


def _made_by_mcalloc(folder: Path) -> bool:
    """Whether ``folder`` is a batch's (its index) or a comparison's (its table and page)."""
    if (folder / "index.parquet").is_file() or ((folder / "index.csv").is_file() and (folder / "runs").is_dir()):
        return True
    return (folder / "comparison.csv").is_file() and (folder / "compare.html").is_file()


def check_not_read(option: str, path: Path, reads: Iterable[Path], error: type[McallocError] = OutputError) -> None:
    """Refuse a file to write (or append to) that is one of the files the command ``reads`` (:func:`scenario_files`)."""
    target = path.resolve()
    read = next((file for file in reads if file.resolve() == target), None)
    if read is not None:
        raise error(f"{option} {path}: a file this command reads ({read}); give another {option}")


def scenario_files(config: Path, scenario: Scenario | None = None) -> list[Path]:
    """The files a command reads for ``config``: itself, the files it extends and ``scenario``'s own files.

    Those are its data files, a foreign currency's, and the residuals a
    calibrated scenario resamples; ``builtin:`` series are not files.
    """
    files = [config, *extended_files(config)]
    if scenario is not None:
        data = scenario.data
        named = [*scenario.currency.fx.values()]
        if data is not None:
            named += [*data.paths.values(), *([data.file] if data.file is not None else [])]
        if scenario.model.dependence.residuals is not None:
            named.append(scenario.model.dependence.residuals)
        files += [Path(name) for name in named if not name.startswith("builtin:")]
    return files


def extended_files(config: Path) -> list[Path]:
    """The files ``config`` extends, nearest first (the chain :func:`load_scenario` has already checked)."""
    from mcalloc.config.loader import read_yaml_file

    chain: list[Path] = []
    current = config.resolve()
    while len(chain) < 20:
        try:
            data, _ = read_yaml_file(current)
        except (ConfigError, OSError):
            break  # not read (yet): the command's own loading names the problem
        parent = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(parent, str):
            break
        current = (current.parent / parent).resolve()
        chain.append(current)
    return chain


EXAMPLES = {
    "run": [
        "mcalloc run configs/default.yaml",
        "mcalloc run configs/default.yaml --set simulation.n_paths=100000 --out results/big",
        "mcalloc run configs/examples/sweden.yaml --set portfolio.rebalance=annual -q",
        "mcalloc run configs/default.yaml --log-file run.log 2> progress.log",
    ],
    "validate": ["mcalloc validate configs/default.yaml", "mcalloc validate my.yaml --set simulation.n_paths=500"],
    "show-config": ["mcalloc show-config configs/examples/sweden.yaml"],
    "fit": ["mcalloc fit configs/examples/fit_etfs.yaml", "mcalloc fit configs/examples/fit_etfs.yaml --csv fit.csv"],
    "calibrate": ["mcalloc calibrate configs/examples/fit_etfs.yaml --out configs/my_calibrated.yaml"],
    "backtest": [
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2015-01-01",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2012-01-01 --refit-every 12 --models fhs,dcc",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2015-01-01 --models dcc,fhs --marginals t,skewt",
        "mcalloc backtest configs/examples/fit_etfs.yaml --split 2008-01-01,2012-01-01,2016-01-01 --refit-every 12",
    ],
}
"""Shown under each command's ``--help``."""


def add_config_command(
    commands: Any,
    name: str,
    help_text: str,
    config_help: str = "scenario YAML file",
    example: str = "simulation.n_paths=2000",
) -> argparse.ArgumentParser:
    """A sub-command taking a scenario file and repeatable ``--set KEY=VALUE`` overrides."""
    examples = EXAMPLES.get(name)
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("config", type=Path, help=config_help)
    sub.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. {example} (repeatable)",
    )
    return sub


def as_help(docstring: str | None) -> str | None:
    """A command module's docstring for ``--help``: reStructuredText's double backticks as single ones."""
    return docstring.replace("``", "`") if docstring else docstring


def add_command(commands: Any, name: str, help_text: str, description: str | None, examples: str) -> Any:
    """A sub-command whose ``--help`` shows ``description`` as written and ends with ``examples``.

    ``description`` is the command module's docstring (see :func:`as_help`).
    """
    return commands.add_parser(
        name,
        help=help_text,
        description=as_help(description),
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
