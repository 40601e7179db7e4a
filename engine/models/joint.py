"""The joint model: one volatility model per series joined by a copula."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from engine.config.model_schema import StartConfig
from engine.config.schema import ModelConfig
from engine.data.market import MarketData
from engine.errors import ModelError
from engine.models.dependence import GaussianCopula, ScoreTransform, fit_gaussian_copula
from engine.models.fitting import FitOptions, fit_series
from engine.models.marginals import FittedMarginal
from engine.models.recursions import RecursionPlan, SimulationState

__all__ = ["JointModel", "fit_joint_model", "joint_model_from_config"]


@dataclass(frozen=True)
class JointModel:
    """Fitted marginals (in column order) and their copula; simulates returns.

    ``start`` chooses each path's first conditional variance (see
    :class:`~engine.config.model_schema.StartConfig`); ``steps_per_year``
    converts ``start.vol_ann`` to a per-step variance.
    """

    marginals: tuple[FittedMarginal, ...]
    copula: GaussianCopula
    start: StartConfig = field(default_factory=StartConfig)
    steps_per_year: int = 252

    @property
    def asset_names(self) -> list[str]:
        return [m.name for m in self.marginals]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every warning met while fitting the marginals, in column order."""
        return tuple(note for m in self.marginals for note in m.warnings)

    def selection_records(self) -> list[dict[str, object]]:
        """``kind: auto``'s candidate tables, one row per series and candidate."""
        return [row.record(m.name) for m in self.marginals for row in m.candidates]

    def starting_at(self, start: StartConfig, steps_per_year: int) -> JointModel:
        """This model with another starting state; checks that every series can start there.

        Raises
        ------
        ModelError
            If a series lacks what the start needs (e.g. ``last_variance``).
        """
        model = replace(self, start=start, steps_per_year=steps_per_year)
        model.start_levels()
        return model

    def start_levels(self) -> tuple[np.ndarray, np.ndarray]:
        """Starting variance (percent squared) and previous return (percent), each of shape (n_assets,)."""
        return self._start_levels

    @cached_property
    def _start_levels(self) -> tuple[np.ndarray, np.ndarray]:
        levels = [m.start_state(self.start, self.steps_per_year) for m in self.marginals]
        return np.array([v for v, _ in levels]), np.array([r for _, r in levels])

    def initial_state(self, n_paths: int) -> SimulationState:
        """A fresh state for ``n_paths`` paths, each at the starting levels."""
        variance, last_return = self._start_levels
        return SimulationState(variance=np.tile(variance, (n_paths, 1)), last_return=np.tile(last_return, (n_paths, 1)))

    def initial_variance(self, n_paths: int) -> np.ndarray:
        """Starting conditional variances, shape (n_paths, n_assets), percent squared."""
        return self.initial_state(n_paths).variance

    def simulate_block(self, rng: np.random.Generator, state: SimulationState, n_steps: int) -> np.ndarray:
        """Simulate ``n_steps`` days continuing from ``state`` (updated in place).

        Returns daily log returns (decimal) of shape (n_paths, n_steps, n_assets).
        """
        innovations = self.copula.sample_innovations(rng, state.variance.shape[0], n_steps, self._transforms)
        return self._plan.simulate(innovations, state, out=innovations)

    def simulate(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """Daily log returns (decimal) of shape (n_paths, n_steps, n_assets), in one block."""
        return self.simulate_block(rng, self.initial_state(n_paths), n_steps)

    @cached_property
    def _transforms(self) -> list[ScoreTransform]:
        return [ScoreTransform(m) for m in self.marginals]

    @cached_property
    def _plan(self) -> RecursionPlan:
        return RecursionPlan.from_marginals(self.marginals)


def joint_model_from_config(config: ModelConfig, asset_names: list[str]) -> JointModel:
    """Build the model from calibrated parameters held in the scenario.

    Raises
    ------
    ModelError
        If a series' parameters are incomplete or not stationary.
    """
    marginals_config = config.marginals
    params = marginals_config.params or {}
    marginals = []
    for name in asset_names:
        kind, dist, mean = marginals_config.model_of(name)
        if kind == "auto":
            raise ModelError(f"model.marginals.params.{name}.kind: required when marginals.kind is auto")
        marginals.append(FittedMarginal.from_params(name, kind, dist, mean, params[name]))
    if config.dependence.kind == "independent" or config.dependence.correlation is None:
        correlation = np.eye(len(asset_names))
    else:
        correlation = np.asarray(config.dependence.correlation, dtype=float)
    return JointModel(marginals=tuple(marginals), copula=GaussianCopula(correlation))


def fit_joint_model(config: ModelConfig, data: MarketData, options: FitOptions | None = None) -> JointModel:
    """Fit each series' volatility model (or select one), then the copula of their residuals."""
    marginals = tuple(
        fit_series(data.returns[name], str(name), config.marginals, options) for name in data.returns.columns
    )
    if config.dependence.kind == "independent":
        copula = GaussianCopula(np.eye(len(marginals)))
    else:
        names = [m.name for m in marginals]
        listed = config.dependence.lead_lag_series
        adjusted = None if listed is None else [names.index(name) for name in listed if name in names]
        copula = fit_gaussian_copula(marginals, lags=config.dependence.lead_lag, adjusted=adjusted)
    return JointModel(marginals=marginals, copula=copula)
