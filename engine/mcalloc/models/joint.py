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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.config.model_schema import (
    BASELINE_KINDS,
    DependenceConfig,
    Distribution,
    MarginalsConfig,
    RegimeConfig,
    StartConfig,
    can_tie,
)
from mcalloc.config.schema import ModelConfig
from mcalloc.errors import DataError, ModelError
from mcalloc.models.bootstrap import MAX_STANDARDISED, IidReturns, ResidualBootstrap, ReturnBootstrap
from mcalloc.models.copulas import DccCopula, TCopula, fit_t_copula
from mcalloc.models.dcc import FittedDCC, fit_dcc
from mcalloc.models.dependence import (
    GaussianCopula,
    ScoreTransform,
    blend_correlation,
    joint_normal_scores,
    lead_lag_correlation,
)
from mcalloc.models.factor import FactorStructure, fit_factor, fit_regime_loadings
from mcalloc.models.innovations import InnovationLaw, ShockMoments
from mcalloc.models.marginals import FittedMarginal
from mcalloc.models.recursions import RecursionPlan, SimulationState, next_variance

if TYPE_CHECKING:
    # pandas, the data layer and arch's fitting are imported where a model is fitted or read: simulation
    # workers unpickle JointModel without them (tests/test_worker_imports.py holds them to that)
    import pandas as pd

    from mcalloc.data.market import MarketData
    from mcalloc.models.fitting import FitOptions

__all__ = ["Dependence", "JointModel", "fit_joint_model", "joint_model_from_config", "model_series", "read_residuals"]

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


