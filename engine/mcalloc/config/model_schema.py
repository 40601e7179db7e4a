"""Scenario schema for the models: volatility models per series, their start and the uncertainty of their means.

The dependence between the series and the market factor are in :mod:`mcalloc.config.dependence_schema`.

Units: marginal parameters are in arch's units; the models describe daily log
returns multiplied by 100 (percent), so ``mu`` is in percent per day, ``omega``
of a GARCH or GJR-GARCH in percent squared, variances (``last_variance``,
``max_variance``) in percent squared per day. An EGARCH's ``omega`` is in log
percent squared.

The volatility models (arch's definitions, ``e_t = sigma_t z_t``,
``z_t`` unit-variance shocks):

* ``garch``:     ``sigma2_{t+1} = omega + alpha e_t^2 + beta sigma2_t``
* ``gjr_garch``: ``sigma2_{t+1} = omega + (alpha + gamma 1[e_t < 0]) e_t^2 + beta sigma2_t``
* ``egarch``:    ``ln sigma2_{t+1} = omega + alpha (|z_t| - sqrt(2/pi)) + gamma z_t + beta ln sigma2_t``

and the means: ``zero`` (``r_t = e_t``), ``constant`` (``r_t = mu + e_t``,
``mu`` by maximum likelihood), ``sample`` (``mu`` fixed at the historical mean
log return, the volatility fitted to the demeaned returns), ``ar1``
(``r_t = mu + phi r_{t-1} + e_t``, so ``mu`` is an intercept and the mean is
``mu / (1 - phi)``) and ``sample_ar1`` (the same AR(1), its mean
``mu / (1 - phi)`` fixed at the historical mean log return and ``phi`` fitted
with the volatility model to the demeaned returns).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from mcalloc.config.base import Frozen
from mcalloc.config.dependence_schema import (
    BASELINE_KINDS,
    MIN_RESIDUAL_ROWS,
    DccConfig,
    DependenceConfig,
    DependenceKind,
    FactorConfig,
    StressConfig,
    stress_problem,
)

__all__ = [
    "AR_MEANS",
    "BASELINE_KINDS",
    "MIN_RESIDUAL_ROWS",
    "STEPS_PER_YEAR",
    "DccConfig",
    "DependenceConfig",
    "DependenceKind",
    "Distribution",
    "FactorConfig",
    "FittedWithConfig",
    "MarginalKind",
    "MarginalParams",
    "MarginalsConfig",
    "MeanKind",
    "MeanUncertaintyConfig",
    "ModelChoice",
    "ModelConfig",
    "StartConfig",
    "StartKind",
    "StepLength",
    "StressConfig",
    "can_tie",
    "check_params",
]

MarginalKind = Literal["garch", "gjr_garch", "egarch"]
Distribution = Literal["normal", "t", "skewt"]
MeanKind = Literal["zero", "constant", "sample", "ar1", "sample_ar1"]
AR_MEANS: tuple[MeanKind, ...] = ("ar1", "sample_ar1")
"""The means with an AR(1) term ``phi r_{t-1}``."""
StartKind = Literal["last", "unconditional", "historical_max", "stressed", "vol"]
StepLength = Literal["daily", "weekly", "monthly"]


def can_tie(kind: MarginalKind, mean: MeanKind) -> bool:
    """Whether ``variance_targeting: likelihood`` applies: GARCH or GJR-GARCH with no mean parameter to fit."""
    return kind != "egarch" and mean in ("sample", "zero")


STEPS_PER_YEAR: dict[StepLength, range] = {"daily": range(240, 263), "weekly": range(50, 54), "monthly": range(12, 13)}
"""Step counts per year that a model of each step length may simulate."""


ALL_KINDS: tuple[MarginalKind, ...] = ("garch", "gjr_garch", "egarch")
ALL_DISTRIBUTIONS: tuple[Distribution, ...] = ("normal", "t", "skewt")


MIN_FIT_OBSERVATIONS = 500
"""Fewest returns a volatility model is fitted to (the data layer and the fitter agree)."""


MAX_VARIANCE = 1e4
"""Largest per-step variance (percent squared) a calibrated state may hold: a daily standard deviation of 100%."""

MIN_MEAN_YEARS = 1.0
"""Fewest years of data ``model.mean_uncertainty`` takes a mean from: below a year the offsets swamp any path."""


class ModelChoice(Frozen):
    """One volatility model: a selection candidate or the fallback.

    ``mean`` defaults to ``marginals.mean``.
    """

    kind: MarginalKind
    dist: Distribution
    mean: MeanKind | None = None


class MarginalParams(Frozen):
    """Parameters of one series' volatility model, in arch's percent units.

    ``kind``, ``dist`` and ``mean`` override ``marginals.kind/dist/mean`` for
    this series (``mcalloc calibrate`` writes them after ``kind: auto``).
    ``mu`` is the mean (``constant``, ``sample``) or the intercept (``ar1``, ``sample_ar1``)
    of 100 x daily log returns; ``phi`` the AR(1) coefficient; ``omega``,
    ``alpha``, ``gamma`` (asymmetry) and ``beta`` the volatility model's
    coefficients (see the module docstring); ``nu`` the degrees of freedom of
    ``t`` and ``skewt`` shocks and ``skew`` the skewed t's asymmetry (arch's
    ``lambda``, in (-1, 1); negative means heavier falls).

    The starting state, as fitted: ``last_variance`` is the conditional
    variance of the day after the last observation (percent squared),
    ``last_return`` the last observed 100 x log return (``ar1``, ``sample_ar1``) and
    ``max_variance`` the largest fitted conditional variance in the sample,
    ``stressed_variance`` the series' fitted variance on the day when all
    series together were most stressed (see ``simulation.start``).
    Keys a model does not use are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: MarginalKind | None = None
    dist: Distribution | None = None
    mean: MeanKind | None = None
    mu: float = 0.0
    phi: Annotated[float, Field(gt=-1.0, lt=1.0)] = 0.0
    omega: float
    alpha: float
    gamma: float = 0.0
    beta: float
    # no lower bound here: check_params names the floor (NU_FLOOR) for any nu below it
    nu: float | None = None
    skew: Annotated[float, Field(gt=-1.0, lt=1.0)] | None = None
    last_variance: Annotated[float, Field(gt=0.0, le=MAX_VARIANCE)] | None = None
    last_return: float | None = None
    max_variance: Annotated[float, Field(gt=0.0, le=MAX_VARIANCE)] | None = None
    stressed_variance: Annotated[float, Field(gt=0.0, le=MAX_VARIANCE)] | None = None


