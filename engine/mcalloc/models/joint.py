"""The joint model: one volatility model per series, a dependence model, optionally a market factor.

Per simulated day: the dependence model draws one vector of unit-variance
shocks (a copula's scores mapped to each series' law, or a resampled day of
residuals); each series' volatility model scales its shock; a market factor,
when there is one, adds each series' loading times the market's return. The
plain baselines (``iid_normal``, ``iid_t``, ``bootstrap_returns``) draw
returns directly instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.config.model_schema import StartConfig
from mcalloc.errors import ModelError
from mcalloc.models.bootstrap import IidReturns, ResidualBootstrap, ReturnBootstrap
from mcalloc.models.copulas import DccCopula, TCopula
from mcalloc.models.dependence import GaussianCopula, ScoreTransform
from mcalloc.models.factor import FactorStructure
from mcalloc.models.marginals import FittedMarginal
from mcalloc.models.recursions import RecursionPlan, SimulationState

if TYPE_CHECKING:
    # pandas, the data layer and arch's fitting are imported where a model is fitted or read: simulation
    # workers unpickle JointModel without them (tests/test_worker_imports.py holds them to that)
    import pandas as pd


__all__ = ["Dependence", "JointModel", "model_series"]

Dependence = GaussianCopula | TCopula | DccCopula | ResidualBootstrap

PERSISTENCE_WARNING = 0.999
"""Above this GARCH persistence (a half-life of about 700 steps) a run warns."""
Baseline = IidReturns | ReturnBootstrap


@dataclass(frozen=True)
class JointModel:
    """Fitted marginals (in column order), their dependence and an optional market factor.

    ``start`` chooses each path's first conditional variance (see
    :class:`~mcalloc.config.model_schema.StartConfig`); ``steps_per_year``
    converts ``start.vol_ann`` to a per-step variance. ``stressed_date`` is
    the data's most stressed day (``start.kind: stressed``), when fitted;
    ``fit_index`` the dates of the fitted residuals and conditional variances;
    ``variance_ceiling`` caps each series' simulated variance at that multiple
    of its largest fitted variance (``max_variance``). ``mean_years``, when
    set, makes the series' means uncertain: each path draws its own offset to
    them, with the sampling covariance of means estimated from that many
    years of returns (:meth:`drift_covariance`); ``mean_covariance`` is the
    returns' long-run covariance per step (percent squared) it is taken
    from, the data's when fitted, else the model's.
    """

    marginals: tuple[FittedMarginal, ...]
    dependence: Dependence
    start: StartConfig = field(default_factory=StartConfig)
    steps_per_year: int = 252
    factor: FactorStructure | None = None
    baseline: Baseline | None = None
    stressed_date: str | None = None
    notes: tuple[str, ...] = ()
    fit_index: pd.Index | None = field(default=None, repr=False, compare=False)
    variance_ceiling: float | None = None
    regime_statistics: dict[str, float] = field(default_factory=dict, compare=False)
    mean_years: float | None = None
    mean_covariance: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.dependence, ResidualBootstrap) and not self.dependence.marginals:
            object.__setattr__(self, "dependence", replace(self.dependence, marginals=self.marginals))
        if self.mean_years is not None:
            self._drift_root  # noqa: B018 -- refuse a covariance that cannot be drawn from when built, not mid-run

    @property
    def _transforms(self) -> list[ScoreTransform]:
        """How the dependence model's scores become each series' shocks (copulas only)."""
        return [] if isinstance(self.dependence, ResidualBootstrap) else self.dependence.transforms

    @property
    def copula(self) -> Dependence:
        """The dependence model (kept under its old name for callers that read its correlation)."""
        return self.dependence

    @property
    def asset_names(self) -> list[str]:
        return [m.name for m in self.marginals]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every warning met while fitting, in column order, and moment warnings."""
        notes = [note for m in self.marginals for note in m.warnings]
        notes += list(self.notes)
        if self.baseline is None:
            for m in self.marginals:
                nu = m.params.get("nu")
                if m.dist != "normal" and nu is not None and nu <= 4.0:
                    notes.append(
                        f"{m.name} ({m.label}): nu = {nu:.3g} <= 4, so its shocks have no finite kurtosis: "
                        "extreme days dominate sample variances and drawdown tails"
                    )
                if m.kind != "egarch" and PERSISTENCE_WARNING < m.persistence < 1.0:
                    notes.append(
                        f"{m.name} ({m.label}): persistence {m.persistence:.5f}: a volatility shock takes "
                        f"{m.half_life / self.steps_per_year:.1f} years to halve, so paths hinge on the start"
                    )
                factor = m.fourth_moment_factor
                if not factor < 1.0 and not math.isnan(factor):
                    notes.append(
                        f"{m.name} ({m.label}): E[(beta + (alpha + gamma 1(z<0)) z^2)^2] = {factor:.3f} >= 1, so its "
                        "returns have no finite fourth moment: sample variances across paths settle slowly and "
                        "variance-based results (min_variance weights) wander with n_paths"
                    )
        return tuple(notes)

    def selection_records(self) -> list[dict[str, object]]:
        """``kind: auto``'s candidate tables, one row per series and candidate."""
        return [row.record(m.name) for m in self.marginals for row in m.candidates]

    def dependence_records(self) -> list[dict[str, object]]:
        """Rows of ``dependence.csv``: the dependence (or baseline) model's parameters, series named."""
        source = self.baseline if self.baseline is not None else self.dependence
        names = self.asset_names
        rows = []
        for row in source.records():
            series = str(row["series"])
            if "|" in series and all(part.isdigit() for part in series.split("|")):
                first, second = (int(part) for part in series.split("|"))
                row = {**row, "series": f"{names[first]}|{names[second]}"}
            rows.append(row)
        if self.factor is not None:
            for index, name in enumerate(names):
                if index != self.factor.market:
                    rows += [
                        {"kind": "factor", "parameter": f"loading_lag{lag}", "series": name, "value": float(value)}
                        for lag, value in enumerate(self.factor.loadings[index])
                    ]
            rows += self._regime_records()
        return rows

    def _regime_records(self) -> list[dict[str, object]]:
        factor = self.factor
        if factor is None or factor.switching is None:
            return []
        assert factor.regime_loadings is not None and factor.transition is not None
        name = self.asset_names[factor.switching]
        rows: list[dict[str, object]] = []
        for regime, loadings in enumerate(factor.regime_loadings):
            rows += [
                {"kind": "factor", "parameter": f"regime{regime}_loading_lag{lag}", "series": name, "value": float(v)}
                for lag, v in enumerate(loadings)
            ]
        for regime, share in enumerate(factor.stationary()):
            stay = float(factor.transition[regime, regime])
            rows.append({"kind": "factor", "parameter": f"regime{regime}_stay", "series": name, "value": stay})
            rows.append({"kind": "factor", "parameter": f"regime{regime}_share", "series": name, "value": float(share)})
        for key, value in self.regime_statistics.items():
            rows.append({"kind": "factor", "parameter": key, "series": name, "value": value})
        return rows

    def starting_at(self, start: StartConfig, steps_per_year: int) -> JointModel:
        """This model with another starting state; checks that every series can start there.

        Raises
        ------
        ModelError
            If a series lacks what the start needs (e.g. ``last_variance``).
        """
        model = replace(self, start=start, steps_per_year=steps_per_year)
        if model.baseline is None:
            model.start_levels()
        return model

    def start_levels(self) -> tuple[np.ndarray, np.ndarray]:
        """Starting variance (percent squared) and previous return (percent), each of shape (n_assets,)."""
        return self._start_levels

    @cached_property
    def _start_levels(self) -> tuple[np.ndarray, np.ndarray]:
        levels = [m.start_state(self.start, self.steps_per_year) for m in self.marginals]
        # the recursion caps every simulated day's variance at the ceiling: the first day too (a vol start of
        # 60% a year puts an own part with a ceiling of 55% at 55%; a last start after a shock can exceed a
        # ceiling of 1 or 2 times the largest fitted variance)
        variance = np.minimum(np.array([v for v, _ in levels]), self._plan.ceiling)
        return variance, np.array([r for _, r in levels])

    def initial_state(self, n_paths: int, rng: np.random.Generator | None = None) -> SimulationState:
        """A fresh state for ``n_paths`` paths, each at the starting levels.

        With uncertain means (``mean_years``) each path's offset to them is
        drawn from ``rng``, which is then required: the caller chooses the
        stream, so that the shocks drawn later do not depend on it.
        """
        drift = None
        if self.mean_years is not None:
            if rng is None:
                raise ValueError("uncertain means need a generator to draw each path's drift from")
            drift = self.draw_drift(rng, n_paths)
        if self.baseline is not None:
            n = len(self.marginals)
            return SimulationState(
                variance=np.ones((n_paths, n)),
                last_return=np.zeros((n_paths, n)),
                dependence=self.baseline.initial_state(n_paths, self.start.kind),
                drift=drift,
            )
        variance, last_return = self._start_levels
        history = None
        if self.factor is not None:
            # the lagged loadings' first days: the market's starting return (its last fitted day's under
            # start: last where the parameters keep it, its mean otherwise), its mean on the days before
            market = self.marginals[self.factor.market]
            history = self.factor.initial_history(
                n_paths, last_return[self.factor.market] / market.scale, market.unconditional_mean / market.scale
            )
        return SimulationState(
            variance=np.tile(variance, (n_paths, 1)),
            last_return=np.tile(last_return, (n_paths, 1)),
            dependence=self.dependence.initial_state(n_paths, self.start.kind),
            market_history=history,
            regime=self.factor.initial_regime(n_paths) if self.factor is not None else None,
            drift=drift,
        )

    def drift_covariance(self) -> np.ndarray:
        """Covariance of the paths' offsets to the mean log return per step (decimal), (n_series, n_series).

        The sampling covariance of means estimated from ``mean_years`` years
        of returns: the covariance of sums of returns per step
        (:meth:`mean_sampling_covariance`) over the number of steps in that
        many years; with a flat prior, also the posterior covariance of the
        means.
        """
        if self.mean_years is None:
            raise ValueError("the means are known: mean_years is not set")
        return self.mean_sampling_covariance() / 1e4 / (self.mean_years * self.steps_per_year)

    def mean_sampling_covariance(self) -> np.ndarray:
        """Covariance per step of long sums of returns (percent squared), (n_series, n_series).

        ``mean_covariance`` when given (a fit's Newey-West estimate on its
        data); otherwise the model's own: each series' long-run variance
        (over ``(1 - phi)^2`` for AR(1) means) joined by the dependence, a
        market factor's loadings summed over their lags.
        """
        if self.mean_covariance is not None:
            return self.mean_covariance
        if self.baseline is not None:
            return self.long_run_covariance()
        persistence = np.array([1.0 - m.params.get("phi", 0.0) for m in self.marginals])
        variances = np.array([m.unconditional_variance for m in self.marginals]) / persistence**2
        correlation = self.dependence.correlation
        if self.factor is None:
            scale = np.sqrt(variances)
            return np.asarray(correlation * np.outer(scale, scale))
        return self.factor.covariance(variances, correlation, of_sums=True)

    @cached_property
    def _drift_root(self) -> np.ndarray:
        """Cholesky factor of the covariance of sums (decimal) per step of evidence, checked."""
        with np.errstate(invalid="ignore"):
            covariance = self.mean_sampling_covariance() / 1e4
        names = self.asset_names
        for index, variance in enumerate(np.diag(covariance)):
            if not np.isfinite(variance):
                raise ModelError(
                    f"model.mean_uncertainty: {names[index]}'s long-run variance is infinite, so the "
                    "sampling error of its mean is too; set model.mean_uncertainty to null (the means taken as "
                    "known) or choose a model whose variance is finite"
                )
        try:
            return np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            raise ModelError(
                "model.mean_uncertainty: the model's long-run covariance is not positive definite, so no offsets "
                "to the means can be drawn from it; check the correlation and loadings, or remove mean_uncertainty"
            ) from None

    def draw_drift(self, rng: np.random.Generator, n_paths: int) -> np.ndarray:
        """Each path's offset to every series' mean log return per step (decimal), (n_paths, n_series)."""
        if self.mean_years is None:
            raise ValueError("the means are known: mean_years is not set")
        scale = 1.0 / math.sqrt(self.mean_years * self.steps_per_year)
        draws = rng.standard_normal((n_paths, len(self.marginals)))
        return np.asarray(draws @ (self._drift_root.T * scale))

    def initial_variance(self, n_paths: int) -> np.ndarray:
        """Starting conditional variances, shape (n_paths, n_assets), percent squared."""
        if self.baseline is not None:
            return np.ones((n_paths, len(self.marginals)))
        return np.tile(self._start_levels[0], (n_paths, 1))

    def simulate_block(
        self, rng: np.random.Generator, state: SimulationState, n_steps: int, compiled: bool = True
    ) -> np.ndarray:
        """Simulate ``n_steps`` days continuing from ``state`` (updated in place).

        Returns daily log returns (decimal) of shape (n_paths, n_steps, n_assets).
        ``compiled=False`` runs the volatility recursions in numpy, the
        reference the compiled kernel is tested against.
        """
        returns = self._simulate_block(rng, state, n_steps, compiled)
        if state.drift is not None:
            days = returns.transpose(1, 2, 0)
            if days.flags.c_contiguous:
                # the compiled path's returns are a view of day-major arrays: add along the paths, in memory order
                days += np.ascontiguousarray(state.drift.T)
            else:
                returns += state.drift[:, None, :]
        return returns

    def _simulate_block(
        self, rng: np.random.Generator, state: SimulationState, n_steps: int, compiled: bool
    ) -> np.ndarray:
        """:meth:`simulate_block` with the means known."""
        n_paths = state.variance.shape[0]
        if self.baseline is not None:
            return self.baseline.sample_returns(rng, n_paths, n_steps, state.dependence)
        sample_days = getattr(self.dependence, "sample_days", None)
        if compiled and sample_days is not None:
            days = state.scratch("days", (n_steps, len(self.marginals), n_paths))
            returns = self._plan.run_days(sample_days(rng, n_paths, n_steps, days, state.dependence), state)
        else:
            innovations = self.dependence.sample_innovations(rng, n_paths, n_steps, None, state.dependence)
            if compiled:
                returns = self._plan.simulate_compiled(innovations, state)
            else:
                returns = self._plan.simulate(innovations, state)
        if self.factor is not None:
            assert state.market_history is not None
            regimes = None
            if self.factor.switching is not None:
                assert state.regime is not None
                regimes = self.factor.regime_path(rng.random((n_steps + 1, n_paths)), state.regime)
            days = returns.transpose(1, 2, 0)
            if compiled and days.flags.c_contiguous:
                self.factor.apply_days(days, state.market_history, regimes)
            else:
                self.factor.apply(returns, state.market_history, regimes)
        return returns

    def simulate(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """Daily log returns (decimal) of shape (n_paths, n_steps, n_assets), in one block.

        Uncertain means are drawn from ``rng`` too, first: a convenience for
        tests and scripts; runs draw them from a stream of their own.
        """
        return self.simulate_block(rng, self.initial_state(n_paths, rng), n_steps)

    def mean_log_returns(self) -> np.ndarray:
        """Long-run mean of each series' daily (per step) log return, decimal, shape (n_series,).

        A series that loads on the market factor adds its loadings (summed
        over lags; the regimes' mean for a switching series) times the
        market's mean.
        """
        if isinstance(self.baseline, IidReturns):
            return np.asarray(self.baseline.mean, dtype=float)
        if isinstance(self.baseline, ReturnBootstrap):
            return np.asarray(self.baseline.returns.mean(axis=0), dtype=float)
        means = np.array([m.unconditional_mean / m.scale for m in self.marginals])
        if self.factor is not None:
            market = means[self.factor.market]
            means = means + self.factor.loadings.sum(axis=1) * market
        return means

    def long_run_covariance(self) -> np.ndarray:
        """Long-run covariance of daily log returns (percent squared), (n_assets, n_assets); inf if a variance is."""
        if isinstance(self.baseline, IidReturns):
            return np.asarray(self.baseline.covariance) * 1e4
        if isinstance(self.baseline, ReturnBootstrap):
            return np.atleast_2d(np.cov(self.baseline.returns, rowvar=False)) * 1e4
        variances = np.array([m.return_variance for m in self.marginals])
        correlation = self.dependence.correlation
        if self.factor is None:
            scale = np.sqrt(variances)
            return np.asarray(correlation * np.outer(scale, scale))
        return self.factor.covariance(variances, correlation)

    @cached_property
    def _plan(self) -> RecursionPlan:
        return RecursionPlan.from_marginals(self.marginals, self.variance_ceiling)


def model_series(model: JointModel, returns: np.ndarray) -> np.ndarray:
    """The series the volatility models describe, decimal, shape (n_obs, n_series).

    Without a market factor these are the returns themselves. With one, the
    market keeps its returns and every other series loses its (fixed)
    loadings times the market's same-day and lagged returns; rows before the
    longest lag are NaN. A switching loading is taken at its long-run mean.
    """
    values = np.asarray(returns, dtype=float)
    factor = model.factor
    if factor is None or model.baseline is not None:
        return values.copy()
    series = values.copy()
    market = values[:, factor.market]
    for lag in range(factor.n_lags + 1):
        lagged = np.full_like(market, np.nan)
        lagged[lag:] = market[: market.size - lag]
        for column in np.flatnonzero(factor.loadings[:, lag]):
            series[:, column] -= factor.loadings[column, lag] * lagged
    return series
