"""Runs side by side: each run's key metrics per portfolio, with the settings that differ as columns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mcalloc.api import Run
from mcalloc.config.loader import WHERE_IT_RUNS

__all__ = ["KEY_METRICS", "MONEY_METRICS", "compared_metrics", "comparison_table", "has_money", "is_money"]

KEY_METRICS = [
    "cagr_median",
    "cagr_p05",
    "vol_ann",
    "maxdd_median",
    "maxdd_p95",
    "cvar_95_annual",
    "prob_loss",
    "terminal_wealth_p50",
]


MONEY_METRICS = ["invested_mean", "taxes_mean", "mwr_median"]
"""The investor's money, compared when any run saves, withdraws or is taxed."""


def has_money(config: dict[str, Any]) -> bool:
    """Whether a run's resolved ``config`` has cash flows or an account tax: its money is worth showing."""
    taxed = (config.get("tax") or {}).get("kind", "none") != "none"
    return taxed or bool((config.get("portfolio") or {}).get("flows"))


def is_money(column: str) -> bool:
    """Whether a metrics column is an amount of money (shown as one), not a rate or a share."""
    return column.startswith(("terminal_wealth", "invested_", "taxes_"))


def compared_metrics(runs: Sequence[Run]) -> list[str]:
    """:data:`KEY_METRICS`, and :data:`MONEY_METRICS` where a run has cash flows or an account tax."""
    return KEY_METRICS + (MONEY_METRICS if any(has_money(run.config) for run in runs) else [])


def _flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Dotted keys as ``--set`` writes them (list items by index), the model summarised by a hash."""
    if prefix == "model.":
        text = json.dumps(data, sort_keys=True, default=str)
        return {"model": hashlib.sha256(text.encode()).hexdigest()[:8]}
    if isinstance(data, dict):
        flat: dict[str, object] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        flat = {}
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}{index}."))
        return flat
    return {prefix.rstrip("."): data if not isinstance(data, list) else str(data)}


IGNORED = ("output.", "description", "name", *(f"simulation.{key}" for key in WHERE_IT_RUNS))
"""Settings that do not change the numbers."""


def _applies(key: str, config: dict[str, Any]) -> bool:
    """Whether ``key`` means anything for a run: an account's rates (``tax.isk.*``) only for that account,
    the data section only for a fitted model.

    A run's ``config.yaml`` leaves out the account section its ``tax.kind``
    does not use; those keys are compared among the runs that use them. A
    calibrated model reads no data: a copy of the default calibrated from
    data differs from it in its data section, and in nothing a run uses.
    """
    kind = (config.get("tax") or {}).get("kind", "none")
    if key.startswith("data.") and (config.get("model") or {}).get("source", "calibrated") != "fit":
        return False
    return not any(key.startswith(f"tax.{section}.") and kind != section for section in ("isk", "depot"))


def _differences(runs: list[Run]) -> list[str]:
    """Config keys whose values are not the same in every run (labels, names and the output folder aside)."""
    flat = [_flatten(run.config) for run in runs]
    keys = list(dict.fromkeys(key for one in flat for key in one))
    return [
        key
        for key in keys
        if not key.startswith(IGNORED)
        and not key.endswith(".label")
        and len({repr(one.get(key)) for one, run in zip(flat, runs, strict=True) if _applies(key, run.config)}) > 1
    ]


def run_labels(runs: Sequence[Run]) -> list[str]:
    """A distinct label per run: its folder's name, with as many parent folders as it takes to tell runs apart.

    Two batches name their runs alike (``runs/horizon=5``), so names alone may repeat; the same folder
    given twice is labelled ``name (2)``.
    """
    parts = [run.folder.resolve().parts for run in runs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    seen: dict[str, int] = {}
    distinct = []
    for label in (run.folder.name for run in runs):
        seen[label] = seen.get(label, 0) + 1
        distinct.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return distinct


def comparison_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run, portfolio and currency: the run (its label), the settings that differ, the key metrics."""
    differing = _differences(runs)
    shown = compared_metrics(runs)
    schemas = {str(run.manifest.get("schema_version")) for run in runs}
    frames = []
    for run, label in zip(runs, run_labels(runs), strict=True):
        flat = _flatten(run.config)
        metrics = run.metrics.copy()
        if "currency" not in metrics:
            metrics.insert(1, "currency", run.config.get("currency", {}).get("base", "USD"))
        table = metrics[["portfolio", "currency", *(m for m in shown if m in metrics)]].copy()
        table.insert(0, "run", label)
        table.insert(1, "scenario", run.manifest.get("scenario"))
        if len(schemas) > 1:  # columns may mean other things (docs/results.md lists what each version changed)
            table.insert(2, "schema_version", str(run.manifest.get("schema_version")))
        for position, key in enumerate(differing, start=2 + (len(schemas) > 1)):
            # a key the run's config does not hold was left at its default: an empty cell, not "None"
            table.insert(position, key, str(flat[key]) if key in flat else "")
        frames.append(table)
    return pd.concat(frames, ignore_index=True)