NU_FLOOR = 2.5
"""Smallest degrees of freedom accepted for t and skewed-t shocks: below it the shocks' variance
rests on ever rarer extremes, and simulated volatility falls far below the model's."""

MAX_CALIBRATED_PERSISTENCE = 0.9999
"""Calibrated GARCH persistence at or above this is refused, as a fit's would be (``max_persistence``)."""

MAX_VOL_ANN = 2.0
"""Largest long-run annualised volatility (decimal) that calibrated parameters may imply."""

MAX_MEAN_ANN = 1.0
"""Largest absolute mean log return per year (decimal) that ``mu`` may imply."""

STEPS_OF = {"daily": 252, "weekly": 52, "monthly": 12}


def check_params(kind: MarginalKind, params: MarginalParams, steps_per_year: int = 252) -> str | None:
    """The first problem with ``params`` for a model of ``kind``, if any.

    It starts with ``.key: `` when one parameter is at fault, else with ``: ``.
    ``steps_per_year`` converts per-step values to annual ones for the range checks.
    """
    if params.nu is not None and params.nu < NU_FLOOR:
        return (
            f".nu: {params.nu:g} degrees of freedom is below the floor of {NU_FLOOR}: such shocks have almost no "
            "finite variance and simulate nonsense; use nu >= 2.5 (kurtosis is finite only above 4)"
        )
    if abs(params.mu) * steps_per_year / 100.0 > MAX_MEAN_ANN:
        return (
            f".mu: {params.mu:g} (percent per step) is a mean log return of {params.mu * steps_per_year:.0f}% a year; "
            f"mu is 100 x the mean log return per step, within +-{100 * MAX_MEAN_ANN / steps_per_year:.2f}"
        )
    if kind == "egarch":
        if not abs(params.beta) < 1.0:
            return f".beta: |beta| = {abs(params.beta):.4f} must be below 1 for a stationary EGARCH; lower beta"
        # the long-run mean of log variance is about omega / (1 - beta)
        log_variance = params.omega / (1.0 - params.beta)
        if log_variance > 2.0 * math.log(100.0 * MAX_VOL_ANN) - math.log(steps_per_year):
            return (
                f".omega: {params.omega:g} with beta {params.beta:g} puts the long-run log variance at "
                f"{log_variance:.1f}, a volatility above {MAX_VOL_ANN:.0%} a year; lower omega"
            )
        return None
    gamma = params.gamma if kind == "gjr_garch" else 0.0
    if params.omega <= 0.0:
        return f".omega: must be positive for {kind} (got {params.omega})"
    if params.alpha < 0.0 or params.beta < 0.0:
        return f": alpha and beta must be non-negative for {kind}"
    if params.alpha + gamma < 0.0:
        return ": alpha + gamma must be non-negative"
    # the exact persistence of a skewed law is checked when the model is built
    persistence = params.alpha + 0.5 * gamma + params.beta
    if persistence >= MAX_CALIBRATED_PERSISTENCE:
        return (
            f": alpha + gamma/2 + beta = {persistence:.6f} must be below {MAX_CALIBRATED_PERSISTENCE} for a "
            "stationary model whose volatility settles; lower alpha, gamma or beta"
        )
    vol_ann = (params.omega / (1.0 - persistence) * steps_per_year) ** 0.5 / 100.0
    if vol_ann > MAX_VOL_ANN:
        return (
            f".omega: {params.omega:g} with persistence {persistence:.4f} implies a long-run volatility of "
            f"{vol_ann:.0%} a year (at most {MAX_VOL_ANN:.0%}); omega is in percent squared per step "
            "(about 0.01-0.05 for daily equity returns)"
        )
    return None


