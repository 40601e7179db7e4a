"""The joint model: one volatility model per asset joined by a copula."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.config.schema import ModelConfig
from engine.data.returns import MarketData
from engine.models.dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula
from engine.models.marginals import FittedMarginal, MarginalSpec, simulate_gjr

__all__ = ["JointModel", "fit_joint_model", "joint_model_from_config"]


@dataclass(frozen=True)
class JointModel:
    """Fitted marginals (in asset order) and their copula; simulates returns."""

    marginals: tuple[FittedMarginal, ...]
    copula: GaussianCopula

    @property
    def asset_names(self) -> list[str]:
        return [m.name for m in self.marginals]

    def initial_variance(self, n_paths: int) -> np.ndarray:
        """Starting conditional variances, shape (n_paths, n_assets), percent squared."""
        start = np.array([m.initial_variance for m in self.marginals])
        return np.tile(start, (n_paths, 1))

    def simulate_block(self, rng: np.random.Generator, variance: np.ndarray, n_steps: int) -> np.ndarray:
        """Simulate ``n_steps`` days continuing from ``variance`` (updated in place).

        Returns daily log returns (decimal) of shape (n_paths, n_steps, n_assets).
        """
        innovations = self.copula.sample_innovations(rng, variance.shape[0], n_steps, self._transforms)
        return simulate_gjr(self.marginals, innovations, variance, out=innovations)

    def simulate(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """Daily log returns (decimal) of shape (n_paths, n_steps, n_assets), in one block."""
        return self.simulate_block(rng, self.initial_variance(n_paths), n_steps)

    @cached_property
    def _transforms(self) -> list[ScoreTransform]:
        return [ScoreTransform(m) for m in self.marginals]


def joint_model_from_config(config: ModelConfig, asset_names: list[str]) -> JointModel:
    """Build the model from calibrated parameters held in the scenario."""
    marginals_config = config.marginals
    params = marginals_config.params or {}
    marginals = tuple(
        FittedMarginal.from_params(
            name, marginals_config.kind, marginals_config.dist, marginals_config.mean, params[name]
        )
        for name in asset_names
    )
    if config.dependence.kind == "independent" or config.dependence.correlation is None:
        correlation = np.eye(len(asset_names))
    else:
        correlation = np.asarray(config.dependence.correlation, dtype=float)
    return JointModel(marginals=marginals, copula=GaussianCopula(correlation))


def fit_joint_model(config: ModelConfig, data: MarketData) -> JointModel:
    """Fit each asset's volatility model, then the copula of their residuals."""
    spec = MarginalSpec(kind=config.marginals.kind, dist=config.marginals.dist, mean=config.marginals.mean)
    marginals = tuple(spec.fit(data.returns[name], name) for name in data.returns.columns)
    if config.dependence.kind == "independent":
        copula = GaussianCopula(np.eye(len(marginals)))
    else:
        copula = fit_gaussian_copula(marginals)
    return JointModel(marginals=marginals, copula=copula)