def read_residuals(path: str, names: Sequence[str]) -> np.ndarray:
    """The standardised residuals a calibrated ``fhs`` model resamples, columns in ``names`` order.

    Raises
    ------
    DataError
        If the file is missing, unreadable, lacks a series' column or holds non-numbers.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: residual file not found (model.dependence.residuals); check the path") from None
    except UnicodeDecodeError:
        from pathlib import Path

        from mcalloc.data.files import first_non_utf8

        found = first_non_utf8(Path(path))
        where = f":{found[0]}: byte 0x{found[1]:02x}" if found else ": a byte"
        raise DataError(f"{path}{where} is not UTF-8; save the residual file as UTF-8") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read the residual file ({reason})") from None
    # pandas renames a second column of one name (sp500.1) and the first would be read without a word
    header = list(pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0])
    twice = sorted({name for name in header if header.count(name) > 1 and name in names})
    if twice:
        raise DataError(
            f"{path}:1: the column {twice[0]} appears {header.count(twice[0])} times in the header; "
            "keep one column per series"
        )
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no column for {', '.join(missing)} (model.dependence.residuals needs one column per series)"
        )
    values = frame[list(names)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise DataError(f"{path}:{row}: a residual is missing or not a number; fix or remove the row")
    numbers = np.asarray(values.to_numpy(dtype=float))
    # standardised residuals have unit variance: an infinite or enormous one is a broken file, and would
    # overflow the columns' scale and leave a series without shocks
    far = ~(np.abs(numbers) <= MAX_STANDARDISED)
    if far.any():
        row = int(np.flatnonzero(far.any(axis=1))[0])
        raise DataError(
            f"{path}:{row + 2}: a residual of {numbers[row][far[row]][0]:.6g}; standardised residuals lie within "
            f"+-{MAX_STANDARDISED:g}; fix or remove the row"
        )
    return numbers


def _correlation_dependence(
    dependence: DependenceConfig, correlation: np.ndarray, marginals: tuple[FittedMarginal, ...]
) -> GaussianCopula:
    return GaussianCopula(blend_correlation(correlation, dependence.stress.correlation_blend), marginals)


def _factor_from_config(config: ModelConfig, names: list[str]) -> FactorStructure | None:
    factor = config.factor
    if factor is None:
        return None
    loadings_config = factor.loadings or {}
    regimes = factor.regimes
    regime_loadings = np.array(regimes.loadings) if regimes is not None and regimes.loadings is not None else None
    n_lags = max((len(values) for values in loadings_config.values()), default=1) - 1
    if regime_loadings is not None:
        n_lags = max(n_lags, regime_loadings.shape[1] - 1)
    loadings = np.zeros((len(names), n_lags + 1))
    for name, values in loadings_config.items():
        loadings[names.index(name), : len(values)] = values
    if regimes is None or regime_loadings is None or regimes.transition is None:
        return FactorStructure(market=names.index(factor.market), loadings=loadings)
    padded = np.zeros((regime_loadings.shape[0], n_lags + 1))
    padded[:, : regime_loadings.shape[1]] = regime_loadings
    return _switching_structure(
        names.index(factor.market), loadings, names.index(regimes.series), padded, np.array(regimes.transition)
    )


def _switching_structure(
    market: int, loadings: np.ndarray, switching: int, regime_loadings: np.ndarray, transition: np.ndarray
) -> FactorStructure:
    """A factor whose column ``switching`` follows the regimes; its row of ``loadings`` becomes their mean."""
    structure = FactorStructure(
        market=market, loadings=loadings, switching=switching, regime_loadings=regime_loadings, transition=transition
    )
    mean = loadings.copy()
    mean[switching] = structure.stationary() @ regime_loadings
    return replace(structure, loadings=mean)


def joint_model_from_config(config: ModelConfig, asset_names: list[str]) -> JointModel:
    """Build the model from calibrated parameters held in the scenario.

    Raises
    ------
    ModelError
        If a series' parameters are incomplete or not stationary.
    DataError
        If an ``fhs`` residual file cannot be used.
    """
    marginals_config = config.marginals
    params = marginals_config.params or {}
    marginals: list[FittedMarginal] = []
    for name in asset_names:
        kind, dist, mean = marginals_config.model_of(name)
        if kind == "auto":
            raise ModelError(f"model.marginals.params.{name}.kind: required when marginals.kind is auto")
        marginals.append(FittedMarginal.from_params(name, kind, dist, mean, params[name]))
    dependence_config = config.dependence
    blend = dependence_config.stress.correlation_blend
    n = len(asset_names)
    correlation = np.asarray(dependence_config.correlation if dependence_config.correlation else np.eye(n))
    fixed = tuple(marginals)
    dependence: Dependence
    if dependence_config.kind == "fhs":
        assert dependence_config.residuals is not None
        raw = read_residuals(dependence_config.residuals, asset_names)
        bootstrap = ResidualBootstrap.from_residuals(
            raw,
            dependence_config.block_length,
            f"{dependence_config.residuals} (model.dependence.residuals)",
            names=asset_names,
        )
        fixed = _with_empirical_shocks(fixed, bootstrap)
        _check_stationary(fixed)
        dependence = bootstrap
    elif dependence_config.kind == "t":
        assert dependence_config.nu is not None
        dependence = TCopula(blend_correlation(correlation, blend), dependence_config.nu, fixed)
    elif dependence_config.kind == "dcc":
        assert dependence_config.dcc is not None
        dcc = FittedDCC.from_config(
            dependence_config.dcc.a,
            dependence_config.dcc.b,
            blend_correlation(correlation, blend),
            dependence_config.dcc.last_q,
        )
        dependence = DccCopula(dcc, fixed)
    elif dependence_config.kind == "independent":
        dependence = GaussianCopula(np.eye(n), fixed, kind="independent")
    else:
        dependence = _correlation_dependence(dependence_config, correlation, fixed)
    return JointModel(
        marginals=fixed,
        dependence=dependence,
        factor=_factor_from_config(config, asset_names),
        variance_ceiling=marginals_config.variance_ceiling,
        mean_years=_mean_years(config, None),
        mean_covariance=_given_mean_covariance(config, asset_names),
    )


def _given_mean_covariance(config: ModelConfig, names: list[str]) -> np.ndarray | None:
    """``mean_uncertainty.covariance`` with rows and columns in the order of ``names`` (its ``series`` name them)."""
    uncertainty = config.mean_uncertainty
    if uncertainty is None or uncertainty.covariance is None or uncertainty.series is None:
        return None
    order = [uncertainty.series.index(name) for name in names]
    return np.array(uncertainty.covariance, dtype=float)[np.ix_(order, order)]


def newey_west_covariance(returns: np.ndarray) -> np.ndarray:
    """Long-run covariance of the rows of ``returns`` (n_obs, n), per row: Newey and West (1987).

    The sample autocovariances up to lag ``L = floor(4 (n_obs / 100)^(2/9))``
    (Newey and West 1994's rule) added with Bartlett weights ``1 - l / (L + 1)``:
    what the variance of a long sum of the rows, divided by its length,
    converges to when they are autocorrelated or lead and lag each other
    (a close in Tokyo against one in New York).
    """
    values = np.asarray(returns, dtype=float)
    n_obs = values.shape[0]
    centred = values - values.mean(axis=0)
    covariance = centred.T @ centred / n_obs
    lags = int(4.0 * (n_obs / 100.0) ** (2.0 / 9.0))
    for lag in range(1, min(lags, n_obs - 1) + 1):
        autocovariance = centred[lag:].T @ centred[:-lag] / n_obs
        covariance += (1.0 - lag / (lags + 1.0)) * (autocovariance + autocovariance.T)
    return np.asarray(covariance)


def _mean_years(config: ModelConfig, index: pd.Index | None) -> float | None:
    """``model.mean_uncertainty.years`` as a number: ``data`` is the fitted sample's span in calendar years."""
    if config.mean_uncertainty is None:
        return None
    years = config.mean_uncertainty.years
    if years != "data":
        return float(years)
    if index is None or len(index) < 2:
        raise ModelError("model.mean_uncertainty.years: data needs fitted data; give a number of years")
    return _span_years(index)


def _span_years(index: pd.Index) -> float:
    """The calendar years a sample of returns dated ``index`` covers."""
    span = (index[-1] - index[0]).days / 365.25
    # the dates are the first and last return's: one step more of evidence than their distance
    return float(span * len(index) / (len(index) - 1))


@dataclass(frozen=True)
class _FittedUncertainty:
    """A fitted model's ``mean_years`` and ``mean_covariance`` (the data's), and a note if ``years`` is far off."""

    years: float | None = None
    covariance: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: ModelConfig, returns: pd.DataFrame) -> _FittedUncertainty:
        years = _mean_years(config, returns.index)
        if years is None:
            return cls()
        span = _span_years(returns.index)
        notes: tuple[str, ...] = ()
        if abs(years / span - 1.0) > 0.1:
            notes = (
                f"model.mean_uncertainty.years is {years:g}, but the means were fitted to {span:.1f} years of "
                "data; years: data takes the data's span",
            )
        return cls(years, newey_west_covariance(returns.to_numpy(dtype=float)) * 1e4, notes)