class MarginalsConfig(Frozen):
    """The per-series volatility model and, when calibrated, its parameters.

    ``kind``: ``garch``, ``gjr_garch``, ``egarch``, or ``auto`` to fit every
    model in ``candidates`` (default: the three kinds with each of the three
    laws, and ``mean``) and keep, per series, the one with the lowest BIC.

    ``mean``: ``constant`` estimates ``mu`` by maximum likelihood together
    with the volatility model; for equities this weights calm days more than
    turbulent falls and lands well above the historical mean return.
    ``sample`` fixes ``mu`` at the historical mean log return and fits the
    volatility model to the demeaned returns. ``zero`` sets ``mu = 0``;
    ``ar1`` fits ``mu`` and ``phi``; ``sample_ar1`` fixes the mean
    ``mu / (1 - phi)`` at the historical mean and fits ``phi``.

    ``step``: the step length the calibrated parameters describe (``mcalloc
    calibrate`` writes it); ``simulation.steps_per_year`` must match it.

    ``variance_targeting``: hold the model's long-run variance at the sample
    variance of the series (Engle and Mezrich 1996), with the persistence of
    the shocks actually simulated. ``likelihood`` ties ``omega`` to the other
    parameters inside the likelihood, so the fit chooses how the target is
    met (GARCH and GJR-GARCH with a ``sample`` or ``zero`` mean); ``omega``
    (or ``true``) resets ``omega`` after a free fit, keeping its ``alpha``,
    ``gamma`` and ``beta``.

    ``variance_ceiling``: the simulated conditional variance of each series
    never exceeds this multiple of its largest fitted variance
    (``max_variance``); ``null`` removes the ceiling. GARCH variances have
    power-law tails: with no finite fourth moment a million paths reach
    levels no market has seen, and averages over paths (expected growth)
    stop settling. Four times the 2008 peak (about 12% a day for the S&P
    500) is above anything in a century of US daily data, 1987 included.

    ``fallback`` is fitted instead when a series' model does not converge or
    is not stationary (persistence at or above ``max_persistence``); a
    warning is recorded. Without it, such a fit stops the run.
    """

    kind: MarginalKind | Literal["auto"] = "gjr_garch"
    dist: Distribution = "t"
    mean: MeanKind = "sample"
    step: StepLength | None = None
    variance_targeting: Literal[False, True, "omega", "likelihood"] = False
    variance_ceiling: Annotated[float, Field(ge=1.0, le=1000.0)] | None = 4.0
    candidates: Annotated[list[ModelChoice], Field(min_length=1)] | None = None
    fallback: ModelChoice | None = None
    max_persistence: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9999
    params: dict[str, MarginalParams] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MarginalsConfig:
        if self.candidates is not None and self.kind != "auto":
            raise ValueError("candidates: only used with kind: auto; remove it or set kind: auto")
        if self.variance_targeting == "likelihood" and self.kind != "auto" and not can_tie(self.kind, self.mean):
            raise ValueError(
                f"variance_targeting: likelihood applies to garch and gjr_garch with mean sample or zero, "
                f"not {self.kind} with mean {self.mean}; use variance_targeting: omega"
            )
        for name, params in (self.params or {}).items():
            kind = params.kind or self.kind
            if kind == "auto":
                continue
            # without a step the scenario checks again at simulation.steps_per_year; here, at the loosest
            problem = check_params(kind, params, STEPS_OF[self.step or "monthly"])
            if problem is not None:
                raise ValueError(f"params.{name}{problem}")
            if (params.mean or self.mean) not in AR_MEANS and params.phi != 0.0:
                raise ValueError(
                    f"params.{name}.phi: only used with mean: ar1 or sample_ar1; remove it or set one of those means"
                )
        return self

    def model_of(self, name: str) -> tuple[MarginalKind | Literal["auto"], Distribution, MeanKind]:
        """The kind, law and mean of one series: its own in ``params``, else the section's."""
        own = (self.params or {}).get(name)
        if own is None:
            return self.kind, self.dist, self.mean
        return own.kind or self.kind, own.dist or self.dist, own.mean or self.mean

    def candidate_models(self) -> list[tuple[MarginalKind, Distribution, MeanKind]]:
        """The models ``kind: auto`` chooses from, means resolved."""
        if self.candidates is None:
            return [(kind, dist, self.mean) for kind in ALL_KINDS for dist in ALL_DISTRIBUTIONS]
        return [(c.kind, c.dist, c.mean or self.mean) for c in self.candidates]


