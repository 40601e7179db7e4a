"""Distributions of each path's maximum drawdown and longest time under water, as binned shares.

``drawdowns.csv`` keeps them so the report can draw them again from the
saved results, without the per-path table (``output.paths``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mcalloc.portfolio.book_summary import BookSummary

__all__ = ["DRAWDOWN_STEP", "UNDERWATER_STEP_YEARS", "drawdown_distribution_table"]

DRAWDOWN_STEP = 0.02
"""Bin width of the maximum drawdown (a fraction of the peak)."""

UNDERWATER_STEP_YEARS = 0.25
"""Bin width of the longest time under water, in years."""


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return counts / values.size


def drawdown_distribution_table(book: BookSummary, names: list[str], horizon_years: int, currency: str) -> pd.DataFrame:
    """One row per portfolio, measure and bin: ``lower``, ``upper`` and the ``share`` of paths in it.

    Measures: ``max_drawdown`` (fraction, bins of :data:`DRAWDOWN_STEP` over
    [0, 1]) and, when the book counted it, ``longest_underwater_years``
    (bins of :data:`UNDERWATER_STEP_YEARS` over [0, horizon]). The last bin
    is closed, so the shares of a measure add up to 1.
    """
    measures: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "max_drawdown": (book.max_drawdown, np.linspace(0.0, 1.0, round(1.0 / DRAWDOWN_STEP) + 1))
    }
    if book.longest_underwater is not None:
        steps_per_year = book.n_steps / horizon_years
        n_bins = int(np.ceil(horizon_years / UNDERWATER_STEP_YEARS))
        measures["longest_underwater_years"] = (
            book.longest_underwater / steps_per_year,
            UNDERWATER_STEP_YEARS * np.arange(n_bins + 1),
        )
    frames = []
    for measure, (values, edges) in measures.items():
        for column, name in enumerate(names):
            frames.append(
                pd.DataFrame(
                    {
                        "portfolio": name,
                        "currency": currency,
                        "measure": measure,
                        "lower": edges[:-1],
                        "upper": edges[1:],
                        "share": _shares(np.asarray(values[:, column], dtype=float), edges),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