def _with_empirical_shocks(
    marginals: tuple[FittedMarginal, ...], bootstrap: ResidualBootstrap
) -> tuple[FittedMarginal, ...]:
    return tuple(replace(m, empirical_shocks=bootstrap.column(index)) for index, m in enumerate(marginals))


def _check_stationary(marginals: Sequence[FittedMarginal], limit: float | None = None) -> None:
    """Refuse a persistence, with the resampled residuals' skew, of 1 or more; or of ``limit`` (a fit's
    ``max_persistence``) or more, the same limit the fit applied to the normal law's persistence."""
    for m in marginals:
        if m.kind == "egarch":
            continue
        if not m.persistence < 1.0:
            fitted = limit is not None
            if not fitted:  # parameters given in the file: they are what to change
                remedy = "lower alpha, gamma or beta there, or calibrate the file again from its data"
            elif m.dist == "normal":
                remedy = "try a longer data window (the residuals' skew is what tips it) or another model"
            else:
                remedy = "fit with dist: normal (quasi-ML), which filtered historical simulation assumes"
            where = f"model.marginals (the fitted {m.name})" if fitted else f"model.marginals.params.{m.name}"
            raise ModelError(
                f"{where}: persistence {m.persistence:.4f} with the resampled residuals' "
                f"skew (E[z^2 1(z<0)] = {m.shock_moments.negative_second:.3f}) is not below 1; {remedy}"
            )
        if limit is not None and not m.persistence < limit:
            raise ModelError(
                f"{m.name}: the fitted {m.label} model has persistence {m.persistence:.5f} with the resampled "
                f"residuals' skew (E[z^2 1(z<0)] = {m.shock_moments.negative_second:.3f}), not below "
                f"model.marginals.max_persistence {limit:g}; raise the limit, or try a longer data window or "
                "another model"
            )


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