class MeanUncertaintyConfig(Frozen):
    """How well the series' mean returns are known: as well as ``years`` of data tell them.

    Each simulated path draws its own offset to every series' mean log return
    per step, jointly normal with covariance ``S / (years x steps_per_year)``:
    the sampling error of means estimated from ``years`` years of returns
    whose long-run covariance per step is ``S``. ``covariance`` is ``S`` in
    percent squared per step, its rows and columns the ``series`` named (in
    any order); a fit measures it from its data (Newey-West), ``mcalloc
    calibrate`` writes both, and without them the model's own long-run
    covariance stands in. ``data`` (only with ``model.source: fit``) takes
    the fitted sample's span.
    """

    years: float | Literal["data"]
    series: list[str] | None = None
    covariance: list[list[float]] | None = None

    @field_validator("years", mode="before")
    @classmethod
    def _years_readable(cls, value: object) -> object:
        """One message for what is neither a number nor ``data``, not the union's two validators' raw ones."""
        if value == "data":
            return value
        number: float | None = None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except (ValueError, OverflowError):  # not a number, or an integer beyond a float's range
                number = None
        if number is None or not math.isfinite(number):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ValueError(
                f"a number of years (from {MIN_MEAN_YEARS:g} to 1000) or data for a fit's own span (got {shown})"
            )
        return number

    @model_validator(mode="after")
    def _named(self) -> MeanUncertaintyConfig:
        if (self.series is None) != (self.covariance is None):
            raise ValueError(
                "series: covariance and series come together (the series name its rows and columns; "
                "mcalloc calibrate writes both), or neither"
            )
        if self.series is not None and len(set(self.series)) != len(self.series):
            raise ValueError(f"series: {', '.join(self.series)} names a series twice")
        return self

    @model_validator(mode="after")
    def _years_in_range(self) -> MeanUncertaintyConfig:
        if self.years != "data" and not MIN_MEAN_YEARS <= self.years <= 1000.0:
            raise ValueError(
                f"years: {self.years:g} is not a span of data a mean can be taken from; give the years of returns "
                f"the means were averaged over (from {MIN_MEAN_YEARS:g} to 1000), data for a fit's own span, or set "
                "mean_uncertainty to null"
            )
        return self


