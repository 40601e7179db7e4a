"""Per-asset volatility models: GARCH(1,1) and GJR-GARCH(1,1) via ``arch``.

Notation (arch's, in percent units): the daily log return times 100 is
``r_t = mu + e_t`` with ``e_t = sigma_t z_t``; ``z_t`` are i.i.d. innovations
with mean 0 and variance 1 (normal, or Student-t rescaled to unit variance);
``sigma2_{t+1} = omega + (alpha + gamma 1[e_t < 0]) e_t^2 + beta sigma2_t``.
GARCH(1,1) is the case ``gamma = 0``.

A :class:`MarginalSpec` fits decimal returns and returns a frozen
:class:`FittedMarginal`; fitting happens on percent returns (``scale`` = 100)
and the simulation converts back to decimals explicitly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import special

from engine.config.schema import Distribution, MarginalKind, MarginalParams, MeanKind
from engine.errors import ModelError

__all__ = ["FittedMarginal", "MarginalSpec", "simulate_gjr"]

SCALE = 100.0
"""Models describe 100 x daily log returns; arch's optimiser is happiest there."""


@dataclass(frozen=True)
class FittedMarginal:
    """A volatility model with known parameters, ready to simulate.

    Attributes
    ----------
    params
        ``mu, omega, alpha, gamma, beta`` and ``nu`` (t only), percent units.
    initial_variance
        Conditional variance of the first simulated day, percent squared.
    std_residuals
        Standardised residuals of the fit, shape (n_obs,); empty when the
        parameters came from a config.
    """

    name: str
    kind: MarginalKind
    dist: Distribution
    mean: MeanKind
    params: dict[str, float]
    initial_variance: float
    scale: float = SCALE
    loglikelihood: float | None = None
    n_obs: int = 0
    std_residuals: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    @property
    def persistence(self) -> float:
        """alpha + gamma/2 + beta: the decay rate of volatility shocks (symmetric z)."""
        p = self.params
        return p["alpha"] + 0.5 * p.get("gamma", 0.0) + p["beta"]

    @property
    def unconditional_variance(self) -> float:
        """omega / (1 - persistence), percent squared per day."""
        return self.params["omega"] / (1.0 - self.persistence)

    def annual_volatility(self, steps_per_year: int = 252) -> float:
        """Unconditional volatility of log returns, annualised, as a decimal."""
        return math.sqrt(self.unconditional_variance * steps_per_year) / self.scale

    def innovation_cdf(self, values: np.ndarray) -> np.ndarray:
        """CDF of the unit-variance innovation distribution."""
        if self.dist == "normal":
            return np.asarray(special.ndtr(values))
        nu = self.params["nu"]
        return np.asarray(special.stdtr(nu, values / math.sqrt((nu - 2.0) / nu)))

    def innovation_ppf(self, probabilities: np.ndarray) -> np.ndarray:
        """Quantile function of the unit-variance innovation distribution."""
        if self.dist == "normal":
            return np.asarray(special.ndtri(probabilities))
        nu = self.params["nu"]
        return np.asarray(special.stdtrit(nu, probabilities) * math.sqrt((nu - 2.0) / nu))

    @classmethod
    def from_params(
        cls,
        name: str,
        kind: MarginalKind,
        dist: Distribution,
        mean: MeanKind,
        params: MarginalParams,
    ) -> FittedMarginal:
        """Build from calibrated config parameters, starting at the unconditional variance."""
        values = {
            "mu": 0.0 if mean == "zero" else params.mu,
            "omega": params.omega,
            "alpha": params.alpha,
            "gamma": params.gamma if kind == "gjr_garch" else 0.0,
            "beta": params.beta,
        }
        if dist == "t":
            if params.nu is None:
                raise ModelError(f"model.marginals.params.{name}: Student-t innovations need 'nu'")
            values["nu"] = params.nu
        persistence = values["alpha"] + 0.5 * values["gamma"] + values["beta"]
        initial = values["omega"] / (1.0 - persistence)
        return cls(name=name, kind=kind, dist=dist, mean=mean, params=values, initial_variance=initial)


