"""Checks of a calibrated model against the scenario it runs in: complete parameters, consistent variances.

A calibrated model (parameters written by ``mcalloc calibrate``) is checked
here, once the scenario's series and start are known; the units are those of
:mod:`mcalloc.config.model_schema`.
"""

from __future__ import annotations

import math

import numpy as np

from mcalloc.config.model_schema import AR_MEANS, NU_FLOOR, MarginalParams, ModelConfig, StartConfig

__all__ = ["check_calibrated_model"]


def check_calibrated_model(model: ModelConfig, names: list[str], start: StartConfig) -> None:
    """Check that calibrated parameters are complete for ``names`` and the start.

    Raises
    ------
    ValueError
        Whose message starts with the full key path (``model.marginals.params.sp500.nu: ...``).
    """
    marginals = model.marginals
    params = marginals.params or {}
    for name in names:
        if name not in params:
            continue
        own = params[name]
        key = f"model.marginals.params.{name}"
        kind, dist, mean = marginals.model_of(name)
        if kind == "auto":
            raise ValueError(
                f"{key}.kind: required when marginals.kind is auto and the model is calibrated; "
                "give the series' own kind, dist and mean (mcalloc calibrate writes them)"
            )
        if dist in ("t", "skewt") and own.nu is None:
            label = "Student-t" if dist == "t" else "skewed-t"
            raise ValueError(f"{key}.nu: {label} innovations need 'nu' (degrees of freedom, at least {NU_FLOOR})")
        if dist == "skewt" and own.skew is None:
            raise ValueError(f"{key}.skew: skewed-t innovations need 'skew' (in (-1, 1))")
        hint = "add it (mcalloc calibrate writes it) or choose another simulation.start.kind"
        if start.kind == "last" and own.last_variance is None:
            raise ValueError(f"{key}.last_variance: needed by simulation.start.kind: last; {hint}")
        if start.kind == "last" and mean in AR_MEANS and own.last_return is None:
            raise ValueError(f"{key}.last_return: needed by simulation.start.kind: last with mean: {mean}; {hint}")
        if start.kind == "historical_max" and own.max_variance is None:
            raise ValueError(f"{key}.max_variance: needed by simulation.start.kind: historical_max; {hint}")
        if start.kind == "stressed" and own.stressed_variance is None:
            raise ValueError(f"{key}.stressed_variance: needed by simulation.start.kind: stressed; {hint}")
        _check_fitted_variances(key, kind, own, marginals.variance_ceiling)
        if start.kind == "unconditional" and kind == "egarch" and dist != "normal" and (own.alpha or own.gamma):
            raise ValueError(
                f"{key}: an EGARCH with {dist} shocks has an infinite unconditional variance; "
                "choose another simulation.start.kind"
            )
    _check_mean_covariance(model, names)


def _check_fitted_variances(key: str, kind: str, own: MarginalParams, ceiling: float | None) -> None:
    """The fitted variances the variance ceiling and a stressed start read, against each other and the long-run level.

    A variance given in the wrong units (a decimal where percent squared per
    step is meant) put the ceiling far below the model's own level: the run
    held every path's volatility under it, and reported the S&P 500 at 1% a
    year without a word. Only a gap no fit can produce is refused (a tenth of
    the long-run variance): a ceiling of 1 or 2 may bind at a near-integrated
    fit's long-run level, and a ``last`` start above the ceiling starts at it,
    as documented.
    """
    top = own.max_variance
    if top is None:
        return
    hint = "variances are in percent squared per step, as mcalloc calibrate writes them"
    if ceiling is not None and kind in ("garch", "gjr_garch"):
        cap = ceiling * top
        persistence = own.alpha + (0.5 * own.gamma if kind == "gjr_garch" else 0.0) + own.beta
        long_run = own.omega / (1.0 - persistence) if persistence < 1.0 else math.inf
        if long_run > 10.0 * cap:
            raise ValueError(
                f"{key}.max_variance: {top:g} x variance_ceiling {ceiling:g} caps the variance at {cap:.3g}, under "
                f"a tenth of the model's long-run variance of {long_run:.3g}, so every path would be held far below "
                f"it; {hint} (or raise model.marginals.variance_ceiling, null for none)"
            )
    # both are fitted variances of days in the sample, the largest and one of them (written at full precision)
    if own.stressed_variance is not None and own.stressed_variance > top * (1.0 + 1e-9):
        raise ValueError(
            f"{key}.stressed_variance: {own.stressed_variance:g} is above max_variance {top:g}, the largest fitted "
            f"variance, of which it is one; {hint}"
        )


def _check_mean_covariance(model: ModelConfig, names: list[str]) -> None:
    """``mean_uncertainty.covariance``: the scenario's series, one row and column each, symmetric, positive definite."""
    uncertainty = model.mean_uncertainty
    if uncertainty is None or uncertainty.covariance is None or uncertainty.series is None:
        return
    key = "model.mean_uncertainty"
    hint = "calibrate again (mcalloc calibrate writes both), or set series and covariance to null"
    series, rows = uncertainty.series, uncertainty.covariance
    if sorted(series) != sorted(names):
        raise ValueError(
            f"{key}.series: names {', '.join(series)}, but the scenario's series are {', '.join(names)}; {hint}"
        )
    n = len(series)
    if len(rows) != n or any(len(row) != n for row in rows):
        raise ValueError(f"{key}.covariance: needs {n} rows of {n} values, one per series ({', '.join(series)})")
    matrix = np.array(rows, dtype=float)
    for i in range(n):
        if not (math.isfinite(matrix[i, i]) and matrix[i, i] > 0.0):
            raise ValueError(
                f"{key}.covariance: the variance of {series[i]} must be a positive number (got {rows[i][i]})"
            )
        for j in range(i):
            if not (
                math.isfinite(matrix[i, j]) and abs(matrix[i, j] - matrix[j, i]) <= 1e-10 * max(1.0, abs(matrix[i, j]))
            ):
                raise ValueError(
                    f"{key}.covariance: not symmetric at {series[i]}|{series[j]} ({rows[i][j]} against {rows[j][i]})"
                )
    if np.linalg.eigvalsh(matrix).min() <= 0.0:
        raise ValueError(f"{key}.covariance: not positive definite, so no offsets can be drawn from it; {hint}")
