"""The ``optimize`` section: objectives, constraints, solvers, frontiers and the honesty checks.

Every objective is measured on monthly scenarios of the optimiser's own
paths (see :mod:`mcalloc.optimize.scenarios`). Units: ``min_return`` is the
annualised arithmetic mean return (12 x the mean monthly simple return,
decimal), the return axis of every frontier; limits on CVaR and drawdowns
are positive fractions.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator

from mcalloc.config.base import Frozen, Identifier

__all__ = [
    "DEFAULT_FIT_PATHS",
    "FRONTIER_PATHS",
    "ConstraintsConfig",
    "FrontierConfig",
    "GroupBound",
    "MaxGrowthObjective",
    "MaxSharpeObjective",
    "MeanVarianceObjective",
    "MinCdarObjective",
    "MinCvarMaxDrawdownObjective",
    "MinCvarObjective",
    "MinVarianceObjective",
    "Objective",
    "OptimizeConfig",
    "ParametricScenarios",
    "PathScenarios",
    "RiskParityObjective",
    "TurnoverConfig",
]


DEFAULT_FIT_PATHS = 20_000


def _min_return(value: object) -> object:
    """A yearly return above -1 and below 10, or ``benchmark:NAME``; checked in one place, so that one message says
    which (a union of the two types told a wrong name by pydantic's label of the number type)."""
    if value is None:
        return value
    if isinstance(value, str) and re.fullmatch(r"benchmark:[a-z][a-z0-9_]*", value.strip()):
        return value.strip()
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a yearly return; give e.g. 0.06 (6% a year) or benchmark:NAME")
    try:  # any number type (numpy's, Decimal) or a number in quotes, as pydantic's float takes them
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"{value!r} is neither a number nor benchmark:NAME with NAME a benchmark's (lower-case) name "
            "from portfolio.benchmarks; e.g. 0.06 (6% a year) or benchmark:sp500_only"
        ) from None
    if not -1.0 < number < 10.0:
        raise ValueError(f"{value} is not a yearly return above -1 and below 10 (decimal: 0.06 is 6% a year)")
    return number


def _min_max(value: object) -> object:
    """A bound is two numbers, ``[min, max]``: a single number or a list of another length says so."""
    if isinstance(value, np.ndarray) and value.shape == (2,):  # from Python code
        return value.tolist()
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"a bound is [min, max], two weights, e.g. [0.0, 0.4] (got {value!r})")
    return value


MinReturn = Annotated[float | str | None, BeforeValidator(_min_return)]

Level = Annotated[float, Field(gt=0.5, lt=1.0)]


class _Objective(Frozen):
    name: Identifier | None = None
    min_return: MinReturn = None

    @property
    def default_label(self) -> str:
        raise NotImplementedError

    @property
    def label(self) -> str:
        return self.name or self.default_label

    @property
    def log_growth(self) -> bool:
        """Whether it works on log growth (``max_growth``, a compounded ``min_cvar``), which a short position can
        make undefined (a path that loses everything)."""
        return getattr(self, "kind", "") == "max_growth" or getattr(self, "form", "") == "compounded"

    @property
    def needs_long_only(self) -> bool:
        """Whether the schema allows it only under ``long_only``: log growth, and ``risk_parity``."""
        return self.log_growth or getattr(self, "kind", "") == "risk_parity"


def _level(prefix: str, alpha: float) -> str:
    return prefix + f"{alpha * 100:g}".replace(".", "_")


class MinVarianceObjective(_Objective):
    """Minimise the volatility (pooled monthly returns, annualised) s.t. an optional return floor."""

    kind: Literal["min_variance"]

    @property
    def default_label(self) -> str:
        return "min_variance"


class MeanVarianceObjective(_Objective):
    """Maximise ``mean - risk_aversion / 2 x variance`` (both annualised)."""

    kind: Literal["mean_variance"]
    risk_aversion: Annotated[float, Field(gt=0.0, le=1000.0)] = 3.0

    @property
    def default_label(self) -> str:
        return f"mean_variance_{self.risk_aversion:g}".replace(".", "_")


class MaxSharpeObjective(_Objective):
    """Maximise ``(mean - risk_free) / volatility``; ``risk_free`` defaults to ``portfolio.risk_free``."""

    kind: Literal["max_sharpe"]
    risk_free: Annotated[float, Field(gt=-0.5, lt=0.5)] | None = None

    @property
    def default_label(self) -> str:
        return "max_sharpe"


class RiskParityObjective(_Objective):
    """Equal (or ``budgets``) shares of volatility per asset; long-only."""

    kind: Literal["risk_parity"]
    budgets: dict[str, Annotated[float, Field(gt=0.0)]] | None = None

    @property
    def default_label(self) -> str:
        return "risk_parity"


