"""``mcalloc data list`` and ``mcalloc data show NAME``: the built-in datasets."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from mcalloc.cli.common import add_command
from mcalloc.data.builtin import BUILTIN_DATASETS, describe_builtin, load_builtin

__all__ = ["register"]

_PERIODS_PER_YEAR = {"daily": 252, "weekly": 52, "monthly": 12}


def register(commands: Any) -> None:
    """Add the ``data`` command group to the top-level sub-parsers."""
    examples = "examples:\n  mcalloc data list\n  mcalloc data show sp500\n  mcalloc data show ecb:USD/SEK"
    data = add_command(commands, "data", "list and inspect built-in datasets", __doc__, examples)
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="the datasets that load offline").set_defaults(handler=_list)
    show = actions.add_parser("show", help="range, size and return statistics of one dataset")
    show.add_argument("name", help="a dataset name, e.g. sp500 or ecb:USD/SEK")
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    rows = []
    for name, dataset in BUILTIN_DATASETS.items():
        info = describe_builtin(name)
        rows.append(
            {
                "name": name,
                "frequency": dataset.frequency,
                "first": info["first"],
                "last": info["last"],
                "observations": info["observations"],
                "description": dataset.description,
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nUse in a scenario as  data.paths.<asset>: builtin:NAME  or  currency.fx.<CCY>: builtin:ecb:CCY/BASE")
    return 0


def _show(args: argparse.Namespace) -> int:
    info = describe_builtin(args.name)
    levels = load_builtin(str(info["source"])).values
    log_returns = np.log(levels).diff().dropna()
    per_year = _PERIODS_PER_YEAR[str(info["frequency"])]
    for key in ("name", "description", "frequency", "first", "last", "observations", "package"):
        print(f"{key:>13}: {info[key]}")
    # a pause in the quotes (the ECB priced no ISK from 2008-12 to 2018-02) is not one period's move
    days = pd.Series(log_returns.index, index=log_returns.index).diff().dt.days.fillna(0)
    gaps = days[days > 3 * 365.25 / per_year + 5]
    if not gaps.empty:
        end = pd.Timestamp(gaps.idxmax())
        start = pd.Timestamp(end - pd.Timedelta(days=int(gaps.max())))
        print(
            f"{'gaps':>13}: {gaps.size} without quotes, the longest {int(gaps.max())} days ({start.date()} to "
            f"{end.date()}); the moves across them are left out below"
        )
        log_returns = log_returns.drop(gaps.index)
    print(f"{'mean log ret':>13}: {log_returns.mean() * per_year:.2%} a year")
    print(f"{'volatility':>13}: {log_returns.std() * np.sqrt(per_year):.2%} a year")
    print(f"{'worst period':>13}: {np.expm1(log_returns.min()):+.2%} on {log_returns.idxmin().date()}")
    print(f"{'best period':>13}: {np.expm1(log_returns.max()):+.2%} on {log_returns.idxmax().date()}")
    print("\nfirst and last levels")
    print(pd.concat([levels.head(3), levels.tail(3)]).to_string())
    return 0
