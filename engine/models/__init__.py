"""Volatility models per series and the copula that joins them."""

from engine.models.calibration import calibrated_scenario
from engine.models.dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula, normal_scores
from engine.models.diagnostics import CandidateFit, FitDiagnostics, ljung_box
from engine.models.fitting import FitOptions, MarginalSpec, fit_series, select_marginal
from engine.models.innovations import InnovationLaw
from engine.models.joint import JointModel, fit_joint_model, joint_model_from_config
from engine.models.marginals import FittedMarginal, simulate_gjr
from engine.models.recursions import RecursionPlan, SimulationState
from engine.models.report import model_row

__all__ = [
    "CandidateFit",
    "FitDiagnostics",
    "FitOptions",
    "FittedMarginal",
    "GaussianCopula",
    "InnovationLaw",
    "JointModel",
    "MarginalSpec",
    "RecursionPlan",
    "ScoreTransform",
    "SimulationState",
    "calibrated_scenario",
    "fit_gaussian_copula",
    "fit_joint_model",
    "fit_series",
    "joint_model_from_config",
    "ljung_box",
    "model_row",
    "normal_scores",
    "select_marginal",
    "simulate_gjr",
]