class MinCvarObjective(_Objective):
    """Minimise CVaR at ``alpha`` of the horizon loss.

    ``compounded`` (default): the loss is minus the horizon log growth of a
    mix rebalanced at every ``portfolio.rebalance`` date (convex, solved by
    successive linear programs). ``uncompounded``: minus the sum of the
    period returns, as single-path optimisers define it (one linear program).
    """

    kind: Literal["min_cvar"]
    alpha: Level = 0.95
    form: Literal["compounded", "uncompounded"] = "compounded"

    @property
    def default_label(self) -> str:
        base = _level("min_cvar_", self.alpha)
        return base if self.form == "compounded" else base + "_uncompounded"


class MinCdarObjective(_Objective):
    """Minimise CDaR at ``alpha`` of month-end drawdowns pooled over paths and months (uncompounded form)."""

    kind: Literal["min_cdar"]
    alpha: Level = 0.95

    @property
    def default_label(self) -> str:
        return _level("min_cdar_", self.alpha)


class MinCvarMaxDrawdownObjective(_Objective):
    """Minimise CVaR at ``alpha`` of each path's maximum month-end drawdown (uncompounded form)."""

    kind: Literal["min_cvar_maxdd"]
    alpha: Level = 0.95

    @property
    def default_label(self) -> str:
        return _level("min_cvar_maxdd_", self.alpha)


class MaxGrowthObjective(_Objective):
    """Maximise expected log growth s.t. risk limits.

    ``cvar_limit``: CVaR at ``alpha`` of the horizon log loss; ``maxdd_limit``:
    CVaR at ``maxdd_alpha`` of the maximum month-end drawdown (uncompounded),
    which also holds the ``maxdd_alpha`` quantile (e.g. the P90) below it.
    Both measures can pass 1 (a log loss, a drawdown of summed returns): an
    all-equity mix over ten years has an uncompounded drawdown CVaR near 1.2.
    """

    kind: Literal["max_growth"]
    alpha: Level = 0.95
    cvar_limit: Annotated[float, Field(gt=0.0, le=10.0)] | None = None
    maxdd_alpha: Level = 0.9
    maxdd_limit: Annotated[float, Field(gt=0.0, le=10.0)] | None = None

    @property
    def default_label(self) -> str:
        return "max_growth"


Objective = Annotated[
    MinVarianceObjective
    | MeanVarianceObjective
    | MaxSharpeObjective
    | RiskParityObjective
    | MinCvarObjective
    | MinCdarObjective
    | MinCvarMaxDrawdownObjective
    | MaxGrowthObjective,
    Field(discriminator="kind"),
]


class GroupBound(Frozen):
    """The summed weight of ``assets`` stays within ``[min, max]``."""

    assets: list[str] = Field(min_length=1)
    min: float = 0.0
    max: float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> GroupBound:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        twice = sorted({name for name in self.assets if self.assets.count(name) > 1})
        if twice:
            raise ValueError(f"assets: {twice[0]} is listed more than once; list each asset once")
        return self


class TurnoverConfig(Frozen):
    """One-way turnover ``sum |w - current| / 2`` against the weights held now stays at most ``max``."""

    current: dict[str, float]
    max: Annotated[float, Field(ge=0.0, le=1.0)]


class ConstraintsConfig(Frozen):
    """Weight constraints; ``bounds`` maps an asset to ``[min, max]`` (decimals)."""

    long_only: bool = True
    bounds: dict[str, Annotated[tuple[float, float], BeforeValidator(_min_max)]] = Field(default_factory=dict)
    groups: dict[Identifier, GroupBound] = Field(default_factory=dict)
    turnover: TurnoverConfig | None = None
    max_assets: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ConstraintsConfig:
        for asset, (low, high) in self.bounds.items():
            if not (low == low and high == high):  # NaN
                raise ValueError(f"bounds.{asset}: bounds must be numbers, not NaN")
            if low > high:
                raise ValueError(f"bounds.{asset}: min {low} is above max {high}")
            if self.long_only and high < 0:
                raise ValueError(f"bounds.{asset}: max {high} is negative but long_only is true")
            if self.long_only and low < 0:
                raise ValueError(f"bounds.{asset}: min {low} is negative but long_only is true; set long_only: false")
        return self

    def weight_bounds(self, asset_names: list[str]) -> tuple[list[float], list[float]]:
        """Lower and upper weight per asset; unlisted assets get [0, 1] long-only, else [-1, 2]."""
        default = (0.0, 1.0) if self.long_only else (-1.0, 2.0)
        lows, highs = [], []
        for asset in asset_names:
            low, high = self.bounds.get(asset, default)
            lows.append(low)
            highs.append(high)
        return lows, highs


RiskMeasure = Literal["volatility", "cvar", "cdar", "maxdd"]
RISK_MEASURES: tuple[RiskMeasure, ...] = ("volatility", "cvar", "cdar", "maxdd")


