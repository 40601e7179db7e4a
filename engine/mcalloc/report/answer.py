"""The page's answer in words: what each portfolio changes against the reference, and what its intervals leave out.

The numbers are ``diversification.csv``'s, in the first currency it has
(the run's own): the difference of the median CAGR and of the 95th
percentile of the maximum drawdown, each with its paired 95% interval, and
the share of paths on which the portfolio ends wealthier, with its Wilson
interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mcalloc.report.tables import points

__all__ = ["Finding", "findings", "uncertainty_note"]


@dataclass(frozen=True)
class Finding:
    """One portfolio against the reference, as the page says it: the name, then what it changes."""

    portfolio: str
    text: str


def _change(name: str, entry: pd.Series, larger: str, smaller: str) -> str:
    """A difference in percentage points with its interval; one whose interval holds 0 is said to be none."""
    difference, low, high = (float(entry[key]) for key in ("difference", "ci_low", "ci_high"))
    interval = f"95% interval {points(low)} to {points(high)}"
    if low <= 0.0 <= high:
        return f"no difference in {name} the paths can tell apart ({interval})"
    word = larger if difference > 0.0 else smaller
    return f"{name} {100.0 * abs(difference):.2f} points {word} ({interval})"


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
        if pd.isna(wealthier["difference"]):  # level with the reference on every path: the same mix
            shown.append(Finding(str(portfolio), f"the same mix as {reference}: no difference on any path"))
            continue
        parts = [
            _change("median CAGR", by_statistic.loc["cagr_median"], "a year higher", "a year lower"),
            _change("95th-percentile maximum drawdown", by_statistic.loc["maxdd_p95"], "deeper", "shallower"),
            f"ends wealthier than {reference} on {wealthier['difference']:.0%} of paths "
            f"({wealthier['ci_low']:.0%} to {wealthier['ci_high']:.0%})",
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
