"""Volatility models per series, the dependence that joins them and an optional market factor."""

from mcalloc.models.bootstrap import IidReturns, ResidualBootstrap, ReturnBootstrap, stationary_indices
from mcalloc.models.calibration import calibrated_scenario
from mcalloc.models.copulas import DccCopula, TCopula, fit_t_copula
from mcalloc.models.dcc import FittedDCC, fit_dcc
from mcalloc.models.dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula, normal_scores
from mcalloc.models.diagnostics import CandidateFit, FitDiagnostics, ljung_box
from mcalloc.models.factor import FactorStructure, fit_factor
from mcalloc.models.fitting import FitOptions, MarginalSpec, fit_series, select_marginal
from mcalloc.models.innovations import InnovationLaw, ShockMoments
from mcalloc.models.joint import JointModel, fit_joint_model, joint_model_from_config
from mcalloc.models.marginals import FittedMarginal, simulate_gjr
from mcalloc.models.recursions import RecursionPlan, SimulationState
from mcalloc.models.report import model_row

__all__ = [
    "CandidateFit",
    "DccCopula",
    "FactorStructure",
    "FitDiagnostics",
    "FitOptions",
    "FittedDCC",
    "FittedMarginal",
    "GaussianCopula",
    "IidReturns",
    "InnovationLaw",
    "JointModel",
    "MarginalSpec",
    "RecursionPlan",
    "ResidualBootstrap",
    "ReturnBootstrap",
    "ScoreTransform",
    "ShockMoments",
    "SimulationState",
    "TCopula",
    "calibrated_scenario",
    "fit_dcc",
    "fit_factor",
    "fit_gaussian_copula",
    "fit_joint_model",
    "fit_series",
    "fit_t_copula",
    "joint_model_from_config",
    "ljung_box",
    "model_row",
    "normal_scores",
    "select_marginal",
    "simulate_gjr",
    "stationary_indices",
]
