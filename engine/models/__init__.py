"""Volatility models per asset and the copula that joins them."""

from engine.models.dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula, normal_scores
from engine.models.joint import JointModel, fit_joint_model, joint_model_from_config
from engine.models.marginals import FittedMarginal, MarginalSpec, simulate_gjr

__all__ = [
    "FittedMarginal",
    "GaussianCopula",
    "JointModel",
    "MarginalSpec",
    "ScoreTransform",
    "fit_gaussian_copula",
    "fit_joint_model",
    "joint_model_from_config",
    "normal_scores",
    "simulate_gjr",
]