def _variance_targeted(marginal: FittedMarginal, sample_variance: float) -> FittedMarginal:
    """``omega`` reset so that the returns' long-run variance equals ``sample_variance`` (percent squared).

    With an AR(1) mean the innovations' long-run variance is ``1 - phi^2``
    of the returns'.

    The fitted days' variances are those of the model with that ``omega``,
    run through the same residuals from the same first day's variance, so that
    the in-sample checks, a window's start and the ``last``, ``historical_max``
    and ``stressed`` starts are the simulated model's. The shocks stay the
    fit's standardised residuals, whose variance is one: rescaled by the new
    variances they would not be, and the long-run variance would miss its target.
    """
    if marginal.kind == "egarch" or not marginal.persistence < 1.0:
        return marginal
    innovations = sample_variance * (1.0 - marginal.params.get("phi", 0.0) ** 2)
    params = {**marginal.params, "omega": innovations * (1.0 - marginal.persistence)}
    fitted = marginal.conditional_variance
    if fitted.size == 0 or marginal.std_residuals.size != fitted.size:  # parameters given, not fitted
        return replace(marginal, params=params)
    residuals = marginal.std_residuals * np.sqrt(fitted)
    known = np.flatnonzero(np.isfinite(fitted))
    if known.size == 0:
        return replace(marginal, params=params)
    # rows an AR(1) or a factor's lags hold back have no variance; the first that has one starts the recursion
    variance = np.full_like(fitted, np.nan)
    current = float(fitted[known[0]])
    for day in range(int(known[0]), fitted.size):
        variance[day] = current
        if math.isfinite(residuals[day]):
            current = next_variance(marginal.kind, params, float(residuals[day]), current)
    from mcalloc.models.fitting import law_loglikelihood

    diagnostics = marginal.diagnostics
    if diagnostics is not None:
        # what is printed beside the parameters is theirs: the likelihood at the reset omega (the free fit's
        # kept beside it), and no standard error for an omega set from the sample variance, not estimated
        diagnostics = replace(
            diagnostics,
            loglikelihood=law_loglikelihood(marginal.dist, params, residuals, variance),
            free_loglikelihood=diagnostics.loglikelihood,
            std_errors={**diagnostics.std_errors, "omega": math.nan},
        )
    return replace(
        marginal,
        params=params,
        conditional_variance=variance,
        last_variance=current,
        max_variance=float(np.nanmax(variance)),
        diagnostics=diagnostics,
    )