class FittedWithConfig(Frozen):
    """How a calibrated model was fitted, where its own keys cannot say it (``mcalloc calibrate`` writes it).

    The fitting scenario's ``dependence.lead_lag``, ``lead_lag_series`` and
    ``stress``, and ``mean_uncertainty_years: data`` when the fit took the
    means' years from its sample. The calibrated numbers already hold what
    they did (the lagged loadings or adjusted correlation, the stressed
    correlation, the sample's years), so a calibrated run does not apply
    them again; ``mcalloc fit`` and ``mcalloc calibrate`` on the calibrated
    file fit with them, as the original scenario did.
    """

    lead_lag: Annotated[int, Field(ge=0, le=5)] = 0
    lead_lag_series: list[str] | None = None
    stress: StressConfig = StressConfig()
    mean_uncertainty_years: Literal["data"] | None = None


class ModelConfig(Frozen):
    """Calibrated parameters from the config, or a fit to ``data``.

    ``fitted_with`` (calibrated only): the fitting settings the parameters
    were fitted with, for a refit (:class:`FittedWithConfig`).
    """

    source: Literal["calibrated", "fit"] = "calibrated"
    marginals: MarginalsConfig = MarginalsConfig()
    dependence: DependenceConfig = DependenceConfig()
    factor: FactorConfig | None = None
    mean_uncertainty: MeanUncertaintyConfig | None = None
    fitted_with: FittedWithConfig | None = None

    @model_validator(mode="after")
    def _fitted_with_calibrated(self) -> ModelConfig:
        """``fitted_with`` records a calibrated model's fit; a fit's settings are the section's own keys."""
        fitted_with = self.fitted_with
        if fitted_with is None:
            return self
        if self.source == "fit":
            raise ValueError(
                "fitted_with: records how a calibrated model was fitted, but model.source is fit; set "
                "dependence.lead_lag, lead_lag_series, stress and mean_uncertainty.years themselves and remove it"
            )
        problem = stress_problem(self.dependence.kind, fitted_with.stress)
        if problem is not None:
            raise ValueError(f"fitted_with.stress: {problem}")
        if fitted_with.mean_uncertainty_years is not None and self.mean_uncertainty is None:
            raise ValueError(
                "fitted_with.mean_uncertainty_years: data, but mean_uncertainty is null, so the fit drew no "
                "uncertain means; remove it, or give mean_uncertainty (mcalloc calibrate writes both)"
            )
        return self

    @model_validator(mode="after")
    def _stress_without_factor(self) -> ModelConfig:
        """A correlation stress on a factor model's shocks would stress volatility too: refuse it.

        With ``factor`` the copula joins the market's shock to each series'
        own part; moving that correlation towards 1 adds ``2 b rho sigma_m
        sigma_e`` to a loaded series' variance (the Russell 2000 from 24% to
        27% a year at a blend of 0.5), and ``worst_days`` measures a
        correlation of parts that are nearly uncorrelated by construction.
        """
        fitted = self.fitted_with.stress if self.fitted_with is not None else None
        if self.factor is None or not (self.dependence.stress.active or (fitted is not None and fitted.active)):
            return self
        key = "dependence.stress" if self.dependence.stress.active else "fitted_with.stress"
        raise ValueError(
            f"{key}: with model.factor the copula joins the market to each series' own part, so a correlation "
            "stress would raise the loaded series' volatility instead; remove model.factor for a stress run, or "
            "use simulation.start.kind: stressed"
        )

    @model_validator(mode="after")
    def _years_known(self) -> ModelConfig:
        """``years: data`` needs data: a calibrated model has none to count."""
        if self.source != "fit" and self.mean_uncertainty is not None and self.mean_uncertainty.years == "data":
            raise ValueError(
                "mean_uncertainty.years: data counts the years of a fitted sample, but model.source is "
                "calibrated; give the number of years the means were estimated from (e.g. 18.3)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_params_to_fit(cls, data: Any) -> Any:
        """Parameters under a fit, refused before each series' are checked for the keys a calibration needs.

        Else one parameter given (``--set model.marginals.params.sp500.omega=0.01``) was told its
        series lacks ``alpha``, to be refused as ignored once the user had added it.
        """
        if not isinstance(data, dict) or data.get("source") != "fit":
            return data
        marginals = data.get("marginals")
        params = marginals.get("params") if isinstance(marginals, dict) else None
        if isinstance(params, dict) and any(value is not None for value in params.values()):
            raise ValueError(_IGNORED_UNDER_FIT.format(key="marginals.params"))
        return data

    @model_validator(mode="after")
    def _nothing_ignored(self) -> ModelConfig:
        """A fit estimates every parameter, so one given in the scenario would be silently ignored: refuse it."""
        if self.source != "fit":
            return self
        given = {
            "marginals.params": self.marginals.params,
            "dependence.correlation": self.dependence.correlation,
            "dependence.nu": self.dependence.nu,
            "dependence.dcc": self.dependence.dcc,
            "dependence.residuals": self.dependence.residuals,
            "factor.loadings": self.factor.loadings if self.factor is not None else None,
            "mean_uncertainty.series and .covariance": (
                self.mean_uncertainty.covariance if self.mean_uncertainty else None
            ),
        }
        for key, value in given.items():
            if value is not None:
                raise ValueError(_IGNORED_UNDER_FIT.format(key=key))
        return self


_IGNORED_UNDER_FIT = (
    "{key}: model.source is fit, which estimates it from the data, so the value given would be ignored; remove it "
    "(set it to null) or use source: calibrated"
)


class StartConfig(Frozen):
    """The conditional variance each simulated path starts from.

    ``last``: the fitted variance of the day after the data ends (and, for
    ``ar1`` and ``sample_ar1``, the last observed return). ``unconditional``: the model's
    long-run variance (infinite, so refused, for an EGARCH with t or skewed-t
    shocks). ``historical_max``: the largest fitted variance in the data, a
    stress start, each series at its own worst day. ``stressed``: every
    series at its fitted variance on the one day when the series together
    were most stressed (largest mean ratio of variance to long-run variance),
    a joint crisis start. ``vol``: the variance of ``vol_ann``, an annualised
    volatility (decimal, 0.40 is 40% a year) given to every series. Except for
    ``last``, AR(1) paths start from their long-run mean return.
    """

    kind: StartKind = "last"
    vol_ann: Annotated[float, Field(gt=0.0, le=5.0)] | None = None

    @model_validator(mode="after")
    def _vol_given(self) -> StartConfig:
        if self.kind == "vol" and self.vol_ann is None:
            raise ValueError("vol_ann: required for kind: vol (an annualised volatility, e.g. 0.4)")
        if self.kind != "vol" and self.vol_ann is not None:
            raise ValueError("vol_ann: only used with kind: vol; remove it or set kind: vol")
        return self
