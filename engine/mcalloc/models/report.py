"""Flat, table-ready descriptions of fitted models (``models.csv``, ``mcalloc fit``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.models.marginals import FittedMarginal

if TYPE_CHECKING:
    import pandas as pd

    from mcalloc.config.schema import Scenario
    from mcalloc.models.joint import JointModel

__all__ = ["PARAMETER_KEYS", "model_row", "models_table"]

PARAMETER_KEYS = ("mu", "phi", "omega", "alpha", "gamma", "beta", "nu", "skew")


def model_row(
    marginal: FittedMarginal, steps_per_year: int, start_variance: float, start_kind: str
) -> dict[str, object]:
    """One series' model and diagnostics as a flat row.

    Parameters are in percent units; ``*_se`` are their standard errors
    (fits only). ``vol_ann_*`` are annualised decimal volatilities of log
    returns; ``half_life_steps`` is in steps of the data (days for daily
    data). Values that do not apply are NaN.

    Parameters
    ----------
    marginal
        The model.
    steps_per_year
        Steps per year used to annualise.
    start_variance
        The simulation's first conditional variance, percent squared.
    start_kind
        How it was chosen (``simulation.start.kind``).
    """
    diagnostics = marginal.diagnostics
    nan = math.nan
    errors = diagnostics.std_errors if diagnostics is not None else {}
    row: dict[str, object] = {"kind": marginal.kind, "dist": marginal.dist, "mean": marginal.mean}
    row.update({key: marginal.params.get(key, nan) for key in PARAMETER_KEYS})
    row.update(
        {
            "persistence": marginal.persistence,
            "fourth_moment_factor": marginal.fourth_moment_factor,
            "fourth_moment_finite": bool(marginal.fourth_moment_factor < 1.0),
            "half_life_steps": marginal.half_life,
            "vol_ann_unconditional": marginal.annual_volatility(steps_per_year),
            "vol_ann_initial": math.sqrt(start_variance * steps_per_year) / marginal.scale,
            "start": start_kind,
            "loglikelihood": diagnostics.loglikelihood if diagnostics is not None else nan,
            "loglikelihood_free": (
                diagnostics.free_loglikelihood
                if diagnostics is not None and diagnostics.free_loglikelihood is not None
                else nan
            ),
            "aic": diagnostics.aic if diagnostics is not None else nan,
            "bic": diagnostics.bic if diagnostics is not None else nan,
            "n_params": diagnostics.n_params if diagnostics is not None else 0,
            "n_obs": marginal.n_obs,
            "ljung_box_lags": diagnostics.ljung_box_lags if diagnostics is not None else 0,
            "ljung_box_p": diagnostics.ljung_box_p if diagnostics is not None else nan,
            "ljung_box_sq_p": diagnostics.ljung_box_squared_p if diagnostics is not None else nan,
            "sample_start": (diagnostics.sample_start or "") if diagnostics is not None else "",
            "sample_end": (diagnostics.sample_end or "") if diagnostics is not None else "",
        }
    )
    row.update({f"{key}_se": errors.get(key, nan) for key in PARAMETER_KEYS})
    row["scale"] = marginal.scale
    return row


def models_table(model: JointModel, scenario: Scenario) -> pd.DataFrame:
    """One row per asset: parameters (percent units), their standard errors and the fit's diagnostics."""
    import pandas as pd

    rows = []
    steps = scenario.simulation.steps_per_year
    start_variance, _ = model.start_levels()
    # exchange rates are simulated series in factor mode only (translate mode applies historical rates)
    simulated_rates = scenario.foreign_currencies if scenario.fx_factor_names else []
    labels = [asset.display_name for asset in scenario.assets] + [
        f"{code}/{scenario.currency.base} exchange rate" for code in simulated_rates
    ]
    if model.baseline is not None:
        start_variance = np.array([m.unconditional_variance for m in model.marginals])
    with np.errstate(invalid="ignore"):
        total = np.sqrt(np.diag(model.long_run_covariance()) * steps) / 100.0
    mean_se = np.full(len(model.marginals), np.nan)
    if model.mean_years is not None:
        mean_se = np.sqrt(np.diag(model.drift_covariance())) * steps
    factor = model.factor
    for index, (name, label, marginal) in enumerate(zip(scenario.factor_names, labels, model.marginals, strict=True)):
        row = model_row(marginal, steps, float(start_variance[index]), model.start.kind)
        role = "series" if factor is None else ("market" if index == factor.market else "idiosyncratic")
        loadings = (
            {} if factor is None else {f"loading_lag{lag}": float(v) for lag, v in enumerate(factor.loadings[index])}
        )
        rows.append(
            {
                "asset": name,
                "label": label,
                "role": role,
                **row,
                "vol_ann_total": float(total[index]),
                "mean_se_ann": float(mean_se[index]),
                **loadings,
            }
        )
    return pd.DataFrame(rows)
