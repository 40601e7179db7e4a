"""Fitting the joint model to data: the market factor, each series' volatility model, then the dependence.

Variance targeting (``omega`` reset after the fit, or tied inside the
likelihood), the stressed starting day and the uncertainty of the means
are settled here too; the fitted model is a :class:`mcalloc.models.joint.JointModel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.config.dependence_schema import RegimeConfig
from mcalloc.config.model_schema import BASELINE_KINDS, Distribution, MarginalsConfig, can_tie
from mcalloc.config.schema import ModelConfig
from mcalloc.errors import ModelError
from mcalloc.models.assembly import (
    check_stationary,
    mean_uncertainty_years,
    span_years,
    switching_structure,
    with_empirical_shocks,
)
from mcalloc.models.bootstrap import IidReturns, ResidualBootstrap, ReturnBootstrap
from mcalloc.models.copulas import DccCopula, fit_t_copula
from mcalloc.models.dcc import fit_dcc
from mcalloc.models.dependence import GaussianCopula, blend_correlation, joint_normal_scores, lead_lag_correlation
from mcalloc.models.factor import FactorStructure, fit_factor, fit_regime_loadings
from mcalloc.models.innovations import InnovationLaw, ShockMoments
from mcalloc.models.joint import Baseline, Dependence, JointModel
from mcalloc.models.marginals import FittedMarginal
from mcalloc.models.recursions import next_variance

if TYPE_CHECKING:
    # as in mcalloc.models.joint: pandas, the data layer and arch's fitting are imported where they are used
    import pandas as pd

    from mcalloc.data.market import MarketData
    from mcalloc.models.fitting import FitOptions


__all__ = ["fit_joint_model", "newey_west_covariance"]


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


@dataclass(frozen=True)
class _FittedUncertainty:
    """A fitted model's ``mean_years`` and ``mean_covariance`` (the data's), and a note if ``years`` is far off."""

    years: float | None = None
    covariance: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: ModelConfig, returns: pd.DataFrame) -> _FittedUncertainty:
        years = mean_uncertainty_years(config, returns.index)
        if years is None:
            return cls()
        span = span_years(returns.index)
        notes: tuple[str, ...] = ()
        if abs(years / span - 1.0) > 0.1:
            notes = (
                f"model.mean_uncertainty.years is {years:g}, but the means were fitted to {span:.1f} years of "
                "data; years: data takes the data's span",
            )
        return cls(years, newey_west_covariance(returns.to_numpy(dtype=float)) * 1e4, notes)


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
    from mcalloc.models.fitting import FitOptions, MarginalSpec
    from mcalloc.models.selection import fit_fallback

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
    from mcalloc.models.selection import fit_series

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
        marginals = with_empirical_shocks(marginals, bootstrap)
        check_stationary(marginals, config.marginals.max_persistence)
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
    structure = switching_structure(factor.market, factor.loadings, column, regime_loadings, fitted.transition)
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
