"""Calibrated scenarios: a fitted model written back into a reusable config."""

from __future__ import annotations

from typing import Any

from engine.config.loader import scenario_to_dict
from engine.config.schema import Scenario
from engine.models.joint import JointModel

__all__ = ["calibrated_scenario"]


def calibrated_scenario(scenario: Scenario, model: JointModel) -> dict[str, Any]:
    """The resolved scenario with ``model`` written in as calibrated parameters.

    ``model.source`` becomes ``calibrated``; ``model.marginals.params`` holds
    every series' parameters and starting state (``last_variance``,
    ``last_return`` for AR(1), ``max_variance``), at full float precision so
    that a run from the result simulates exactly what a run that fits does.
    A series whose model differs from the section's ``kind``/``dist``/``mean``
    (always the case after ``kind: auto``) carries its own. A Gaussian
    copula's fitted correlation goes to ``model.dependence.correlation``.

    Returns
    -------
    dict
        Plain YAML-ready data; everything else in the scenario is unchanged.
    """
    data = scenario_to_dict(scenario)
    section = data["model"]
    section["source"] = "calibrated"
    marginals = section["marginals"]
    default = (marginals["kind"], marginals["dist"], marginals["mean"])
    marginals["params"] = {m.name: m.to_params(with_model=(m.kind, m.dist, m.mean) != default) for m in model.marginals}
    if scenario.model.dependence.kind == "gaussian":
        section["dependence"]["correlation"] = [[float(value) for value in row] for row in model.copula.correlation]
    return data
