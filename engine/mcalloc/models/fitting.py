"""Fitting volatility models with ``arch``: retries, stationarity, diagnostics.

:class:`MarginalSpec` wraps ``arch.arch_model`` (it does not subclass it): it
fits 100 x the decimal log returns it is given (``scale`` 100), retries from
other starting values when the optimiser does not converge, rejects fits
whose persistence is at or above ``max_persistence`` and returns a frozen
:class:`~mcalloc.models.marginals.FittedMarginal` with its diagnostics, its
starting state and every warning met on the way.
:func:`mcalloc.models.selection.fit_series` adds what the scenario asks for
on top: ``kind: auto`` selection by BIC and the ``fallback`` model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from mcalloc.config.model_schema import (
    AR_MEANS,
    MIN_FIT_OBSERVATIONS,
    Distribution,
    MarginalKind,
    MeanKind,
    can_tie,
)
from mcalloc.errors import ModelError
from mcalloc.models.diagnostics import FitDiagnostics, ljung_box
from mcalloc.models.marginals import SCALE, FittedMarginal, model_label
from mcalloc.models.recursions import next_variance

__all__ = ["FitOptions", "MarginalSpec", "law_loglikelihood"]

_ARCH_MEAN = {"zero": "Zero", "sample": "Zero", "constant": "Constant", "ar1": "AR", "sample_ar1": "AR"}
_DEMEANED = ("sample", "sample_ar1")
"""The means fixed at the sample's, the rest of the model fitted to the demeaned returns."""
_ARCH_DIST = {"normal": "normal", "t": "t", "skewt": "skewt"}
# arch's parameter names -> ours ("r" is the name we give the series)
_OUR_NAMES = {
    "mu": "mu",
    "Const": "mu",
    "r[1]": "phi",
    "omega": "omega",
    "alpha[1]": "alpha",
    "gamma[1]": "gamma",
    "beta[1]": "beta",
    "nu": "nu",
    "eta": "nu",
    "lambda": "skew",
}


def law_loglikelihood(dist: str, params: dict[str, float], residuals: np.ndarray, variances: np.ndarray) -> float:
    """Log-likelihood of ``residuals`` (percent, mean removed) with conditional ``variances`` under arch's ``dist``.

    ``params`` holds the law's ``nu`` and ``skew`` where it has them; days
    where either array is NaN are left out. arch's own densities, so the
    value compares with its fits' log-likelihoods.
    """
    from arch.univariate import Normal, SkewStudent, StudentsT

    law = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}[dist]()
    shape = np.array([params[key] for key in ("nu", "skew") if key in params and dist != "normal"])
    known = np.isfinite(residuals) & np.isfinite(variances)
    return float(law.loglikelihood(shape, residuals[known], variances[known]))


@dataclass(frozen=True)
class FitOptions:
    """How hard to try, and what to accept.

    Attributes
    ----------
    max_persistence
        Fits with persistence at or above this are rejected as not
        stationary (arch lets persistence reach 1 exactly).
    min_observations
        Fewer returns than this are refused (about two years of trading days).
    n_starts
        Starting points to try: arch's own, then up to ``n_starts - 1`` others.
    max_iterations
        Iterations of arch's optimiser (SLSQP) per start.
    hold_back
        Observations left out of the likelihood at the start; selection sets
        1 when an AR(1) candidate is compared with others, so that every
        likelihood covers the same days.
    ljung_box_lags
        Lags of the Ljung-Box tests (capped at a fifth of the sample).
    """

    max_persistence: float = 0.9999
    min_observations: int = MIN_FIT_OBSERVATIONS
    n_starts: int = 4
    max_iterations: int = 1000
    hold_back: int = 0
    ljung_box_lags: int = 10


