"""The scenario schema: a validated, immutable description of one run.

Units used throughout the schema:

* ``ter``, ``min_return`` and bounds are decimals (0.0009 is 9 basis points);
  ``ter`` and a numeric ``min_return`` are annual rates.
* Marginal model parameters are in arch's units: the model describes daily
  log returns multiplied by 100 (percent), so ``omega`` is in percent squared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AssetConfig",
    "ConstraintsConfig",
    "DataConfig",
    "DependenceConfig",
    "MarginalParams",
    "MarginalsConfig",
    "MinCvarObjective",
    "MinVarianceObjective",
    "ModelConfig",
    "Objective",
    "OptimizeConfig",
    "OutputConfig",
    "PortfolioConfig",
    "Scenario",
    "SimulationConfig",
]

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

MarginalKind = Literal["garch", "gjr_garch"]
Distribution = Literal["normal", "t"]
MeanKind = Literal["zero", "constant", "sample"]
RebalanceFrequency = Literal["daily", "monthly", "quarterly", "annual", "never"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AssetConfig(_Frozen):
    """One investable asset; ``ter`` is the annual total expense ratio (decimal)."""

    name: Identifier
    label: str | None = None
    ter: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0

    @property
    def display_name(self) -> str:
        return self.label or self.name


class DataConfig(_Frozen):
    """Where historical data for fitting comes from."""

    source: Literal["csv"] = "csv"
    paths: dict[str, Path]
    kind: Literal["prices", "returns"] = "prices"
    date_column: str = "Date"
    value_column: str | None = None
    start: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    end: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class MarginalParams(_Frozen):
    """Parameters of one asset's volatility model, in arch's percent units.

    ``mu`` is the daily mean of 100 x log returns, ``omega`` the variance
    intercept (percent squared), ``alpha``/``gamma``/``beta`` the ARCH,
    asymmetry and GARCH coefficients and ``nu`` the Student-t degrees of
    freedom (unused for normal innovations).
    """

    mu: float = 0.0
    omega: Annotated[float, Field(gt=0.0)]
    alpha: Annotated[float, Field(ge=0.0)]
    gamma: float = 0.0
    beta: Annotated[float, Field(ge=0.0)]
    nu: Annotated[float, Field(gt=2.0)] | None = None

    @model_validator(mode="after")
    def _stationary(self) -> MarginalParams:
        persistence = self.alpha + 0.5 * self.gamma + self.beta
        if persistence >= 1.0:
            raise ValueError(
                f"alpha + gamma/2 + beta = {persistence:.4f} must be below 1 for a "
                "stationary model; lower alpha, gamma or beta"
            )
        if self.alpha + self.gamma < 0:
            raise ValueError("alpha + gamma must be non-negative")
        return self


class MarginalsConfig(_Frozen):
    """The per-asset volatility model and, when calibrated, its parameters.

    ``mean``: ``constant`` estimates ``mu`` by maximum likelihood together
    with the volatility model; for equities this weights calm days more than
    turbulent falls and lands well above the historical mean return.
    ``sample`` fixes ``mu`` at the historical mean log return and fits the
    volatility model to the demeaned returns. ``zero`` sets ``mu = 0``.
    """

    kind: MarginalKind = "gjr_garch"
    dist: Distribution = "t"
    mean: MeanKind = "constant"
    params: dict[str, MarginalParams] | None = None


class DependenceConfig(_Frozen):
    """How assets move together: a Gaussian copula on the model's shocks."""

    kind: Literal["gaussian", "independent"] = "gaussian"
    correlation: list[list[float]] | None = None

    @model_validator(mode="after")
    def _valid_correlation(self) -> DependenceConfig:
        if self.correlation is None:
            return self
        n = len(self.correlation)
        if any(len(row) != n for row in self.correlation):
            raise ValueError(f"correlation: must be a square matrix ({n} rows of {n} numbers)")
        matrix = np.asarray(self.correlation, dtype=float)
        if not np.allclose(matrix, matrix.T, atol=1e-10):
            raise ValueError("correlation: must be symmetric")
        if not np.allclose(np.diag(matrix), 1.0, atol=1e-10):
            raise ValueError("correlation: must have ones on the diagonal")
        if np.any(np.abs(matrix) > 1.0):
            raise ValueError("correlation: entries must lie in [-1, 1]")
        smallest = float(np.linalg.eigvalsh(matrix).min())
        if smallest <= 1e-10:
            raise ValueError(
                f"correlation: not positive definite (smallest eigenvalue "
                f"{smallest:.3g}); use a consistent set of pairwise correlations"
            )
        return self