FRONTIER_PATHS = 2_000
"""Paths the frontiers are solved and measured on: the first of the optimiser's paths (a random sample of them)."""


class FrontierConfig(Frozen):
    """``frontier.csv``: ``points`` portfolios per risk measure, from the least risky to the highest return.

    Solved and measured on the first ``FRONTIER_PATHS`` of the optimiser's paths.

    ``diversification`` also draws each frontier for the reference asset
    alone, with each other asset added, and with all of them.
    """

    points: Annotated[int, Field(ge=0, le=200)] = 12
    measures: list[RiskMeasure] = Field(default_factory=lambda: list(RISK_MEASURES))
    diversification: bool = True

    @field_validator("measures")
    @classmethod
    def _each_once(cls, measures: list[str]) -> list[str]:
        twice = next((measure for number, measure in enumerate(measures) if measure in measures[:number]), None)
        if twice is not None:  # its frontier would be solved twice and every row of it written twice
            raise ValueError(f"lists {twice} twice; list each measure once")
        return measures


class PathScenarios(Frozen):
    """The default: monthly scenarios from the optimiser's own simulated paths."""

    kind: Literal["paths"] = "paths"


class ParametricScenarios(Frozen):
    """Single-period scenarios drawn from a given law, e.g. to reproduce a published example.

    ``mean`` (asset -> mean simple return per period) and ``covariance``
    (rows and columns in the order of ``assets``) describe one period of
    ``1 / periods_per_year`` of a year; ``dist: t`` needs ``nu > 2`` and is
    scaled to that covariance. The portfolios are still judged on the model's
    paths.
    """

    kind: Literal["parametric"]
    dist: Literal["normal", "t"] = "normal"
    nu: Annotated[float, Field(gt=2.0, le=1000.0)] | None = None
    mean: dict[str, float]
    covariance: list[list[float]]
    n: Annotated[int, Field(ge=100, le=5_000_000)] = 100_000
    periods_per_year: Annotated[float, Field(gt=0.0, le=366.0)] = 12.0

    @model_validator(mode="after")
    def _law(self) -> ParametricScenarios:
        if self.dist == "t" and self.nu is None:
            raise ValueError("nu: dist t needs degrees of freedom nu > 2")
        if self.dist == "normal" and self.nu is not None:
            raise ValueError("nu: only used with dist: t (the normal law has no degrees of freedom); remove it")
        size = len(self.covariance)
        if any(len(row) != size for row in self.covariance):
            raise ValueError("covariance: must be square")
        matrix = np.array(self.covariance, dtype=float)
        if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T, atol=1e-12):
            raise ValueError("covariance: must be finite and symmetric")
        if size and np.linalg.eigvalsh(matrix)[0] <= 0:
            raise ValueError("covariance: must be positive definite")
        return self


ScenarioSource = Annotated[PathScenarios | ParametricScenarios, Field(discriminator="kind")]


class OptimizeConfig(Frozen):
    """What to optimise, within which constraints, on how many paths, with which solvers.

    The optimiser's scenarios come from ``n_paths`` paths simulated apart from
    the ``simulation.n_paths`` paths every portfolio is then judged on (their
    own seed stream), so optimised weights are scored on futures they never
    saw. Unset: as many as ``simulation.n_paths``, at most 20,000. Drawdown
    objectives use at most ``max_path_scenarios`` of them (a random subset;
    ``stability.csv`` shows how much the weights move between subsets).
    ``batches`` independent parts of the paths are each solved again for
    ``stability.csv``. ``grid_step`` (up to 4 assets) evaluates every mix on
    a simplex grid with the same measure, the cross-check of every solution;
    at least 0.02 (23,426 mixes of 4 assets; the count grows as
    ``step ** -(n_assets - 1)``).
    """

    objectives: list[Objective] = Field(default_factory=list)
    constraints: ConstraintsConfig = ConstraintsConfig()
    n_paths: Annotated[int, Field(gt=1, le=1_000_000)] | None = None
    max_path_scenarios: Annotated[int, Field(ge=100, le=200_000)] = 5_000
    batches: Annotated[int, Field(ge=0, le=50)] = 5
    grid_step: Annotated[float, Field(ge=0.02, le=0.5)] | None = 0.1
    solver: Literal["CLARABEL", "SCS", "OSQP", "HIGHS"] = "CLARABEL"
    lp_solver: Literal["HIGHS", "CLARABEL", "SCS"] = "HIGHS"
    fallback_solver: Literal["SCS", "CLARABEL", "HIGHS"] | None = "SCS"
    frontier: FrontierConfig = FrontierConfig()
    scenarios: ScenarioSource = PathScenarios()

    def fit_paths(self, simulated: int) -> int:
        """Paths the optimiser's scenarios come from, given ``simulation.n_paths``."""
        return self.n_paths if self.n_paths is not None else min(simulated, DEFAULT_FIT_PATHS)