def _tied_fits(
    marginals: tuple[FittedMarginal, ...],
    series: pd.DataFrame,
    variances: Sequence[float],
    resampled: bool,
    config: MarginalsConfig,
    options: FitOptions | None,
) -> tuple[tuple[FittedMarginal, ...], tuple[bool, ...]]:
    """Each marginal refitted with its long-run variance tied to the sample's, where the tie applies.

    With ``resampled`` (filtered historical simulation) the tie's
    ``E[z^2 1(z<0)]`` is that of the residuals the simulation resamples:
    those of the rows complete in every series, centred and scaled as the
    bootstrap does. Otherwise it is the fitted law's. A marginal the tie does
    not apply to (EGARCH, an AR(1) mean, chosen by ``kind: auto``) is
    returned as it is, for ``omega`` to be reset, and a note says so. A tie
    that fails falls back as a failed fit does: to ``model.marginals.fallback``,
    itself tied where the tie applies to it.
    """
    from mcalloc.models.fitting import FitOptions, MarginalSpec, fit_fallback

    options = replace(options or FitOptions(), max_persistence=config.max_persistence)
    complete = np.all(np.isfinite(np.column_stack([m.std_residuals for m in marginals])), axis=1)

    def resampled_asymmetry(residuals: np.ndarray, _law: np.ndarray) -> float:
        rows = residuals[complete]
        return ShockMoments.of_sample((rows - rows.mean()) / rows.std()).negative_second

    def law_asymmetry(dist: Distribution) -> Callable[[np.ndarray, np.ndarray], float]:
        def asymmetry(_residuals: np.ndarray, law: np.ndarray) -> float:
            nu = float(law[0]) if law.size > 0 else None
            skew = float(law[1]) if law.size > 1 else None
            return InnovationLaw(dist, nu, skew).negative_second_moment()

        return asymmetry

    def tie(spec: MarginalSpec, free: FittedMarginal, variance: float, held: FitOptions) -> FittedMarginal:
        asymmetry = resampled_asymmetry if resampled else law_asymmetry(spec.dist)
        return spec.fit_targeted(series[free.name], free.name, variance, asymmetry, free, held, from_law=not resampled)

    results: list[FittedMarginal] = []
    done: list[bool] = []
    for m, variance in zip(marginals, variances, strict=True):
        if not can_tie(m.kind, m.mean):
            if m.kind != "egarch":  # fit_joint_model notes that an EGARCH is not targeted at all
                note = (
                    f"{m.name}: variance targeting inside the likelihood does not apply to {m.label}; omega was reset"
                )
                m = replace(m, warnings=(*m.warnings, note))
            results.append(m)
            done.append(False)
            continue
        # the rows the free fit held back (kind: auto with AR(1) candidates holds back one for every candidate)
        known = np.flatnonzero(np.isfinite(m.std_residuals))
        held = replace(options, hold_back=int(known[0]) if known.size else 0)
        tied = True
        try:
            fitted = tie(MarginalSpec(m.kind, m.dist, m.mean), m, variance, held)
        except ModelError as error:

            def tie_if_it_can(
                spec: MarginalSpec, free: FittedMarginal, variance: float = variance, held: FitOptions = held
            ) -> FittedMarginal:
                return tie(spec, free, variance, held) if can_tie(spec.kind, spec.mean) else free

            fitted, fallback = fit_fallback(series[m.name], m.name, config, held, error, tie_if_it_can)
            tied = can_tie(fallback.kind, fallback.mean)
        results.append(replace(fitted, candidates=m.candidates))
        done.append(tied)
    return tuple(results), tuple(done)


def _stress_level(marginals: Sequence[FittedMarginal]) -> np.ndarray:
    """Per fitted day, the mean over series of fitted variance / long-run variance, shape (n_obs,) (NaN if unknown)."""
    ratios = []
    for m in marginals:
        history = m.conditional_variance
        level = m.unconditional_variance
        ratios.append(history / (level if math.isfinite(level) else float(np.nanmean(history))))
    return np.asarray(np.column_stack(ratios).mean(axis=1))


def _stressed_days(marginals: Sequence[FittedMarginal], share: float) -> np.ndarray:
    """Boolean mask (n_obs,) of the ``share`` of fitted days with the highest stress level.

    The level is the fitted (predetermined) variance, not the day's own
    return: selecting days by their returns would bias the correlation
    measured on them (Boyer, Gibson and Loretan 1999).
    """
    level = _stress_level(marginals)
    cutoff = np.nanquantile(level, 1.0 - share)
    return np.asarray(np.nan_to_num(level, nan=-np.inf) >= cutoff)


def _stressed(marginals: tuple[FittedMarginal, ...], dates: pd.Index) -> tuple[tuple[FittedMarginal, ...], str | None]:
    """Each series' fitted variance on the day of the largest mean ratio of variance to its long-run level."""
    import pandas as pd

    histories = [m.conditional_variance for m in marginals]
    if any(h.size != dates.size for h in histories):
        return marginals, None
    mean_ratio = _stress_level(marginals)
    if not np.isfinite(mean_ratio).any():
        return marginals, None
    day = int(np.nanargmax(mean_ratio))
    stressed = tuple(replace(m, stressed_variance=float(h[day])) for m, h in zip(marginals, histories, strict=True))
    return stressed, str(pd.Timestamp(dates[day]).date())


