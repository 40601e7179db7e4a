"""Calibrated scenarios: a fitted model written back into a reusable config."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mcalloc.config.loader import scenario_to_dict
from mcalloc.config.schema import Scenario
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.copulas import DccCopula, TCopula
from mcalloc.models.joint import JointModel

__all__ = ["calibrated_scenario", "residuals_frame"]


def _matrix(values: np.ndarray) -> list[list[float]]:
    return [[float(value) for value in row] for row in values]


def calibrated_scenario(scenario: Scenario, model: JointModel, residuals_file: str | None = None) -> dict[str, Any]:
    """The resolved scenario with ``model`` written in as calibrated parameters.

    ``model.source`` becomes ``calibrated``; ``model.marginals.params`` holds
    every series' parameters and starting state (``last_variance``,
    ``last_return`` for AR(1), ``max_variance``, ``stressed_variance``), at
    full float precision so that a run from the result simulates exactly
    what a run that fits does. A series whose model differs from the
    section's ``kind``/``dist``/``mean`` (always the case after ``kind:
    auto``) carries its own. The dependence model's parameters (correlation,
    ``nu``, ``dcc``), the factor loadings, the years and the long-run
    covariance of the data behind uncertain means and the step length the
    parameters describe are written too; an ``fhs`` model names ``residuals_file``,
    which the caller writes from :func:`residuals_frame`.

    Returns
    -------
    dict
        Plain YAML-ready data; everything else in the scenario is unchanged.
    """
    data = scenario_to_dict(scenario)
    section = data["model"]
    section["source"] = "calibrated"
    marginals = section["marginals"]
    marginals["step"] = scenario.data.frequency if scenario.data is not None else marginals.get("step")
    default = (marginals["kind"], marginals["dist"], marginals["mean"])
    marginals["params"] = {m.name: m.to_params(with_model=(m.kind, m.dist, m.mean) != default) for m in model.marginals}
    dependence = section["dependence"]
    kind = scenario.model.dependence.kind
    if kind in ("gaussian", "t", "dcc"):
        dependence["correlation"] = _matrix(model.dependence.correlation)
    if isinstance(model.dependence, TCopula):
        dependence["nu"] = float(model.dependence.nu)
    if isinstance(model.dependence, DccCopula):
        fitted_dcc = model.dependence.dcc
        dependence["dcc"] = {"a": float(fitted_dcc.a), "b": float(fitted_dcc.b)}
        if fitted_dcc.last_q is not None:  # where a run with simulation.start.kind: last starts
            dependence["dcc"]["last_q"] = _matrix(fitted_dcc.last_q)
    if isinstance(model.dependence, ResidualBootstrap):
        dependence["residuals"] = residuals_file
    # the fitted numbers already carry the stress and the lead-lag terms
    dependence["stress"] = {"correlation_blend": 0.0, "worst_days": None}
    dependence["lead_lag"] = 0
    dependence["lead_lag_series"] = None
    if model.mean_years is not None:
        section["mean_uncertainty"] = {
            "years": float(model.mean_years),
            "series": model.asset_names,
            "covariance": _matrix(model.mean_sampling_covariance()),
        }
    if model.factor is not None:
        factor = section["factor"]
        names = model.asset_names
        factor["loadings"] = {
            name: [float(value) for value in model.factor.loadings[index]]
            for index, name in enumerate(names)
            if index != model.factor.market
        }
        if model.factor.switching is not None:
            assert model.factor.regime_loadings is not None and model.factor.transition is not None
            factor["regimes"] = {
                "series": names[model.factor.switching],
                "n_regimes": model.factor.n_regimes,
                "loadings": _matrix(model.factor.regime_loadings),
                "transition": _matrix(model.factor.transition),
            }
    return data


def residuals_frame(model: JointModel) -> pd.DataFrame | None:
    """The standardised residuals an ``fhs`` model resamples, one column per series (``None`` otherwise)."""
    if not isinstance(model.dependence, ResidualBootstrap):
        return None
    return pd.DataFrame(model.dependence.residuals, columns=model.asset_names)
