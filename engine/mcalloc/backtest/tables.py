"""validation.csv: every out-of-sample check of every model, and a plain verdict per model.

Rows, one per check (columns :data:`VALIDATION_COLUMNS`):

- ``check = var``: a value-at-risk forecast (``statistic`` ``var99`` or
  ``var95``) at horizon ``1d`` or ``1m`` of a series or portfolio, with its
  exceedances, Kupiec's unconditional-coverage p-value, Christoffersen's
  independence p-value and their joint conditional-coverage p-value; it
  passes when the joint p-value is at least ``LEVEL``.
- ``check = pit``: the probability integral transforms of the realised
  returns at a horizon, with the Kolmogorov-Smirnov p-value against the
  uniform law and Berkowitz's (2001) p-value (uniform and independent); it
  passes when Berkowitz's p-value is at least ``LEVEL``.
- ``check = window``: a statistic of the whole test window (volatility,
  correlation, drawdown, cumulative return) against windows of the same
  length simulated from the state at the split; it passes when its
  percentile lies within 100 LEVEL / 2 .. 100 (1 - LEVEL / 2).

Every row also carries ``p_value``, the p-value that decides it (for a
window check, the two-sided Monte Carlo p-value ``2 min(k_below + 1,
k_above + 1) / (n_paths + 1)``, capped at 1).

A model passes when none of its checks has a p-value below ``LEVEL /
n_checks`` (Bonferroni): if the model is right, it then fails with a chance
of at most ``LEVEL`` however strongly its checks depend on each other (they
share days, and a portfolio shares its assets' returns), which a count of
individual failures cannot promise. The individual 5% failures are counted
too, as a guide to where a model falls short.

With several splits every row carries its ``split``, each model gets a
verdict per split, and :func:`split_summary` counts the splits each model
passes. The splits' test periods overlap (each runs to the end of the data),
so the count describes how a model fares from different starting points; it
is not a test of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mcalloc.backtest.forecasts import COVERAGES, HorizonForecasts
from mcalloc.metrics.calibration import CalibrationRow
from mcalloc.metrics.forecast_tests import berkowitz_test, christoffersen_conditional_coverage, ks_uniformity

__all__ = [
    "LEVEL",
    "VALIDATION_COLUMNS",
    "forecast_rows",
    "split_summary",
    "verdicts",
    "window_check_rows",
    "window_p_value",
]

LEVEL = 0.05
"""Significance level of each check."""

VALIDATION_COLUMNS = [
    "split", "model", "dependence", "marginals", "check", "horizon", "series", "statistic", "n_obs",
    "exceedances", "expected_exceedances", "exceedance_rate", "kupiec_p", "independence_p",
    "conditional_coverage_p", "ks_p", "berkowitz_p", "realised", "sim_p05", "sim_p50", "sim_p95",
    "percentile", "p_value", "passed",
]  # fmt: skip


def forecast_rows(forecasts: HorizonForecasts, names: Sequence[str]) -> list[dict[str, object]]:
    """VaR and PIT rows of one horizon's forecasts, for every target in ``names`` (column order)."""
    rows: list[dict[str, object]] = []
    for column, name in enumerate(names):
        realised = forecasts.realised[:, column]
        for coverage in COVERAGES:
            hits = realised < forecasts.var[coverage][:, column]
            tests = christoffersen_conditional_coverage(hits, coverage)
            rows.append(
                {
                    "check": "var",
                    "horizon": forecasts.horizon,
                    "series": name,
                    "statistic": f"var{round(100 * (1 - coverage))}",
                    "n_obs": int(tests["n_obs"]),
                    "exceedances": int(tests["exceedances"]),
                    "expected_exceedances": coverage * tests["n_obs"],
                    "exceedance_rate": tests["rate"],
                    "kupiec_p": tests["kupiec_p"],
                    "independence_p": tests["independence_p"],
                    "conditional_coverage_p": tests["conditional_coverage_p"],
                    "p_value": tests["conditional_coverage_p"],
                    "passed": bool(tests["conditional_coverage_p"] >= LEVEL),
                }
            )
        pits = forecasts.pit[:, column]
        berkowitz = berkowitz_test(pits) if pits.size >= 3 else math.nan
        rows.append(
            {
                "check": "pit",
                "horizon": forecasts.horizon,
                "series": name,
                "statistic": "pit",
                "n_obs": int(pits.size),
                "ks_p": ks_uniformity(pits),
                "berkowitz_p": berkowitz,
                "p_value": berkowitz,
                "passed": bool(berkowitz >= LEVEL),
            }
        )
    return rows