def fit_joint_model(config: ModelConfig, data: MarketData, options: FitOptions | None = None) -> JointModel:
    """Fit the market factor (if any), each series' volatility model, then the dependence of their shocks."""
    from mcalloc.models.fitting import fit_series

    names = [str(name) for name in data.returns.columns]
    dependence_config = config.dependence
    listed = dependence_config.lead_lag_series
    lagged = [n for n in names if listed is None or n in listed]
    factor: FactorStructure | None = None
    series = data.returns
    regime_statistics: dict[str, float] = {}
    if config.factor is not None:
        lags = {name: dependence_config.lead_lag for name in lagged}
        factor, series = fit_factor(data.returns, config.factor.market, lags)
        if config.factor.regimes is not None:
            factor, series, regime_statistics = _fit_regimes(
                factor, series, data.returns, config.factor.regimes, lags.get(config.factor.regimes.series, 0)
            )
    marginals = tuple(fit_series(series[name], name, config.marginals, options) for name in names)
    sample_variances = [float(np.var(series[m.name].to_numpy() * m.scale)) for m in marginals]
    targeting = config.marginals.variance_targeting
    tied: tuple[bool, ...] = (False,) * len(marginals)
    if targeting == "likelihood" and dependence_config.kind not in BASELINE_KINDS:
        marginals, tied = _tied_fits(
            marginals, series, sample_variances, dependence_config.kind == "fhs", config.marginals, options
        )

    def targeted(fitted: tuple[FittedMarginal, ...]) -> tuple[FittedMarginal, ...]:
        """The marginals with variance targeting applied (``omega`` reset where not tied in the fit)."""
        if not targeting:
            return fitted
        return tuple(
            m if done else _variance_targeted(m, v) for m, v, done in zip(fitted, sample_variances, tied, strict=True)
        )

    if dependence_config.kind in BASELINE_KINDS:
        baseline: Baseline
        returns = data.returns.to_numpy(dtype=float)
        if dependence_config.kind == "bootstrap_returns":
            baseline = ReturnBootstrap(returns, max(dependence_config.block_length, 1.0))
        else:
            baseline = IidReturns.fit(returns, dependence_config.kind == "iid_t")
            stress = dependence_config.stress
            if stress.active:
                correlation = baseline.correlation
                if stress.worst_days is not None:
                    rows = _stressed_days(targeted(marginals), stress.worst_days)
                    correlation = np.atleast_2d(np.corrcoef(returns[rows], rowvar=False))
                correlation = blend_correlation(correlation, stress.correlation_blend)
                scale = np.sqrt(np.diag(baseline.covariance))
                baseline = replace(baseline, covariance=correlation * np.outer(scale, scale))
        placeholder = GaussianCopula(baseline.correlation, marginals)
        uncertainty = _FittedUncertainty.of(config, data.returns)
        return JointModel(
            marginals=marginals,
            dependence=placeholder,
            baseline=baseline,
            fit_index=series.index,
            notes=uncertainty.notes,
            mean_years=uncertainty.years,
            mean_covariance=uncertainty.covariance,
        )

    notes: list[str] = []
    dependence: Dependence
    scores = joint_normal_scores(marginals)
    blend = dependence_config.stress.correlation_blend
    if dependence_config.kind == "fhs":
        residuals = np.column_stack([m.std_residuals for m in marginals])
        bootstrap = ResidualBootstrap.from_residuals(
            residuals,
            dependence_config.block_length,
            "model.dependence (the fitted residuals)",
            "check the data for a broken price or a split (a fit's residuals come from the data section's files)",
            names=names,
        )
        marginals = _with_empirical_shocks(marginals, bootstrap)
        _check_stationary(marginals, config.marginals.max_persistence)
        dependence = bootstrap
    elif dependence_config.kind == "independent":
        dependence = GaussianCopula(np.eye(len(names)), marginals, kind="independent")
    else:
        # a correlation other than the plain estimate: the stressed days', or with lead-lag terms
        adjusted: np.ndarray | None = None
        if dependence_config.stress.worst_days is not None:
            # the days are chosen by the variances of the model that is simulated (the targeted one)
            rows = _stressed_days(targeted(marginals), dependence_config.stress.worst_days)
            adjusted = np.atleast_2d(np.corrcoef(joint_normal_scores(marginals, rows), rowvar=False))
        elif factor is None and dependence_config.lead_lag:
            columns = [names.index(name) for name in lagged]
            adjusted = lead_lag_correlation(scores, dependence_config.lead_lag, columns)
        if dependence_config.kind == "t":
            from scipy import special

            fitted = fit_t_copula(special.ndtr(scores), marginals, correlation=adjusted)
            dependence = replace(fitted, correlation=blend_correlation(fitted.correlation, blend))
        elif dependence_config.kind == "dcc":
            fitted_dcc = fit_dcc(scores)
            qbar = fitted_dcc.qbar if adjusted is None else adjusted
            dependence = DccCopula(replace(fitted_dcc, qbar=blend_correlation(qbar, blend)), marginals)
        else:
            correlation = np.atleast_2d(np.corrcoef(scores, rowvar=False)) if adjusted is None else adjusted
            dependence = GaussianCopula(blend_correlation(correlation, blend), marginals)
    if targeting:
        marginals = targeted(marginals)
        notes += [f"{m.name}: variance targeting not applied to {m.label}" for m in marginals if m.kind == "egarch"]
    marginals, stressed_date = _stressed(marginals, series.index)
    dependence = _rebind(dependence, marginals)
    uncertainty = _FittedUncertainty.of(config, data.returns)
    notes += uncertainty.notes
    return JointModel(
        marginals=marginals,
        dependence=dependence,
        factor=factor,
        stressed_date=stressed_date,
        notes=tuple(notes),
        fit_index=series.index,
        variance_ceiling=config.marginals.variance_ceiling,
        regime_statistics=regime_statistics,
        mean_years=uncertainty.years,
        mean_covariance=uncertainty.covariance,
    )