class ModelConfig(_Frozen):
    """Calibrated parameters from the config, or a fit to ``data``."""

    source: Literal["calibrated", "fit"] = "calibrated"
    marginals: MarginalsConfig = MarginalsConfig()
    dependence: DependenceConfig = DependenceConfig()


class SimulationConfig(_Frozen):
    """Size and layout of the Monte Carlo run.

    ``chunk_size`` fixes how paths are split into independently seeded chunks;
    together with the seed it fixes every number, whatever ``n_jobs`` is.
    """

    n_paths: Annotated[int, Field(gt=0, le=100_000_000)] = 10_000
    horizon_years: Annotated[int, Field(gt=0, le=100)] = 10
    steps_per_year: Annotated[int, Field(ge=12, le=366)] = 252
    chunk_size: Annotated[int, Field(gt=0, le=1_000_000)] = 1000
    n_jobs: int = -1

    @property
    def n_steps(self) -> int:
        return self.horizon_years * self.steps_per_year

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_paths / self.chunk_size)


class PortfolioConfig(_Frozen):
    """How portfolios are run: rebalancing, starting wealth and benchmark mixes."""

    rebalance: RebalanceFrequency = "monthly"
    initial_wealth: Annotated[float, Field(gt=0.0)] = 100_000.0
    benchmarks: dict[Identifier, dict[str, Annotated[float, Field(ge=0.0)]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> PortfolioConfig:
        for name, weights in self.benchmarks.items():
            total = sum(weights.values())
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"benchmarks.{name}: weights sum to {total:.6g}; they must sum to 1")
        return self


MinReturn = float | Annotated[str, Field(pattern=r"^benchmark:[a-z][a-z0-9_]*$")] | None


class MinCvarObjective(_Frozen):
    """Minimise CVaR of horizon returns at level ``alpha``.

    ``min_return`` is an annual rate (decimal) that the expected horizon
    return must reach, or ``benchmark:NAME`` for that benchmark's.
    """

    kind: Literal["min_cvar"]
    name: Identifier | None = None
    alpha: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    min_return: MinReturn = None

    @property
    def label(self) -> str:
        return self.name or f"min_cvar_{round(self.alpha * 100)}"


class MinVarianceObjective(_Frozen):
    """Minimise the variance of daily portfolio returns."""

    kind: Literal["min_variance"]
    name: Identifier | None = None
    min_return: MinReturn = None

    @property
    def label(self) -> str:
        return self.name or "min_variance"


Objective = Annotated[MinCvarObjective | MinVarianceObjective, Field(discriminator="kind")]


class ConstraintsConfig(_Frozen):
    """Weight constraints; ``bounds`` maps an asset to ``[min, max]`` (decimals)."""

    long_only: bool = True
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> ConstraintsConfig:
        for asset, (low, high) in self.bounds.items():
            if low > high:
                raise ValueError(f"bounds.{asset}: min {low} is above max {high}")
            if self.long_only and high < 0:
                raise ValueError(f"bounds.{asset}: max {high} is negative but long_only is true")
        return self

    def weight_bounds(self, asset_names: list[str]) -> tuple[list[float], list[float]]:
        """Lower and upper weight per asset; unlisted assets get [0, 1] long-only, else [-1, 2]."""
        default = (0.0, 1.0) if self.long_only else (-1.0, 2.0)
        lows, highs = [], []
        for asset in asset_names:
            low, high = self.bounds.get(asset, default)
            lows.append(max(low, 0.0) if self.long_only else low)
            highs.append(high)
        return lows, highs


class OptimizeConfig(_Frozen):
    objectives: list[Objective] = Field(default_factory=list)
    constraints: ConstraintsConfig = ConstraintsConfig()


class OutputConfig(_Frozen):
    dir: Path = Path("results")


class Scenario(_Frozen):
    """A complete, validated scenario. Build it with :func:`engine.config.load_scenario`."""

    name: Identifier
    description: str | None = None
    seed: Annotated[int, Field(ge=0)]
    assets: Annotated[list[AssetConfig], Field(min_length=1)]
    data: DataConfig | None = None
    model: ModelConfig = ModelConfig()
    simulation: SimulationConfig = SimulationConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    output: OutputConfig = OutputConfig()

    @property
    def asset_names(self) -> list[str]:
        return [asset.name for asset in self.assets]

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = self.asset_names
        if len(set(names)) != len(names):
            raise ValueError("assets: names must be unique")
        self._check_model(names)
        for name, weights in self.portfolio.benchmarks.items():
            for asset in weights:
                if asset not in names:
                    raise ValueError(
                        f"portfolio.benchmarks.{name}: unknown asset '{asset}' (assets are {', '.join(names)})"
                    )
        self._check_optimize(names)
        if not self.portfolio.benchmarks and not self.optimize.objectives:
            raise ValueError(
                "portfolio.benchmarks and optimize.objectives are both empty; add a benchmark mix or an objective"
            )
        return self

    def _check_model(self, names: list[str]) -> None:
        model = self.model
        if model.source == "fit":
            if self.data is None:
                raise ValueError("data: model.source is 'fit' but there is no data section to fit to")
            missing = [n for n in names if n not in self.data.paths]
            if missing:
                raise ValueError(f"data.paths: no file for asset(s) {', '.join(missing)}")
        else:
            params = model.marginals.params or {}
            missing = [n for n in names if n not in params]
            if missing:
                raise ValueError(
                    f"model.marginals.params: no parameters for asset(s) {', '.join(missing)} "
                    "(calibrated models need parameters for every asset, or set model.source: fit)"
                )
            if model.marginals.dist == "t" and any(params[n].nu is None for n in names):
                raise ValueError("model.marginals.params: Student-t innovations need 'nu' for every asset")
            if model.dependence.kind == "gaussian" and model.dependence.correlation is None:
                raise ValueError("model.dependence.correlation: required for a calibrated gaussian copula")
        corr = model.dependence.correlation
        if corr is not None and len(corr) != len(names):
            raise ValueError(
                f"model.dependence.correlation: is {len(corr)}x{len(corr)} but there are {len(names)} assets"
            )

    def _check_optimize(self, names: list[str]) -> None:
        constraints = self.optimize.constraints
        for asset in constraints.bounds:
            if asset not in names:
                raise ValueError(f"optimize.constraints.bounds: unknown asset '{asset}'")
        lows, highs = constraints.weight_bounds(names)
        if sum(lows) > 1.0 + 1e-12 or sum(highs) < 1.0 - 1e-12:
            raise ValueError(
                f"optimize.constraints.bounds: weights cannot sum to 1 (minimums add to "
                f"{sum(lows):.4g}, maximums to {sum(highs):.4g}); widen the bounds"
            )
        labels = [objective.label for objective in self.optimize.objectives]
        clashes = set(labels) & set(self.portfolio.benchmarks) | {x for x in labels if labels.count(x) > 1}
        if clashes:
            raise ValueError(
                f"optimize.objectives: portfolio name(s) {', '.join(sorted(clashes))} used twice; "
                "give each objective a distinct 'name'"
            )
        for objective in self.optimize.objectives:
            target = objective.min_return
            if isinstance(target, str) and target.removeprefix("benchmark:") not in self.portfolio.benchmarks:
                raise ValueError(
                    f"optimize.objectives: min_return '{target}' names no benchmark in portfolio.benchmarks"
                )
