"""The joint model from the calibrated parameters a scenario holds (``mcalloc calibrate`` writes them).

Also the pieces a fit shares with it: the factor's regimes laid out, the
resampled residuals given to each marginal, and the stationarity check
with those residuals' skew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mcalloc.config.model_schema import DependenceConfig
from mcalloc.config.schema import ModelConfig
from mcalloc.errors import DataError, ModelError
from mcalloc.models.bootstrap import MAX_STANDARDISED, ResidualBootstrap
from mcalloc.models.copulas import DccCopula, TCopula
from mcalloc.models.dcc import FittedDCC
from mcalloc.models.dependence import GaussianCopula, blend_correlation
from mcalloc.models.factor import FactorStructure
from mcalloc.models.joint import Dependence, JointModel
from mcalloc.models.marginals import FittedMarginal

if TYPE_CHECKING:
    # as in mcalloc.models.joint: pandas, the data layer and arch's fitting are imported where they are used
    import pandas as pd


__all__ = [
    "check_stationary",
    "joint_model_from_config",
    "mean_uncertainty_years",
    "read_residuals",
    "span_years",
    "switching_structure",
    "with_empirical_shocks",
]


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
    return switching_structure(
        names.index(factor.market), loadings, names.index(regimes.series), padded, np.array(regimes.transition)
    )


def switching_structure(
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
        fixed = with_empirical_shocks(fixed, bootstrap)
        check_stationary(fixed)
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
        mean_years=mean_uncertainty_years(config, None),
        mean_covariance=_given_mean_covariance(config, asset_names),
    )


def _given_mean_covariance(config: ModelConfig, names: list[str]) -> np.ndarray | None:
    """``mean_uncertainty.covariance`` with rows and columns in the order of ``names`` (its ``series`` name them)."""
    uncertainty = config.mean_uncertainty
    if uncertainty is None or uncertainty.covariance is None or uncertainty.series is None:
        return None
    order = [uncertainty.series.index(name) for name in names]
    return np.array(uncertainty.covariance, dtype=float)[np.ix_(order, order)]


def mean_uncertainty_years(config: ModelConfig, index: pd.Index | None) -> float | None:
    """``model.mean_uncertainty.years`` as a number: ``data`` is the fitted sample's span in calendar years."""
    if config.mean_uncertainty is None:
        return None
    years = config.mean_uncertainty.years
    if years != "data":
        return float(years)
    if index is None or len(index) < 2:
        raise ModelError("model.mean_uncertainty.years: data needs fitted data; give a number of years")
    return span_years(index)


def span_years(index: pd.Index) -> float:
    """The calendar years a sample of returns dated ``index`` covers."""
    span = (index[-1] - index[0]).days / 365.25
    # the dates are the first and last return's: one step more of evidence than their distance
    return float(span * len(index) / (len(index) - 1))


def with_empirical_shocks(
    marginals: tuple[FittedMarginal, ...], bootstrap: ResidualBootstrap
) -> tuple[FittedMarginal, ...]:
    """Each marginal with its column of the residuals ``bootstrap`` resamples as its shocks (their moments count)."""
    return tuple(replace(m, empirical_shocks=bootstrap.column(index)) for index, m in enumerate(marginals))


def check_stationary(marginals: Sequence[FittedMarginal], limit: float | None = None) -> None:
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
