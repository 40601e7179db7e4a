"""One series' volatility model with known parameters: GARCH, GJR-GARCH or EGARCH.

The equations are arch's (see :mod:`mcalloc.config.model_schema`), in percent
units: the model describes ``r_t`` = 100 x the daily log return, ``e_t =
sigma_t z_t`` with unit-variance shocks ``z_t`` (:mod:`mcalloc.models.innovations`).
A :class:`FittedMarginal` comes from a fit (:class:`mcalloc.models.fitting.MarginalSpec`)
or from calibrated parameters (:meth:`FittedMarginal.from_params`); the
simulation divides by ``scale`` = 100 to return decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mcalloc.config.model_schema import (
    AR_MEANS,
    NU_FLOOR,
    Distribution,
    MarginalKind,
    MarginalParams,
    MeanKind,
    StartConfig,
)
from mcalloc.errors import ModelError
from mcalloc.models.diagnostics import CandidateFit, FitDiagnostics
from mcalloc.models.innovations import InnovationLaw, ShockMoments
from mcalloc.models.recursions import SCALE, SQRT_2_OVER_PI, RecursionPlan, SimulationState

__all__ = ["SCALE", "FittedMarginal", "simulate_gjr"]

_PARAM_ORDER = ("mu", "phi", "omega", "alpha", "gamma", "beta", "nu", "skew")


def model_label(kind: str, dist: str, mean: str) -> str:
    """Short name of a model for messages, e.g. ``gjr_garch/t/sample``."""
    return f"{kind}/{dist}/{mean}"


@dataclass(frozen=True)
class FittedMarginal:
    """A volatility model with known parameters, ready to simulate.

    Attributes
    ----------
    params
        ``mu`` (mean, or AR(1) intercept), ``phi`` (``ar1``), ``omega``,
        ``alpha``, ``gamma`` (GJR-GARCH and EGARCH), ``beta``, ``nu`` (t laws)
        and ``skew`` (skewed t), in percent units.
    last_variance
        Conditional variance of the day after the data ends, percent
        squared (``None`` if unknown).
    last_return
        The last observed 100 x log return (the AR(1) state).
    max_variance
        The largest fitted conditional variance in the data, percent squared.
    diagnostics
        How the fit went; ``None`` for parameters from a config.
    std_residuals
        ndarray of shape (n_obs,): standardised residuals of the fit, NaN where
        the model held back observations (AR(1)); empty for config parameters.
    warnings
        Things that went wrong on the way to this model (failed starts,
        fallbacks, arch's warnings), for the manifest.
    candidates
        ``kind: auto``'s selection table, when this model was selected.
    conditional_variance
        ndarray of shape (n_obs,): fitted conditional variances (percent
        squared), aligned with ``std_residuals``; empty for config parameters.
    stressed_variance
        The fitted variance on the day all series together were most
        stressed (set by the joint fit), percent squared.
    empirical_shocks
        When the simulation resamples the fitted residuals (filtered
        historical simulation) instead of drawing from ``law``, those
        residuals, shape (n_obs,): persistence and moments then use them.
    """

    name: str
    kind: MarginalKind
    dist: Distribution
    mean: MeanKind
    params: dict[str, float]
    last_variance: float | None = None
    last_return: float | None = None
    max_variance: float | None = None
    stressed_variance: float | None = None
    scale: float = SCALE
    diagnostics: FitDiagnostics | None = None
    std_residuals: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    conditional_variance: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    candidates: tuple[CandidateFit, ...] = ()
    empirical_shocks: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return model_label(self.kind, self.dist, self.mean)

    @cached_property
    def law(self) -> InnovationLaw:
        """The law of the unit-variance shocks."""
        return InnovationLaw(self.dist, self.params.get("nu"), self.params.get("skew"))

    @property
    def loglikelihood(self) -> float | None:
        return self.diagnostics.loglikelihood if self.diagnostics is not None else None

    @property
    def n_obs(self) -> int:
        return self.diagnostics.n_obs if self.diagnostics is not None else 0

    @property
    def autoregressive(self) -> bool:
        """Whether the mean has the AR(1) term ``phi r_{t-1}`` (``ar1``, ``sample_ar1``)."""
        return self.mean in AR_MEANS

    @cached_property
    def persistence(self) -> float:
        """How much of a volatility shock is left the next day.

        ``alpha + gamma E[z^2 1{z<0}] + beta`` for GARCH and GJR-GARCH (the
        expectation is 1/2 for symmetric shocks), ``beta`` (of the log
        variance) for EGARCH.
        """
        p = self.params
        if self.kind == "egarch":
            return p["beta"]
        return p["alpha"] + p.get("gamma", 0.0) * self.shock_moments.negative_second + p["beta"]

    @cached_property
    def shock_moments(self) -> ShockMoments:
        """Moments of the shocks the simulation draws: the law's, or the resampled residuals'."""
        if self.empirical_shocks is not None:
            return ShockMoments.of_sample(self.empirical_shocks)
        return self.law.shock_moments()

    @cached_property
    def fourth_moment_factor(self) -> float:
        """``E[(beta + (alpha + gamma 1{z<0}) z^2)^2]``: below 1 iff the GJR-GARCH's fourth moment is finite.

        With it below 1 the returns have a finite kurtosis, so sample
        variances (and covariances) over simulated paths settle at the usual
        rate; at or above 1 they wander (He and Terasvirta 1999; Ling and
        McAleer 2002). NaN for EGARCH, whose condition differs.
        """
        if self.kind == "egarch":
            return math.nan
        p = self.params
        alpha, gamma, beta = p["alpha"], p.get("gamma", 0.0), p["beta"]
        moments = self.shock_moments
        if not math.isfinite(moments.fourth):
            return math.inf if alpha or gamma else beta * beta
        return (
            beta * beta
            + 2.0 * beta * (alpha + gamma * moments.negative_second)
            + alpha * alpha * moments.fourth
            + (2.0 * alpha * gamma + gamma * gamma) * moments.negative_fourth
        )

    @property
    def half_life(self) -> float:
        """Steps until half of a volatility shock has decayed, ``ln(1/2) / ln(persistence)``."""
        persistence = self.persistence
        if persistence <= 0.0:
            return 0.0
        if persistence >= 1.0:
            return math.inf
        return math.log(0.5) / math.log(persistence)

    @cached_property
    def unconditional_variance(self) -> float:
        """Long-run expected variance ``E[e_t^2]``, percent squared per step.

        ``omega / (1 - persistence)`` for GARCH and GJR-GARCH. For EGARCH,
        ``exp(omega / (1 - beta)) prod_i E[exp(beta^i g(z))]`` with ``g(z) =
        alpha (|z| - sqrt(2/pi)) + gamma z``: closed form for normal shocks and
        infinite for t and skewed-t ones (``E[exp(c|z|)]`` diverges; Nelson 1991).
        """
        p = self.params
        if self.kind != "egarch":
            return p["omega"] / (1.0 - self.persistence) if self.persistence < 1.0 else math.inf
        beta = p["beta"]
        log_variance = p["omega"] / (1.0 - beta)
        weight = 1.0
        while abs(weight) > 1e-17:
            moment = self.law.gaussian_abs_exp_moment(weight * p["alpha"], weight * p.get("gamma", 0.0))
            if math.isinf(moment):
                return math.inf
            log_variance += math.log(moment) - weight * p["alpha"] * SQRT_2_OVER_PI
            weight *= beta
        return math.exp(log_variance)

    @property
    def unconditional_mean(self) -> float:
        """Long-run mean of the 100 x log returns: ``mu``, or ``mu / (1 - phi)`` for AR(1)."""
        return self.params.get("mu", 0.0) / (1.0 - self.params.get("phi", 0.0))

    @property
    def return_variance(self) -> float:
        """Long-run variance of the returns themselves, percent squared per step.

        The innovations' :attr:`unconditional_variance`, divided by
        ``1 - phi^2`` for an AR(1) mean (whose returns carry part of the day
        before's innovation too).
        """
        return self.unconditional_variance / (1.0 - self.params.get("phi", 0.0) ** 2)

    def annual_volatility(self, steps_per_year: int = 252) -> float:
        """Unconditional volatility of log returns, annualised, as a decimal (``inf`` if infinite)."""
        return math.sqrt(self.return_variance * steps_per_year) / self.scale

    def innovation_cdf(self, values: np.ndarray) -> np.ndarray:
        """CDF of the unit-variance innovation law."""
        return self.law.cdf(values)

    def innovation_ppf(self, probabilities: np.ndarray) -> np.ndarray:
        """Quantile function of the unit-variance innovation law."""
        return self.law.ppf(probabilities)

    def start_state(self, start: StartConfig, steps_per_year: int) -> tuple[float, float]:
        """Conditional variance (percent squared) and previous return (percent) of a path's first day.

        Raises
        ------
        ModelError
            When the start needs something this model does not have.
        """
        key = f"model.marginals.params.{self.name}"
        neutral_return = self.unconditional_mean
        if start.kind == "last":
            if self.last_variance is None:
                raise ModelError(f"{key}.last_variance: unknown, so simulation.start.kind: last cannot be used")
            if self.autoregressive and self.last_return is None:
                raise ModelError(f"{key}.last_return: unknown, so simulation.start.kind: last cannot be used")
            last = self.last_return if self.last_return is not None else neutral_return
            return self.last_variance, last
        if start.kind == "historical_max":
            if self.max_variance is None:
                raise ModelError(
                    f"{key}.max_variance: unknown, so simulation.start.kind: historical_max cannot be used"
                )
            return self.max_variance, neutral_return
        if start.kind == "stressed":
            if self.stressed_variance is None:
                raise ModelError(f"{key}.stressed_variance: unknown, so simulation.start.kind: stressed cannot be used")
            return self.stressed_variance, neutral_return
        if start.kind == "vol":
            assert start.vol_ann is not None
            return (start.vol_ann * self.scale) ** 2 / steps_per_year, neutral_return
        variance = self.unconditional_variance
        if not math.isfinite(variance):
            raise ModelError(
                f"{self.name}: the {self.label} model has an infinite unconditional variance; "
                "set simulation.start.kind to last, historical_max or vol"
            )
        return variance, neutral_return

    def to_params(self, with_model: bool = False) -> dict[str, str | float]:
        """Calibrated parameters for a config file (plain floats, full precision).

        ``with_model`` adds this series' ``kind``, ``dist`` and ``mean``.
        """
        result: dict[str, str | float] = {}
        if with_model:
            result.update(kind=self.kind, dist=self.dist, mean=self.mean)
        for key in _PARAM_ORDER:
            if key in self.params and not (key == "mu" and self.mean == "zero"):
                result[key] = float(self.params[key])
        for key, value in (
            ("last_variance", self.last_variance),
            ("last_return", self.last_return if self.autoregressive else None),
            ("max_variance", self.max_variance),
            ("stressed_variance", self.stressed_variance),
        ):
            if value is not None:
                result[key] = float(value)
        return result

    @classmethod
    def from_params(
        cls,
        name: str,
        kind: MarginalKind,
        dist: Distribution,
        mean: MeanKind,
        params: MarginalParams,
    ) -> FittedMarginal:
        """Build from calibrated config parameters.

        Raises
        ------
        ModelError
            If a parameter the model needs is missing, or the model is not
            stationary once the shocks' skewness is taken into account.
        """
        key = f"model.marginals.params.{name}"
        values = {"mu": 0.0 if mean == "zero" else params.mu}
        if mean in AR_MEANS:
            values["phi"] = params.phi
        values.update(omega=params.omega, alpha=params.alpha)
        if kind != "garch":
            values["gamma"] = params.gamma
        values["beta"] = params.beta
        if dist != "normal":
            if params.nu is None:
                raise ModelError(f"{key}.nu: {dist} innovations need 'nu' (degrees of freedom, at least {NU_FLOOR})")
            values["nu"] = params.nu
        if dist == "skewt":
            if params.skew is None:
                raise ModelError(f"{key}.skew: skewed-t innovations need 'skew' (in (-1, 1))")
            values["skew"] = params.skew
        marginal = cls(
            name=name,
            kind=kind,
            dist=dist,
            mean=mean,
            params=values,
            last_variance=params.last_variance,
            last_return=params.last_return,
            max_variance=params.max_variance,
            stressed_variance=params.stressed_variance,
        )
        if marginal.persistence >= 1.0:
            raise ModelError(
                f"{key}: persistence alpha + gamma E[z^2 1(z<0)] + beta = {marginal.persistence:.4f} "
                f"with {dist} shocks must be below 1 for a stationary model; lower alpha, gamma or beta"
            )
        return marginal


def simulate_gjr(
    marginals: Sequence[FittedMarginal],
    innovations: np.ndarray,
    variance: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Run the GJR-GARCH recursion (constant or zero mean) for several series over a block of days.

    Parameters
    ----------
    marginals
        One GARCH or GJR-GARCH model per column.
    innovations
        ndarray of shape (n_paths, n_steps, n_assets): unit-variance shocks.
    variance
        ndarray of shape (n_paths, n_assets): conditional variance (percent
        squared) of the block's first day, updated in place to that of the
        day after the block.
    out
        Optional array of the innovations' shape to write into.

    Returns
    -------
    ndarray of shape (n_paths, n_steps, n_assets)
        Daily log returns as decimals (not percent).
    """
    if any(m.kind == "egarch" or m.autoregressive for m in marginals):
        raise ValueError("simulate_gjr: EGARCH and AR(1) series need RecursionPlan.simulate")
    state = SimulationState(variance=variance, last_return=np.zeros_like(variance))
    return RecursionPlan.from_marginals(marginals).simulate(innovations, state, out=out)
