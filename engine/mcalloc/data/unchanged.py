"""Steps without a move: a stale price feed, values carried forward over closed days, calendar-daily files.

Each such step is fitted as a day (week, month) on which the market did
not move, which lowers the fitted volatility; none is an error a file's
own reading can see, so they are found in the returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mcalloc.data.checks import longest_run
from mcalloc.errors import DataError

__all__ = [
    "CARRIED_SHARE",
    "MIN_CARRIED",
    "STALE_RUN",
    "WEEKEND_ROWS",
    "carried_values",
    "check_weekend_fill",
    "stale_runs",
]

STALE_RUN = 5
"""Unchanged steps in a row that make a warning: 2 at most in SPY, IWM, EFA and TLT, 2001-2019."""

CARRIED_SHARE = 0.02
"""Share of unchanged steps (zero returns), beyond what the prices' precision explains, that makes a warning.

SPY, IWM and EFA have none in 2001-2019 and TLT 1 of 4,386; a file filled
on the 9 or 10 US market holidays a year has 3.6%, one joined to another
market's calendar and filled, about 4%.
"""

MIN_CARRIED = 10
"""Fewest unchanged steps that make that warning (a short file's one or two are no pattern)."""

WEEKEND_ROWS = 10
"""Saturday and Sunday rows that make a file calendar-daily (a few stray ones are a vendor's dating)."""

_EVERY = {"day": "daily", "week": "weekly", "month": "monthly"}


def stale_runs(returns: pd.DataFrame, paths: Mapping[str, str], unit: str = "day") -> list[str]:
    """One warning per series whose longest run of unchanged values (zero returns) is :data:`STALE_RUN` or more.

    A price feed that went stale repeats its last close; its zero returns
    lower the fitted volatility, and a long run can push the fit to a
    persistence of 1, whose refusal would not name the cause.
    """
    warnings = []
    for column in returns.columns:
        unchanged = returns[column].to_numpy() == 0.0
        if unchanged.sum() < STALE_RUN:
            continue
        start, end = longest_run(unchanged)
        length = end - start
        if length >= STALE_RUN:
            first, last = returns.index[start], returns.index[end - 1]
            where = f"{column} ({paths[column]})" if column in paths else str(column)
            warnings.append(
                f"data: {where} does not move for {length} {unit}s in a row, {first.date()} to {last.date()}: "
                "a stale price feed? Its zero returns lower the fitted volatility; check the source, or move the "
                "data window past them"
            )
    return warnings


def _rounding_zeros(levels: np.ndarray, returns: np.ndarray) -> tuple[float, float]:
    """The smallest move of ``levels`` (their quote's step, 0.01 for cents), and how many zero returns it explains.

    A price quoted to a step ``h`` does not change when its move is under
    ``h / 2``: with a normal move of ``sigma P``, a chance of about
    ``h / (sqrt(2 pi) sigma P)``, summed over the steps. A bond fund near
    USD 84 moving 0.07% a day, in cents, is unchanged about 6% of its days.
    ``levels`` has one more row than ``returns`` (log returns).
    """
    moves = np.abs(np.diff(levels))
    moved = moves[moves > 0.0]
    sigma = float(np.std(returns))
    if moved.size == 0 or not sigma > 0.0:
        return 0.0, 0.0
    step = float(moved.min())
    chance = np.minimum(step / (math.sqrt(2.0 * math.pi) * sigma * np.abs(levels[:-1])), 1.0)
    return step, float(np.nansum(chance))


def carried_values(
    returns: pd.DataFrame, levels: pd.DataFrame, paths: Mapping[str, str], names: Sequence[str], unit: str
) -> list[str]:
    """One warning per series of ``names`` with :data:`CARRIED_SHARE` or more of zero returns its precision leaves.

    A file filled forward on days its market was closed (holidays, another
    market's calendar, every weekday) has a step of no move for each: the
    fitted volatility is lower, and no one run of them is long enough for
    :func:`stale_runs`. Prices quoted to a coarse step (a bond fund in
    cents) are unchanged on quiet days too: those are counted out
    (:func:`_rounding_zeros`). ``levels`` are the values ``returns`` are
    taken from; ``unit`` is a step's (day, week, month).
    """
    warnings = []
    n_steps = returns.shape[0]
    for name in names:
        values = returns[name].to_numpy()
        unchanged = int((values == 0.0).sum())
        step, explained = _rounding_zeros(levels[name].to_numpy(dtype=float), values)
        if unchanged < MIN_CARRIED or unchanged - explained < CARRIED_SHARE * n_steps:
            continue
        where = f"{name} ({paths[name]})" if name in paths else name
        precision = f", about {explained:,.0f} of them from prices quoted to {step:g}" if explained >= 1.0 else ""
        warnings.append(
            f"data: {where}: {unchanged:,} of {n_steps:,} {_EVERY.get(unit, unit)} returns "
            f"({unchanged / n_steps:.1%}) are exactly 0{precision}: a file filled forward on days its market was "
            f"closed (holidays, another market's calendar)? Each counts as a {unit} without a move, which lowers "
            "the fitted volatility; give the series' own trading days"
        )
    return warnings


def check_weekend_fill(returns: pd.DataFrame, paths: Mapping[str, str], names: Sequence[str]) -> None:
    """Refuse daily returns with Saturday and Sunday rows on which a series of ``names`` never moves.

    Such a file lists every calendar day, the Friday's close carried over the
    weekend: 365 steps a year fitted and simulated as 252, each weekend two
    days of no move. A market open at weekends moves on them, and passes.

    Raises
    ------
    DataError
        Naming the series' file and what to do.
    """
    weekend = np.asarray(pd.DatetimeIndex(returns.index).day_of_week >= 5)
    if weekend.sum() < WEEKEND_ROWS:
        return
    for name in names:
        unchanged = returns[name].to_numpy()[weekend] == 0.0
        if unchanged.mean() >= 0.9:
            raise DataError(
                f"{paths.get(name, name)}: {int(weekend.sum()):,} of the returns of {name} fall on Saturdays and "
                f"Sundays, {unchanged.mean():.0%} of them 0 (the Friday's value carried over: a file of every "
                "calendar day); they would be fitted as trading days without a move: give trading days only, "
                "without the weekend rows"
            )