@dataclass(frozen=True)
class MarginalSpec:
    """What to fit: the volatility process, innovation law and mean."""

    kind: MarginalKind = "gjr_garch"
    dist: Distribution = "t"
    mean: MeanKind = "constant"

    def fit(self, returns: pd.Series, name: str) -> FittedMarginal:
        """Fit to decimal daily log returns by maximum likelihood.

        Raises
        ------
        ModelError
            If the optimiser does not converge or the fit is not stationary.
        """
        percent = returns * SCALE
        sample_mean = float(percent.mean()) if self.mean == "sample" else 0.0
        model = arch_model(
            percent - sample_mean,
            mean="Constant" if self.mean == "constant" else "Zero",
            vol="GARCH",
            p=1,
            o=1 if self.kind == "gjr_garch" else 0,
            q=1,
            dist="t" if self.dist == "t" else "normal",
            rescale=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(disp="off", show_warning=False)
        if result.convergence_flag != 0:
            raise ModelError(
                f"{name}: the {self.kind} fit did not converge ({result.optimization_result.message}); "
                "try a longer data window or a simpler model"
            )
        raw = result.params
        params = {
            "mu": float(raw.get("mu", sample_mean)),
            "omega": float(raw["omega"]),
            "alpha": float(raw["alpha[1]"]),
            "gamma": float(raw.get("gamma[1]", 0.0)),
            "beta": float(raw["beta[1]"]),
        }
        if self.dist == "t":
            params["nu"] = float(raw["nu"])
        residuals = np.asarray(result.resid, dtype=float)
        variance = np.asarray(result.conditional_volatility, dtype=float) ** 2
        last_e, last_var = residuals[-1], variance[-1]
        forecast = (
            params["omega"] + (params["alpha"] + params["gamma"] * (last_e < 0)) * last_e**2 + params["beta"] * last_var
        )
        fitted = FittedMarginal(
            name=name,
            kind=self.kind,
            dist=self.dist,
            mean=self.mean,
            params=params,
            initial_variance=float(forecast),
            loglikelihood=float(result.loglikelihood),
            n_obs=int(result.nobs),
            std_residuals=residuals / np.sqrt(variance),
        )
        if fitted.persistence >= 1.0:
            raise ModelError(
                f"{name}: fitted persistence alpha + gamma/2 + beta = {fitted.persistence:.4f} "
                "is not below 1, so simulated volatility would explode; use more data or "
                "a calibrated model"
            )
        return fitted


def simulate_gjr(
    marginals: Sequence[FittedMarginal],
    innovations: np.ndarray,
    variance: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Run the GJR-GARCH recursion for several assets over a block of days.

    Parameters
    ----------
    marginals
        One fitted model per asset (GARCH or GJR-GARCH), in column order.
    innovations
        ndarray of shape (n_paths, n_steps, n_assets): unit-variance shocks.
    variance
        ndarray of shape (n_paths, n_assets): conditional variance (percent
        squared) of the block's first day. Updated in place to that of the
        day after the block, so consecutive blocks continue one path.
    out
        Optional array of the innovations' shape to write into.

    Returns
    -------
    ndarray of shape (n_paths, n_steps, n_assets)
        Daily log returns as decimals (not percent).
    """
    n_paths, n_steps, n_assets = innovations.shape
    if n_assets != len(marginals):
        raise ValueError("one marginal per asset column is required")

    def column(key: str) -> np.ndarray:
        return np.array([m.params.get(key, 0.0) for m in marginals])

    mu, omega, alpha, gamma, beta = (column(k) for k in ("mu", "omega", "alpha", "gamma", "beta"))
    if out is None:
        out = np.empty_like(innovations)
    shock = np.empty((n_paths, n_assets))
    for step in range(n_steps):
        np.sqrt(variance, out=shock)
        shock *= innovations[:, step, :]
        out[:, step, :] = shock
        variance *= beta
        variance += omega + (alpha + gamma * (shock < 0.0)) * (shock * shock)
    out += mu
    out *= 1.0 / SCALE
    return out