def _fit_regimes(
    factor: FactorStructure, series: pd.DataFrame, returns: pd.DataFrame, config: RegimeConfig, n_lags: int
) -> tuple[FactorStructure, pd.DataFrame, dict[str, float]]:
    """Switching loadings for ``config.series``; its idiosyncratic returns net of the expected loading each day."""
    names = [str(name) for name in returns.columns]
    column = names.index(config.series)
    skipped = returns.shape[0] - series.shape[0]
    market = returns.iloc[:, factor.market].to_numpy(dtype=float)
    n_obs = market.size
    regressors = np.column_stack([market[skipped - lag : n_obs - lag] for lag in range(n_lags + 1)])
    own = returns.iloc[skipped:, column].to_numpy(dtype=float)
    fitted = fit_regime_loadings(own, regressors, config.n_regimes, config.series)
    idiosyncratic = series.copy()
    part = own - np.einsum("tl,tl->t", fitted.expected_loadings(), regressors)
    regime_loadings = np.zeros((config.n_regimes, factor.n_lags + 1))
    regime_loadings[:, : n_lags + 1] = fitted.loadings
    structure = _switching_structure(factor.market, factor.loadings, column, regime_loadings, fitted.transition)
    # simulated, the regimes run independently of the market's returns, so the series' mean is its own part's
    # plus the regimes' long-run loading times the market's mean; in the data a regime came with its own
    # market returns (the dollar haven of 2008-13 with rising stocks), and the part net of each day's loading
    # would carry that covariance into the drift (USD/SEK: +0.06% a year simulated against -0.77% in the
    # data). The part is shifted so that the series keeps its sample mean, as a series with a constant
    # loading does.
    average = structure.stationary() @ fitted.loadings
    part += (np.nanmean(own) - np.nanmean(regressors, axis=0) @ average) - np.nanmean(part)
    idiosyncratic.iloc[:, column] = part
    statistics = {
        "regime_loglikelihood": fitted.loglikelihood,
        "regime_bic": fitted.bic,
        "constant_loading_bic": fitted.constant_bic,
    }
    return structure, idiosyncratic, statistics


def _rebind(dependence: Dependence, marginals: tuple[FittedMarginal, ...]) -> Dependence:
    """The dependence model mapping its scores to these (possibly adjusted) marginals."""
    if isinstance(dependence, ResidualBootstrap):
        return dependence
    return replace(dependence, marginals=marginals)
