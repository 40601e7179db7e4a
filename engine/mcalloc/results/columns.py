"""The results tables' own columns that hold names and words.

They are read back as text whatever they look like (a label ``NA``, a run
named ``007``); an asset cannot take one of these names, since the tables
that have a column per asset (``correlation.csv``) would read its
correlations back as text, and some hold one of them beside the assets'.
"""

from __future__ import annotations

__all__ = ["TEXT_COLUMNS"]

TEXT_COLUMNS = frozenset(
    {
        "asset", "label", "portfolio", "reference", "currency", "series", "run", "entry", "model", "dependence",
        "marginals", "kind", "dist", "mean", "role", "start", "statistic", "method", "measure", "frontier",
        "objective", "status", "solver", "parameter", "check", "horizon", "split", "window", "verdict", "worst",
    }
)  # fmt: skip
"""Columns of the results' tables that hold names and words, read back as text whatever they look like."""
