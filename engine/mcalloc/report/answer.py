"""The page's answer in words: what each portfolio changes against the reference, and what its intervals leave out.

The numbers are ``diversification.csv``'s, in the first currency it has
(the run's own): the difference of the median CAGR and of the 95th
percentile of the maximum drawdown, each with its paired 95% interval, and
the share of paths on which the portfolio ends wealthier, with its Wilson
interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Finding", "findings", "uncertainty_note"]


@dataclass(frozen=True)
class Finding:
    """One portfolio against the reference, as the page says it: the name, then what it changes."""

    portfolio: str
    text: str


def _points(value: float, sign: str = "+") -> str:
    """A difference of rates in percentage points: two decimals, or three where two would read as zero."""
    scaled = 100.0 * value
    return f"{scaled:{sign}.{3 if 0.0 < abs(scaled) < 0.005 else 2}f}"


def _share(value: float) -> str:
    """A share of paths: whole percents, with two decimals near 0% or 100% (0.9996 is not 100%)."""
    return f"{value:.{2 if value < 0.005 or value > 0.995 else 0}%}"


def _change(name: str, entry: pd.Series, larger: str, smaller: str) -> str:
    """A difference in percentage points with its interval; one whose interval holds 0 is said to be none."""
    difference, low, high = (float(entry[key]) for key in ("difference", "ci_low", "ci_high"))
    interval = f"95% interval {_points(low)} to {_points(high)}"
    if low <= 0.0 <= high:
        return f"no difference in {name} the paths can tell apart ({interval})"
    word = larger if difference > 0.0 else smaller
    return f"{name} {_points(abs(difference), '')} points {word} ({interval})"


def _same_mix(by_statistic: pd.DataFrame) -> bool:
    """Level with the reference on every path: no share wealthier (NaN), or, in folders of schema 1.1 and 1.2,
    a share of 0 beside differences and intervals that are all exactly 0."""
    share = float(by_statistic["difference"].astype(float).loc["prob_wealthier"])
    if math.isnan(share):
        return True
    numbers = by_statistic.loc[["cagr_median", "maxdd_p95"], ["difference", "ci_low", "ci_high"]]
    return share == 0.0 and bool((numbers.to_numpy(dtype=float) == 0.0).all())


def findings(table: pd.DataFrame | None) -> list[Finding]:
    """Each portfolio against the reference in words, from ``diversification.csv`` (empty without a reference)."""
    if table is None or table.empty:
        return []
    currency = table["currency"].iloc[0]
    reference = table["reference"].iloc[0]
    shown: list[Finding] = []
    for portfolio, group in table[table["currency"] == currency].groupby("portfolio", sort=False):
        by_statistic = group.set_index("statistic")
        wealthier = by_statistic.loc["prob_wealthier"]
        if _same_mix(by_statistic):
            shown.append(Finding(str(portfolio), f"the same mix as {reference}: no difference on any path"))
            continue
        parts = [
            _change("median CAGR", by_statistic.loc["cagr_median"], "a year higher", "a year lower"),
            _change("95th-percentile maximum drawdown", by_statistic.loc["maxdd_p95"], "deeper", "shallower"),
            f"ends wealthier than {reference} on {_share(wealthier['difference'])} of paths "
            f"({_share(wealthier['ci_low'])} to {_share(wealthier['ci_high'])})",
        ]
        shown.append(Finding(str(portfolio), "; ".join(parts)))
    return shown


def uncertainty_note(config: Mapping[str, Any]) -> str:
    """What the page's intervals cover, and what they leave out, for a run of ``config`` (the resolved scenario)."""
    model = config.get("model") or {}
    means = (
        "each path draws its own long-run means within their sampling error (model.mean_uncertainty), so the spread "
        "of outcomes across paths includes not knowing the means"
        if model.get("mean_uncertainty")
        else "the means are taken as known (model.mean_uncertainty: null), so the spread of outcomes across paths "
        "leaves out not knowing them"
    )
    return (
        "The intervals are Monte Carlo intervals: where each figure would settle with endless paths of this model. "
        "They do not cover the model's own error. How far the generator reproduces history is in the calibration "
        f"table below (for a fitted run) and in docs/models.md; {means}."
    )