def _alternative_starts(
    kind: MarginalKind, dist: Distribution, mean: MeanKind, returns: np.ndarray, count: int
) -> list[np.ndarray]:
    """Starting vectors in arch's order, at a few persistence levels."""
    variance = float(np.var(returns))
    starts = []
    for persistence in (0.98, 0.95, 0.90)[:count]:
        if kind == "egarch":
            volatility = [(1.0 - persistence) * math.log(variance), 0.12, -0.06, persistence]
        elif kind == "gjr_garch":
            volatility = [variance * (1.0 - persistence), 0.02, 0.10, persistence - 0.07]
        else:
            volatility = [variance * (1.0 - persistence), 0.06, persistence - 0.06]
        average = float(np.mean(returns))
        mean_part = {"zero": [], "sample": [], "constant": [average], "ar1": [average, 0.0], "sample_ar1": [0.0]}[mean]
        law = {"normal": [], "t": [8.0], "skewt": [8.0, -0.05]}[dist]
        starts.append(np.array(mean_part + volatility + law, dtype=float))
    return starts


@dataclass(frozen=True)
class _Attempt:
    result: Any
    problem: str | None
    caught: tuple[str, ...]


@dataclass(frozen=True)
class MarginalSpec:
    """What to fit: the volatility process, the shocks' law and the mean."""

    kind: MarginalKind = "gjr_garch"
    dist: Distribution = "t"
    mean: MeanKind = "constant"

    @property
    def label(self) -> str:
        return model_label(self.kind, self.dist, self.mean)

    def fit(self, returns: pd.Series, name: str, options: FitOptions | None = None) -> FittedMarginal:
        """Fit to decimal daily log returns by maximum likelihood.

        Parameters
        ----------
        returns
            Series of shape (n_obs,): decimal log returns, oldest first.
        name
            The series' name, for messages.
        options
            Retries and acceptance limits; defaults to :class:`FitOptions`.

        Raises
        ------
        ModelError
            If there are too few returns, no start converges, or every
            converged fit is not stationary.
        """
        options = options or FitOptions()
        percent = np.asarray(returns, dtype=float) * SCALE
        if percent.size < options.min_observations:
            raise ModelError(
                f"{name}: only {percent.size} returns to fit a {self.label} model; at least "
                f"{options.min_observations} are needed; widen data.start..data.end or use a calibrated model"
            )
        if not np.all(np.isfinite(percent)):
            raise ModelError(f"{name}: the returns contain missing or infinite values; check the data file")
        sample_mean = float(percent.mean()) if self.mean in _DEMEANED else 0.0
        target = pd.Series(percent - sample_mean, index=returns.index, name="r")
        model = self._arch_model(target, options)
        starts: list[np.ndarray | None] = [None]
        starts += _alternative_starts(self.kind, self.dist, self.mean, target.to_numpy(), options.n_starts - 1)
        accepted: list[tuple[FittedMarginal, _Attempt]] = []
        problems: list[str] = []
        non_stationary: list[FittedMarginal] = []
        for index, start in enumerate(starts):
            attempt = self._attempt(model, start, options)
            if attempt.problem is not None:
                problems.append(f"start {index + 1}: {attempt.problem}")
                continue
            fitted = self._fitted(attempt.result, returns, name, sample_mean, options)
            if not fitted.persistence < options.max_persistence:
                non_stationary.append(fitted)
                problems.append(f"start {index + 1}: persistence {fitted.persistence:.6f}")
                continue
            accepted.append((fitted, attempt))
            if index == 0:
                break
        if not accepted:
            raise self._failure(name, problems, non_stationary, options)
        fitted, attempt = max(
            accepted, key=lambda pair: pair[0].diagnostics.loglikelihood if pair[0].diagnostics else -math.inf
        )
        notes = [f"{name} ({self.label}): arch: {message}" for message in attempt.caught]
        if problems:
            notes.insert(
                0,
                f"{name} ({self.label}): arch's default start failed ({problems[0].partition(': ')[2]}); "
                f"kept the best of {len(accepted)} converged fits from other starts",
            )
        attempts = len(accepted) + len(problems)
        assert fitted.diagnostics is not None
        return replace(fitted, warnings=tuple(notes), diagnostics=replace(fitted.diagnostics, attempts=attempts))

    def _arch_model(self, target: pd.Series, options: FitOptions) -> Any:
        """arch's model of the (demeaned, for ``sample`` means) percent returns ``target``."""
        from arch import arch_model  # heavy import, kept out of config validation
        from arch.univariate import ARX

        model = arch_model(
            target,
            mean=_ARCH_MEAN[self.mean],
            lags=1 if self.mean in AR_MEANS else 0,
            vol="EGARCH" if self.kind == "egarch" else "GARCH",
            p=1,
            o=0 if self.kind == "garch" else 1,
            q=1,
            dist=_ARCH_DIST[self.dist],
            hold_back=options.hold_back or None,
            rescale=False,
        )
        if self.mean == "sample_ar1":
            # the returns are demeaned, so the AR(1) has no intercept of its own to fit
            model = ARX(
                target,
                lags=1,
                constant=False,
                hold_back=options.hold_back or None,
                volatility=model.volatility,
                distribution=model.distribution,
                rescale=False,
            )
        return model

    def fit_targeted(
        self,
        returns: pd.Series,
        name: str,
        variance: float,
        asymmetry: Callable[[np.ndarray, np.ndarray], float],
        start: FittedMarginal,
        options: FitOptions | None = None,
        from_law: bool = False,
    ) -> FittedMarginal:
        """Refit with the long-run variance held at ``variance`` inside the likelihood.

        ``omega = variance (1 - alpha - kappa gamma - beta)``, and ``alpha``,
        ``gamma``, ``beta`` and the law's parameters maximise arch's
        likelihood under that tie, so the data decide how the target is met
        (Francq, Horvath and Zakoian 2011 study this estimator). The standard
        errors are conditional on the target (and, for resampled residuals, on
        ``kappa``): the sample variance's own error is not in them. ``kappa`` is
        ``E[z^2 1{z<0}]`` of the shocks the simulation will draw:
        ``asymmetry(std_residuals, law_params)`` gives it. With ``from_law``
        it depends on the law's parameters only and is evaluated with them
        inside the likelihood (a skewed t's moves with its skew); otherwise
        (resampled residuals) the fit is repeated until it agrees with the
        fit's own residuals.

        Only GARCH and GJR-GARCH with a ``zero`` or ``sample`` mean: other
        means have parameters of their own that the tie would have to carry.

        Parameters
        ----------
        returns
            Series (n_obs,): decimal log returns, as given to :meth:`fit`.
        variance
            The target: the long-run variance of ``100 x returns`` (less the
            sample mean), percent squared per step.
        asymmetry
            ``(std_residuals, law_params) -> kappa``.
        start
            The free fit of the same model: its parameters start the search.

        Raises
        ------
        ModelError
            If no tied fit converges below ``max_persistence``.
        """
        from scipy import optimize

        if not can_tie(self.kind, self.mean):
            raise ValueError(f"variance targeting inside the likelihood does not apply to {self.label}")
        options = options or FitOptions()
        percent = np.asarray(returns, dtype=float) * SCALE
        sample_mean = float(percent.mean()) if self.mean in _DEMEANED else 0.0
        target = pd.Series(percent - sample_mean, index=returns.index, name="r")
        model = self._arch_model(target, options)
        n_held = options.hold_back
        residuals = target.to_numpy()[n_held:]
        volatility, law = model.volatility, model.distribution
        backcast = volatility.backcast(residuals)
        bounds_of_variance = volatility.variance_bounds(residuals)
        asymmetric = self.kind == "gjr_garch"
        n_vol = 3 if asymmetric else 2  # alpha, (gamma,) beta
        sigma2 = np.empty_like(residuals)

        no_residuals = np.empty(0)

        def at(theta: np.ndarray, kappa: float) -> float:
            """The tie's E[z^2 1(z<0)] at ``theta``: the law's, or the round's fixed value."""
            return asymmetry(no_residuals, theta[n_vol:]) if from_law else kappa

        def volatility_params(theta: np.ndarray, kappa: float) -> np.ndarray:
            kappa = at(theta, kappa)
            alpha, beta = theta[0], theta[n_vol - 1]
            gamma = theta[1] if asymmetric else 0.0
            omega = variance * (1.0 - alpha - kappa * gamma - beta)
            return np.array([omega, *theta[:n_vol]])

        def loglikelihood(theta: np.ndarray, kappa: float, individual: bool = False) -> Any:
            volatility.compute_variance(
                volatility_params(theta, kappa), residuals, sigma2, backcast, bounds_of_variance
            )
            return law.loglikelihood(theta[n_vol:], residuals, sigma2, individual=individual)

        free = start.params
        theta_free = [free["alpha"], *([free.get("gamma", 0.0)] if asymmetric else []), free["beta"]]
        theta_free += [free[key] for key in ("nu", "skew") if key in free]
        law_bounds = list(law.bounds(residuals))
        bounds = [(0.0, 1.0), *([(-1.0, 2.0)] if asymmetric else []), (0.0, 1.0), *law_bounds]

        def solve(kappa: float, first: np.ndarray) -> np.ndarray:
            def persistence_room(theta: np.ndarray) -> float:
                asymmetry_term = at(theta, kappa) * theta[1] if asymmetric else 0.0
                return float(1.0 - 1e-6 - theta[0] - theta[n_vol - 1] - asymmetry_term)

            constraints = [{"type": "ineq", "fun": persistence_room}]
            if asymmetric:
                constraints.append({"type": "ineq", "fun": lambda theta: float(theta[0] + theta[1])})
            n_obs = residuals.size

            def objective(theta: np.ndarray) -> float:
                value = -float(loglikelihood(theta, kappa)) / n_obs
                return value if math.isfinite(value) else 1e10

            best: Any = None
            for x0 in _tied_starts(first, kappa, asymmetric, n_vol):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = optimize.minimize(
                        objective,
                        x0,
                        method="SLSQP",
                        bounds=bounds,
                        constraints=constraints,
                        options={"maxiter": options.max_iterations, "ftol": 1e-12},
                    )
                feasible = persistence_room(result.x) >= -1e-9 and (
                    not asymmetric or result.x[0] + result.x[1] >= -1e-9
                )
                usable = feasible and bool(result.success) and math.isfinite(result.fun)
                if usable and (best is None or result.fun < best.fun):
                    best = result
            if best is None:
                raise ModelError(
                    f"{name}: the {self.label} fit with its long-run variance tied to the sample's did not "
                    "converge; set model.marginals.variance_targeting: omega, or fit without targeting"
                )
            return np.asarray(best.x, dtype=float)

        law_params = np.asarray(theta_free[n_vol:], dtype=float)
        kappa = asymmetry(start.std_residuals, law_params)
        theta = np.asarray(theta_free, dtype=float)
        for _ in range(_MAX_KAPPA_ROUNDS):
            theta = solve(kappa, theta)
            if from_law:
                kappa = at(theta, kappa)
                break
            loglikelihood(theta, kappa)  # leaves the fit's variances in sigma2
            # aligned with the whole series, as the free fit's residuals are (held-back rows missing)
            standardised = np.concatenate([np.full(n_held, np.nan), residuals / np.sqrt(sigma2)])
            updated = asymmetry(standardised, theta[n_vol:])
            if abs(updated - kappa) < 1e-10:
                break
            kappa = updated
        else:
            raise ModelError(
                f"{name}: the tied {self.label} fit's E[z^2 1(z<0)] did not settle ({kappa:.6f}); "
                "set model.marginals.variance_targeting: omega"
            )
        params = volatility_params(theta, kappa)
        persistence = 1.0 - params[0] / variance
        if not persistence < options.max_persistence:
            raise ModelError(
                f"{name}: the {self.label} fit with its long-run variance tied to the sample's has persistence "
                f"{persistence:.6f} (E[z^2 1(z<0)] = {kappa:.3f}), not below model.marginals.max_persistence "
                f"{options.max_persistence:g}; raise the limit, or try a longer data window or another model"
            )
        full = np.concatenate([params, theta[n_vol:]])
        result = model.fix(full)
        errors = _tied_standard_errors(
            lambda t: loglikelihood(t, kappa, individual=True), theta, lambda t: float(volatility_params(t, kappa)[0])
        )
        names = list(result.params.index)
        std_errors = {_OUR_NAMES[key]: errors[i] for i, key in enumerate(names)}
        # model.fix counts omega as a parameter: the sample variance the tie holds is estimated too,
        # so the tied fit has as many parameters as the free one
        fitted = self._fitted(result, returns, name, sample_mean, options, std_errors=std_errors)
        note = (
            f"{name} ({self.label}): long-run variance tied to the sample's inside the likelihood "
            f"(E[z^2 1(z<0)] = {kappa:.4f}); it costs {start.loglikelihood - fitted.loglikelihood:.2f} "
            "log-likelihood units against the free fit"
            if start.loglikelihood is not None and fitted.loglikelihood is not None
            else ""
        )
        return replace(fitted, warnings=(*start.warnings, *([note] if note else [])))

    def _attempt(self, model: Any, start: np.ndarray | None, options: FitOptions) -> _Attempt:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model.fit(
                    disp="off",
                    starting_values=start,
                    options={"maxiter": options.max_iterations},
                )
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
                return _Attempt(None, f"{type(error).__name__}: {error}".splitlines()[0], ())
        messages = tuple(
            dict.fromkeys(f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught)
        )
        if result.convergence_flag != 0:
            return _Attempt(result, str(result.optimization_result.message), messages)
        if not np.all(np.isfinite(result.params)):
            return _Attempt(result, "non-finite parameters", messages)
        return _Attempt(result, None, messages)

    def _fitted(
        self,
        result: Any,
        returns: pd.Series,
        name: str,
        sample_mean: float,
        options: FitOptions,
        std_errors: dict[str, float] | None = None,
    ) -> FittedMarginal:
        """``std_errors`` replace arch's for a result of :meth:`fit_targeted` (a fixed result has none)."""
        params = {_OUR_NAMES[key]: float(value) for key, value in result.params.items()}
        if std_errors is None:
            std_errors = {_OUR_NAMES[key]: float(value) for key, value in result.std_err.items()}
        percent = np.asarray(returns, dtype=float) * SCALE
        if self.mean in ("zero", *_DEMEANED):
            # sample_ar1: the intercept that puts the AR(1)'s mean mu / (1 - phi) at the sample's
            level = 1.0 - params.get("phi", 0.0) if self.mean == "sample_ar1" else 1.0
            params["mu"] = sample_mean * level
            std_errors["mu"] = (
                level * float(np.std(percent, ddof=1) / math.sqrt(percent.size)) if self.mean in _DEMEANED else 0.0
            )
        ordered: dict[str, float] = {
            key: params[key] for key in ("mu", "phi", "omega", "alpha", "gamma", "beta", "nu", "skew") if key in params
        }
        residuals = np.asarray(result.resid, dtype=float)
        variance = np.asarray(result.conditional_volatility, dtype=float) ** 2
        std_residuals = residuals / np.sqrt(variance)
        n_obs = int(result.nobs)
        lags = max(1, min(options.ljung_box_lags, n_obs // 5))
        finite = std_residuals[np.isfinite(std_residuals)]
        index = returns.index
        dated = isinstance(index, pd.DatetimeIndex) and index.size > 0
        diagnostics = FitDiagnostics(
            std_errors={key: std_errors.get(key, math.nan) for key in ordered},
            loglikelihood=float(result.loglikelihood),
            n_params=int(result.num_params) + (1 if self.mean in _DEMEANED else 0),
            n_obs=n_obs,
            ljung_box_lags=lags,
            ljung_box_p=ljung_box(finite, lags)[1],
            ljung_box_squared_p=ljung_box(finite**2, lags)[1],
            sample_start=str(index[0].date()) if dated else None,
            sample_end=str(index[-1].date()) if dated else None,
        )
        return FittedMarginal(
            name=name,
            kind=self.kind,
            dist=self.dist,
            mean=self.mean,
            params=ordered,
            last_variance=next_variance(self.kind, ordered, float(residuals[-1]), float(variance[-1])),
            last_return=float(percent[-1]),
            max_variance=float(np.nanmax(variance)),
            diagnostics=diagnostics,
            std_residuals=std_residuals,
            conditional_variance=variance,
        )

    def _failure(
        self, name: str, problems: list[str], non_stationary: list[FittedMarginal], options: FitOptions
    ) -> ModelError:
        what = "try a longer data window, another model, or set model.marginals.fallback"
        if non_stationary:
            persistence = max(m.persistence for m in non_stationary)
            return ModelError(
                f"{name}: the fitted {self.label} model has persistence {persistence:.6f} "
                f"(limit {options.max_persistence:g}), so simulated volatility would not settle; {what}"
            )
        return ModelError(
            f"{name}: the {self.label} fit did not converge from {len(problems)} starting points "
            f"({problems[0].partition(': ')[2]}); {what}"
        )


_MAX_KAPPA_ROUNDS = 50
"""Refits of :meth:`MarginalSpec.fit_targeted` until ``E[z^2 1(z<0)]`` agrees with the fit's residuals."""


def _tied_starts(first: np.ndarray, kappa: float, asymmetric: bool, n_vol: int) -> list[np.ndarray]:
    """The free fit's parameters pulled inside the tie's persistence limit, and a few others."""
    starts = []
    law = list(first[n_vol:])
    for shrink in (1.0, 0.99):
        theta = first.copy()
        persistence = theta[0] + theta[n_vol - 1] + (kappa * theta[1] if asymmetric else 0.0)
        if persistence > 0.995:
            theta[:n_vol] *= 0.995 / persistence
        theta[:n_vol] *= shrink
        starts.append(theta)
    others = ([0.02, 0.10, 0.90], [0.05, 0.05, 0.90], [0.0, 0.15, 0.88]) if asymmetric else ([0.05, 0.90], [0.10, 0.85])
    starts += [np.array([*volatility, *law], dtype=float) for volatility in others]
    return starts


def _tied_standard_errors(
    individual: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, omega: Callable[[np.ndarray], float]
) -> list[float]:
    """Robust (sandwich) standard errors of ``omega`` and ``theta``, from numerical derivatives.

    ``individual(theta)`` is the log-likelihood of each day. The scores are
    central differences; the Hessian is the central difference of their sum.
    ``omega``'s error is the delta method's through the tie ``omega(theta)``.
    Returned in arch's order: ``omega``, then ``theta``'s entries; NaN where
    the Hessian is singular.
    """
    size = theta.size
    steps = 1e-5 * np.maximum(np.abs(theta), 1e-2)

    def derivative(function: Callable[[np.ndarray], Any], at: np.ndarray, i: int) -> Any:
        """Central difference of ``function`` (a number or an array) in ``at[i]``."""
        up, down = at.copy(), at.copy()
        up[i] += steps[i]
        down[i] -= steps[i]
        return (np.asarray(function(up)) - np.asarray(function(down))) / (2.0 * steps[i])

    def scores(at: np.ndarray) -> np.ndarray:
        return np.column_stack([derivative(individual, at, i) for i in range(size)])

    outer = scores(theta)
    hessian = np.column_stack([derivative(lambda at: scores(at).sum(axis=0), theta, j) for j in range(size)])
    omega_gradient = np.array([derivative(omega, theta, i) for i in range(size)], dtype=float)
    hessian = 0.5 * (hessian + hessian.T)
    try:
        inverse = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return [math.nan] * (size + 1)
    covariance = inverse @ (outer.T @ outer) @ inverse
    omega_variance = float(omega_gradient @ covariance @ omega_gradient)
    errors = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    return [math.sqrt(max(omega_variance, 0.0)), *map(float, errors)]