def window_p_value(percentile: float, n_paths: int) -> float:
    """Two-sided Monte Carlo p-value of a realised statistic at ``percentile`` (0..100) among ``n_paths`` simulated."""
    if math.isnan(percentile):
        return math.nan
    tail = min(percentile, 100.0 - percentile) / 100.0 * n_paths
    return min(1.0, 2.0 * (tail + 1.0) / (n_paths + 1.0))


def window_check_rows(rows: Sequence[CalibrationRow], n_paths: int) -> list[dict[str, object]]:
    """Rows of the whole-window checks, against ``n_paths`` simulated windows."""
    return [
        {
            "check": "window",
            "horizon": row.window,
            "series": row.series,
            "statistic": row.statistic,
            "n_obs": 1,
            "realised": row.data,
            "sim_p05": row.sim_p05,
            "sim_p50": row.sim_p50,
            "sim_p95": row.sim_p95,
            "percentile": row.percentile,
            "p_value": window_p_value(row.percentile, n_paths),
            "passed": bool(window_p_value(row.percentile, n_paths) >= LEVEL),
        }
        for row in rows
    ]


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per split and model: checks, 5% failures, the smallest p-value against ``LEVEL / checks``, verdict.

    ``failed_at_threshold`` counts the checks below the threshold (zero when
    the model passes); ``worst`` names up to three checks with the smallest
    p-values, failed at 5%.
    """
    records = []
    for (split, model), group in table.groupby(["split", "model"], sort=False):
        n_checks = len(group)
        threshold = LEVEL / n_checks
        p_values = group["p_value"].astype(float)
        ordered = group.assign(p_value=p_values).sort_values("p_value", kind="stable")
        worst = [_label(row) for _, row in ordered.head(3).iterrows() if not row["passed"]]
        smallest = float(p_values.min())
        records.append(
            {
                "split": split,
                "model": model,
                "dependence": group["dependence"].iloc[0],
                "marginals": group["marginals"].iloc[0],
                "checks": n_checks,
                "failed_at_5pct": int((~group["passed"].astype(bool)).sum()),
                "failed_at_threshold": int((p_values < threshold).sum()),
                "smallest_p": smallest,
                "threshold": threshold,
                "verdict": "passes" if smallest >= threshold else "fails",
                "worst": "; ".join(worst),
            }
        )
    summary = pd.DataFrame(records)
    summary["failed_at_threshold"] = summary["failed_at_threshold"].astype("Int64")
    return summary


def split_summary(verdict: pd.DataFrame, not_evaluated: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """One row per model over every split: how many it passed, failed, or could not be fitted at.

    ``verdict`` is :func:`verdicts`' table; ``not_evaluated`` lists ``(split,
    model)`` pairs whose model could not be fitted. ``failed_at_threshold``
    sums, over the evaluated splits, the checks below each split's Bonferroni
    threshold (empty for a model evaluated at none); ``failed_at_5pct_median``
    is the median of the individual 5% failures.
    """
    splits = sorted({*verdict["split"].astype(str), *(split for split, _ in not_evaluated)})
    models = list(dict.fromkeys([*verdict["model"], *(model for _, model in not_evaluated)]))
    records = []
    for model in models:
        rows = verdict[verdict["model"] == model]
        passed = rows.loc[rows["verdict"] == "passes", "split"].astype(str).tolist()
        failed = rows.loc[rows["verdict"] != "passes", "split"].astype(str).tolist()
        missing = [split for split, name in not_evaluated if name == model]
        records.append(
            {
                "model": model,
                "splits": len(splits),
                "passed": len(passed),
                "failed": len(failed),
                "not_evaluated": len(missing),
                # a model never evaluated has no count: a 0 would rank it best
                "failed_at_threshold": int(rows["failed_at_threshold"].sum()) if len(rows) else None,
                "failed_at_5pct_median": float(rows["failed_at_5pct"].median()) if len(rows) else math.nan,
                "passed_at": " ".join(passed),
                "failed_at": " ".join(failed),
                "not_evaluated_at": " ".join(missing),
            }
        )
    summary = pd.DataFrame(records)
    summary["failed_at_threshold"] = summary["failed_at_threshold"].astype("Int64")
    return summary


def _label(row: pd.Series) -> str:
    if row["check"] == "window":
        return f"{row['statistic']} {row['series']} at percentile {row['percentile']:.1f} (p={row['p_value']:.2g})"
    if row["check"] == "pit":
        return f"PIT {row['horizon']} {row['series']} (Berkowitz p={row['berkowitz_p']:.3g})"
    return (
        f"{row['statistic']} {row['horizon']} {row['series']}: {row['exceedances']:.0f} hits vs "
        f"{row['expected_exceedances']:.1f} expected (p={row['conditional_coverage_p']:.3g})"
    )
