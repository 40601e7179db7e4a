"""Which model each series gets: the one named, the lowest BIC among candidates, or the fallback when a fit fails.

:class:`mcalloc.models.fitting.MarginalSpec` fits one model;
``model.marginals`` says which (``kind: auto`` lists the candidates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from mcalloc.config.model_schema import (
    AR_MEANS,
    Distribution,
    MarginalKind,
    MarginalsConfig,
    MeanKind,
    ModelChoice,
)
from mcalloc.errors import ModelError
from mcalloc.models.diagnostics import CandidateFit
from mcalloc.models.fitting import FitOptions, MarginalSpec
from mcalloc.models.marginals import FittedMarginal

__all__ = ["fallback_spec", "fit_fallback", "fit_series", "select_marginal"]


def _choice(choice: ModelChoice, default_mean: MeanKind) -> MarginalSpec:
    return MarginalSpec(kind=choice.kind, dist=choice.dist, mean=choice.mean or default_mean)


def fallback_spec(config: MarginalsConfig) -> MarginalSpec | None:
    """The model ``model.marginals.fallback`` names, if any."""
    return None if config.fallback is None else _choice(config.fallback, config.mean)


def select_marginal(
    returns: pd.Series,
    name: str,
    candidates: list[tuple[MarginalKind, Distribution, MeanKind]],
    options: FitOptions | None = None,
) -> FittedMarginal:
    """Fit every candidate and keep the one with the lowest BIC.

    The returned model carries the whole table in ``candidates`` (failed
    fits included, with their error) and a warning per failed candidate.

    Raises
    ------
    ModelError
        If no candidate could be fitted.
    """
    options = options or FitOptions()
    if any(mean in AR_MEANS for _, _, mean in candidates):
        options = replace(options, hold_back=max(options.hold_back, 1))
    fits: list[FittedMarginal | None] = []
    rows: list[CandidateFit] = []
    notes: list[str] = []
    for kind, dist, mean in candidates:
        spec = MarginalSpec(kind, dist, mean)
        try:
            fitted = spec.fit(returns, name, options)
        except ModelError as error:
            fits.append(None)
            rows.append(CandidateFit(kind, dist, mean, error=str(error)))
            notes.append(f"{name}: candidate {spec.label} dropped: {error}")
            continue
        diagnostics = fitted.diagnostics
        assert diagnostics is not None
        fits.append(fitted)
        rows.append(
            CandidateFit(
                kind,
                dist,
                mean,
                loglikelihood=diagnostics.loglikelihood,
                n_params=diagnostics.n_params,
                aic=diagnostics.aic,
                bic=diagnostics.bic,
                persistence=fitted.persistence,
            )
        )
    usable = [i for i, fitted in enumerate(fits) if fitted is not None]
    if not usable:
        raise ModelError(
            f"{name}: none of the {len(candidates)} candidate models could be fitted "
            f"(first: {rows[0].error}); add simpler candidates or set model.marginals.fallback"
        )
    best = min(usable, key=lambda i: rows[i].bic)
    rows[best] = replace(rows[best], selected=True)
    chosen = fits[best]
    assert chosen is not None
    return replace(chosen, candidates=tuple(rows), warnings=(*notes, *chosen.warnings))


def fit_series(
    returns: pd.Series, name: str, config: MarginalsConfig, options: FitOptions | None = None
) -> FittedMarginal:
    """Fit one series as the scenario's ``marginals`` section asks: one model, or ``auto``; then the fallback.

    Raises
    ------
    ModelError
        If the model (or every candidate) fails and there is no fallback, or
        the fallback fails too.
    """
    options = replace(options or FitOptions(), max_persistence=config.max_persistence)
    try:
        if config.kind == "auto":
            return select_marginal(returns, name, config.candidate_models(), options)
        return MarginalSpec(config.kind, config.dist, config.mean).fit(returns, name, options)
    except ModelError as error:
        fitted, _ = fit_fallback(returns, name, config, options, error)
        return fitted


def fit_fallback(
    returns: pd.Series,
    name: str,
    config: MarginalsConfig,
    options: FitOptions,
    error: ModelError,
    then: Callable[[MarginalSpec, FittedMarginal], FittedMarginal] | None = None,
) -> tuple[FittedMarginal, MarginalSpec]:
    """After ``error``, ``model.marginals.fallback`` fitted instead (and passed through ``then``), with a note.

    Raises
    ------
    ModelError
        ``error`` itself without a fallback (or data too short for one); one
        naming both failures if the fallback fails too.
    """
    spec = fallback_spec(config)
    if spec is None or len(returns) < options.min_observations:
        raise error
    try:
        fitted = spec.fit(returns, name, options)
        if then is not None:
            fitted = then(spec, fitted)
    except ModelError as second:
        reason = str(second).removeprefix(f"{name}: ")
        raise ModelError(f"{error}; the fallback {spec.label} failed too: {reason}") from None
    said = str(error) if str(error).startswith(f"{name}: ") else f"{name}: {error}"
    return replace(fitted, warnings=(f"{said} -> used the fallback {spec.label}", *fitted.warnings)), spec
