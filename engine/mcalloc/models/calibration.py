"""Calibrated scenarios: a fitted model written back into a reusable config, and the config that refits it.

:func:`calibrated_scenario` writes the fitted numbers in and moves the
settings that the numbers already hold (lead-lag terms, correlation stress,
``mean_uncertainty.years: data``) to ``model.fitted_with``, where a run does
not apply them again; :func:`fitting_section` puts them back, so that a
refit of the calibrated file is the fit of the scenario it came from. The
two directions live together so that they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mcalloc.config.loader import keep_chosen_nulls, scenario_to_dict
from mcalloc.config.model_schema import FittedWithConfig, ModelConfig
from mcalloc.config.schema import Scenario
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.copulas import DccCopula, TCopula
from mcalloc.models.joint import JointModel

__all__ = ["calibrated_scenario", "fitted_with_text", "fitting_section", "refit_warnings", "residuals_frame"]


def _matrix(values: np.ndarray) -> list[list[float]]:
    return [[float(value) for value in row] for row in values]


def _combined_blend(first: float, then: float) -> float:
    """One ``correlation_blend`` for blending by ``first`` and then by ``then``: ``1 - (1 - first)(1 - then)``.

    ``(1 - b)((1 - a) R + a 11') + b 11' = (1 - a)(1 - b) R + (1 - (1 - a)(1 - b)) 11'``;
    either alone is returned as it is (``1 - (1 - a)`` need not be ``a`` in floating point).
    """
    if first == 0.0:
        return then
    if then == 0.0:
        return first
    return 1.0 - (1.0 - first) * (1.0 - then)


def fitting_section(model: ModelConfig) -> ModelConfig:
    """The ``model`` section that fits the data as this model was fitted (``source: fit``).

    A fitting section is returned as it is. A calibrated one loses its
    fitted numbers (parameters, correlation, ``nu``, ``dcc``, residuals,
    loadings, regimes' loadings and transition, the means' covariance),
    which the fit estimates again, and takes back what ``fitted_with``
    records: ``lead_lag``, ``lead_lag_series``, ``stress`` and
    ``mean_uncertainty.years: data``. The section's own
    ``correlation_blend``, a stress of the calibrated correlation, is
    applied after the fit's, as a run of the calibrated file applies it.
    Without ``fitted_with`` (a file calibrated before it was written) the
    fit has no lead-lag terms and no other stress (see :func:`refit_warnings`).
    """
    if model.source == "fit":
        return model
    section = model.model_dump(mode="json", exclude_none=True)
    keep_chosen_nulls(model, section)  # variance_ceiling: null (no ceiling) is not the default's 4
    fitted_with = model.fitted_with or FittedWithConfig()
    section["source"] = "fit"
    section.pop("fitted_with", None)
    section["marginals"].pop("params", None)
    dependence = section["dependence"]
    for key in ("correlation", "nu", "dcc", "residuals"):
        dependence.pop(key, None)
    dependence["lead_lag"] = fitted_with.lead_lag
    dependence["lead_lag_series"] = fitted_with.lead_lag_series
    dependence["stress"] = {
        "correlation_blend": _combined_blend(
            fitted_with.stress.correlation_blend, model.dependence.stress.correlation_blend
        ),
        "worst_days": fitted_with.stress.worst_days,
    }
    factor = section.get("factor")
    if factor is not None:
        factor.pop("loadings", None)
        for key in ("loadings", "transition"):
            factor.get("regimes", {}).pop(key, None)
    uncertainty = section.get("mean_uncertainty")
    if uncertainty is not None:
        for key in ("series", "covariance"):
            uncertainty.pop(key, None)
        if fitted_with.mean_uncertainty_years is not None:
            uncertainty["years"] = fitted_with.mean_uncertainty_years
    return ModelConfig.model_validate(section)


def fitted_with_text(fitted_with: FittedWithConfig) -> str:
    """The settings a refit of a calibrated model uses, in a few words."""
    parts = []
    if fitted_with.lead_lag:
        listed = fitted_with.lead_lag_series
        pairs = f"pairs with {', '.join(listed)}" if listed else "every pair"
        parts.append(f"lead_lag {fitted_with.lead_lag} ({pairs})")
    stress = fitted_with.stress
    if stress.worst_days is not None:
        parts.append(f"the correlation of the worst {stress.worst_days:.3g} of days")
    if stress.correlation_blend:
        parts.append(f"correlation_blend {stress.correlation_blend:.6g}")
    if fitted_with.mean_uncertainty_years is not None:
        parts.append("mean_uncertainty.years: data")
    return ", ".join(parts) if parts else "no lead-lag terms, no correlation stress"


def refit_warnings(scenario: Scenario) -> list[str]:
    """What a refit of a calibrated file with data cannot know: how it was fitted, when ``fitted_with`` is absent."""
    model = scenario.model
    if model.source == "fit" or scenario.data is None or model.fitted_with is not None:
        return []
    return [
        "model.fitted_with: absent (the file was calibrated before mcalloc recorded it), so mcalloc fit and "
        "calibrate on this file fit without lead-lag terms or a correlation stress of their own and with "
        "mean_uncertainty.years as written; if the parameters were fitted with any (dependence.lead_lag, stress, "
        "years: data), give them there, or fit the original scenario"
    ]


def calibrated_scenario(scenario: Scenario, model: JointModel, residuals_file: str | None = None) -> dict[str, Any]:
    """The resolved scenario with ``model``, fitted to its data, written in as calibrated parameters.

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

    The fit's ``dependence.lead_lag``, ``lead_lag_series`` and ``stress``
    and ``mean_uncertainty.years: data``, which the numbers already hold,
    move to ``model.fitted_with``: a run does not apply them again, and a
    refit (:func:`fitting_section`) does. ``scenario`` may be calibrated
    itself: it is written as its refit was fitted.

    Returns
    -------
    dict
        Plain YAML-ready data; everything else in the scenario is unchanged.
    """
    fitting = fitting_section(scenario.model)
    data = scenario_to_dict(scenario.model_copy(update={"model": fitting}))
    section = data["model"]
    section["source"] = "calibrated"
    marginals = section["marginals"]
    marginals["step"] = scenario.data.frequency if scenario.data is not None else marginals.get("step")
    default = (marginals["kind"], marginals["dist"], marginals["mean"])
    marginals["params"] = {m.name: m.to_params(with_model=(m.kind, m.dist, m.mean) != default) for m in model.marginals}
    dependence = section["dependence"]
    kind = fitting.dependence.kind
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
    # the fitted numbers already carry the stress, the lead-lag terms and the sample's years: kept for a refit
    uncertainty = fitting.mean_uncertainty
    section["fitted_with"] = {
        "lead_lag": fitting.dependence.lead_lag,
        "lead_lag_series": fitting.dependence.lead_lag_series,
        "stress": fitting.dependence.stress.model_dump(mode="json"),
        "mean_uncertainty_years": "data" if uncertainty is not None and uncertainty.years == "data" else None,
    }
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
