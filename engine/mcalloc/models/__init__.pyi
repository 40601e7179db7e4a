"""Names of :mod:`mcalloc.models`, imported on first use (see ``__init__.py``)."""

from . import (
    assembly,
    bootstrap,
    calibration,
    copulas,
    dcc,
    dependence,
    diagnostics,
    factor,
    fitting,
    innovations,
    inversion,
    joint,
    joint_fit,
    marginals,
    recursions,
    report,
    selection,
    validation,
)
from .assembly import joint_model_from_config
from .bootstrap import IidReturns, ResidualBootstrap, ReturnBootstrap, stationary_indices
from .calibration import calibrated_scenario, fitting_section
from .copulas import DccCopula, TCopula, fit_t_copula
from .dcc import FittedDCC, fit_dcc
from .dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula, normal_scores
from .diagnostics import CandidateFit, FitDiagnostics, ljung_box
from .factor import FactorStructure, fit_factor
from .fitting import FitOptions, MarginalSpec
from .innovations import InnovationLaw, ShockMoments
from .joint import JointModel
from .joint_fit import fit_joint_model
from .marginals import FittedMarginal, simulate_gjr
from .recursions import RecursionPlan, SimulationState
from .report import model_row
from .selection import fit_series, select_marginal

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
    "assembly",
    "bootstrap",
    "calibrated_scenario",
    "calibration",
    "copulas",
    "dcc",
    "dependence",
    "diagnostics",
    "factor",
    "fit_dcc",
    "fit_factor",
    "fit_gaussian_copula",
    "fit_joint_model",
    "fit_series",
    "fit_t_copula",
    "fitting",
    "fitting_section",
    "innovations",
    "inversion",
    "joint",
    "joint_fit",
    "joint_model_from_config",
    "ljung_box",
    "marginals",
    "model_row",
    "normal_scores",
    "recursions",
    "report",
    "select_marginal",
    "selection",
    "simulate_gjr",
    "stationary_indices",
    "validation",
]
