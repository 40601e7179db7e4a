"""Dependence between assets: a Gaussian copula on the volatility models' shocks.

Each day a vector of correlated standard normal scores ``x ~ N(0, R)`` is
drawn; asset ``i``'s unit-variance innovation is ``F_i^{-1}(Phi(x_i))`` where
``F_i`` is its innovation law. With normal innovations this is the identity,
so ``R`` is then the plain shock correlation.

``F^{-1}(Phi(x))`` for Student-t laws costs about a microsecond per value in
scipy, too slow for hundreds of millions of shocks. :class:`ScoreTransform`
tabulates it on a uniform grid of ``x`` and interpolates linearly; values
outside the grid (probability below 1e-17) use the exact function. Its error
is tested against the exact transform, for symmetric and skewed laws alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import special

from mcalloc.models.inversion import standard_normals
from mcalloc.models.marginals import FittedMarginal

__all__ = [
    "GaussianCopula",
    "ScoreTables",
    "ScoreTransform",
    "apply_transforms",
    "blend_correlation",
    "correlation_records",
    "fit_gaussian_copula",
    "joint_normal_scores",
    "mix_days",
    "nearest_correlation",
    "normal_scores",
]

_GRID_LIMIT = 8.5
_T_GRID_LIMIT = 40.0
_GRID_STEP = 1.0 / 512


@dataclass(frozen=True)
class ScoreTransform:
    """Fast ``x -> F^{-1}(G(x))`` for one marginal's innovation law.

    ``G`` is the standard normal CDF ``Phi`` (Gaussian and DCC copulas) or,
    with ``score_nu``, the Student-t CDF with that many degrees of freedom
    (t copula, whose scores have heavier tails and so a wider grid).
    """

    marginal: FittedMarginal
    score_nu: float | None = None
    base: np.ndarray = field(init=False, repr=False, compare=False)
    slope: np.ndarray = field(init=False, repr=False, compare=False)

    @property
    def limit(self) -> float:
        """Half-width of the tabulated grid of scores."""
        return self._limit

    @property
    def _limit(self) -> float:
        return _GRID_LIMIT if self.score_nu is None else _T_GRID_LIMIT

    def __post_init__(self) -> None:
        if self.marginal.dist != "normal" or self.score_nu is not None:
            grid = np.arange(-self._limit, self._limit + _GRID_STEP / 2, _GRID_STEP)
            table = self.exact(grid)
            object.__setattr__(self, "base", table[:-1].copy())
            object.__setattr__(self, "slope", np.diff(table))

    def exact(self, scores: np.ndarray) -> np.ndarray:
        """The transform computed directly with scipy (slow, exact).

        Scores at or below 0 go through the lower tail, positive ones through
        the upper tail (``F^{-1}`` of the survival probability ``G(-x)``), so
        ``G`` never rounds to 1; this holds for the skewed t, whose two tails
        differ.
        """
        if self.score_nu is None:
            return self.marginal.law.from_normal_scores(scores)
        scores = np.asarray(scores, dtype=float)
        law = self.marginal.law
        result = np.empty_like(scores)
        lower = scores <= 0.0
        result[lower] = law.ppf(special.stdtr(self.score_nu, scores[lower]))
        result[~lower] = law.isf(special.stdtr(self.score_nu, -scores[~lower]))
        return result

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Map copula scores (any shape) to unit-variance innovations."""
        if self.marginal.dist == "normal" and self.score_nu is None:
            return scores
        limit = self._limit
        position = scores * (1.0 / _GRID_STEP)
        position += limit / _GRID_STEP
        np.clip(position, 0.0, self.slope.size - 1e-9, out=position)
        index = position.astype(np.intp)
        position -= index
        result = np.take(self.slope, index)
        result *= position
        result += np.take(self.base, index)
        if scores.size and (scores.min() < -limit or scores.max() > limit):
            outside = np.abs(scores) > limit
            result[outside] = self.exact(scores[outside])
        return result


@dataclass(frozen=True)
class GaussianCopula:
    """A Gaussian copula with correlation matrix ``correlation`` (n_assets, n_assets).

    ``marginals`` give the innovation laws the scores are mapped to; without
    them :meth:`sample_innovations` needs ``transforms``.
    """

    correlation: np.ndarray
    marginals: tuple[FittedMarginal, ...] = ()
    kind: str = "gaussian"

    @cached_property
    def cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.correlation)

    @cached_property
    def transforms(self) -> list[ScoreTransform]:
        return [ScoreTransform(m) for m in self.marginals]

    def initial_state(self, n_paths: int, start: str) -> None:
        """Draws are independent from day to day: no state."""
        return None

    def sample_scores(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """Correlated standard normal scores of shape (n_paths, n_steps, n_assets).

        The normals are drawn day by day, series by series, one row of paths
        at a time (memory ordered (n_steps, n_assets, n_paths), the order the
        recursions work in); the result is a view in that memory order.
        """
        draws = standard_normals(rng, (n_steps, self.correlation.shape[0], n_paths))
        scores: np.ndarray = np.matmul(self.cholesky, draws).transpose(2, 0, 1)
        return scores

    def sample_days(
        self, rng: np.random.Generator, n_paths: int, n_steps: int, out: np.ndarray, state: object = None
    ) -> np.ndarray:
        """:meth:`sample_innovations` from the same draws, compiled, into ``out`` (n_steps, n_assets, n_paths)."""
        draws = standard_normals(rng, (n_steps, self.correlation.shape[0], n_paths))
        return mix_days(draws, self.cholesky, None, self.score_tables, out)

    @cached_property
    def score_tables(self) -> ScoreTables:
        return ScoreTables.of(self.transforms)

    def sample_innovations(
        self,
        rng: np.random.Generator,
        n_paths: int,
        n_steps: int,
        transforms: Sequence[ScoreTransform] | None = None,
        state: object = None,
    ) -> np.ndarray:
        """Unit-variance innovations of shape (n_paths, n_steps, n_assets)."""
        scores = self.sample_scores(rng, n_paths, n_steps)
        return apply_transforms(scores, self.transforms if transforms is None else transforms)

    def records(self) -> list[dict[str, object]]:
        """Rows of ``dependence.csv``: this model's parameters."""
        return correlation_records(self.kind, self.correlation)


@dataclass(frozen=True)
class ScoreTables:
    """The tables of several :class:`ScoreTransform` laid out for the compiled kernel.

    Row ``rows[i]`` of ``table`` is series ``i``'s table, each cell's base and
    slope side by side (one cache line holds both). Series with the same law
    share a row: with three normal marginals under a t copula the kernel then
    reads one table, not three, and keeps more of it in cache.
    """

    transforms: tuple[ScoreTransform, ...]
    identity: np.ndarray
    table: np.ndarray
    rows: np.ndarray
    limit: float

    @classmethod
    def of(cls, transforms: Sequence[ScoreTransform]) -> ScoreTables:
        identity = np.array([t.marginal.dist == "normal" and t.score_nu is None for t in transforms], dtype=np.bool_)
        tabulated = [t for t, plain in zip(transforms, identity, strict=True) if not plain]
        distinct: list[np.ndarray] = []
        rows = np.zeros(len(transforms), dtype=np.int64)
        for column, transform in enumerate(transforms):
            if identity[column]:
                continue
            pairs = np.column_stack([transform.base, transform.slope]).ravel()
            same = [index for index, known in enumerate(distinct) if np.array_equal(known, pairs)]
            if not same:
                distinct.append(pairs)
            rows[column] = same[0] if same else len(distinct) - 1
        table = np.stack(distinct) if distinct else np.zeros((1, 2))
        limit = tabulated[0].limit if tabulated else 0.0
        return cls(tuple(transforms), identity, table, rows, limit)


def mix_days(
    draws: np.ndarray, cholesky: np.ndarray, multiplier: np.ndarray | None, tables: ScoreTables, out: np.ndarray
) -> np.ndarray:
    """Innovations ``F^{-1}(G(m L z))`` for day-major normals ``draws`` (n_steps, n, n_paths), into ``out``.

    The compiled :func:`mcalloc.simulation.kernels.mix_scores` does the work;
    the rare scores off a transform's grid are transformed exactly here.
    """
    from mcalloc.simulation.kernels import mix_scores

    off_grid = mix_scores(
        draws,
        cholesky,
        _NO_MULTIPLIER if multiplier is None else multiplier,
        tables.identity,
        tables.table,
        tables.rows,
        tables.limit,
        _GRID_STEP,
        out,
    )
    if off_grid:
        scores = np.matmul(cholesky, draws)
        if multiplier is not None:
            scores *= multiplier[:, None, :]
        for column, transform in enumerate(tables.transforms):
            outside = np.abs(scores[:, column]) > tables.limit
            if not tables.identity[column] and outside.any():
                out[:, column][outside] = transform.exact(scores[:, column][outside])
    return out


_NO_MULTIPLIER = np.empty((0, 0))


def apply_transforms(scores: np.ndarray, transforms: Sequence[ScoreTransform]) -> np.ndarray:
    """Map each column of ``scores`` (n_paths, n_steps, n_assets) through its transform, in place."""
    for column, transform in enumerate(transforms):
        scores[:, :, column] = transform(scores[:, :, column])
    return scores


def correlation_records(
    kind: str, correlation: np.ndarray, names: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """One ``dependence.csv`` row per pair: ``kind, parameter, series, value``."""
    n = correlation.shape[0]
    labels = list(names) if names is not None else [str(i) for i in range(n)]
    return [
        {
            "kind": kind,
            "parameter": "correlation",
            "series": f"{labels[i]}|{labels[j]}",
            "value": float(correlation[i, j]),
        }
        for i in range(n)
        for j in range(i + 1, n)
    ]


def blend_correlation(correlation: np.ndarray, blend: float) -> np.ndarray:
    """``(1 - blend) R + blend 11'``: every correlation moved ``blend`` of the way to 1 (stays positive definite)."""
    if blend == 0.0:
        return correlation
    result = (1.0 - blend) * correlation + blend
    np.fill_diagonal(result, 1.0)
    return np.asarray(result)


def nearest_correlation(matrix: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Project a symmetric matrix onto a valid correlation matrix (eigenvalues clipped at ``floor``, unit diagonal)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    repaired = (vectors * np.maximum(values, floor)) @ vectors.T
    scale = np.sqrt(np.diag(repaired))
    result = np.clip(repaired / np.outer(scale, scale), -1.0, 1.0)
    np.fill_diagonal(result, 1.0)
    return np.asarray(result)


def normal_scores(marginal: FittedMarginal) -> np.ndarray:
    """Standardised residuals mapped through their fitted CDF and Phi^{-1} (NaN stays NaN)."""
    return marginal.law.to_normal_scores(marginal.std_residuals)


def lead_lag_correlation(scores: np.ndarray, lags: int, adjusted: Sequence[int] | None = None) -> np.ndarray:
    """Correlation of the columns of ``scores`` (n_obs, n_series), adding lead-lag terms.

    Series observed at different times of day (ECB fixings at 14:15 CET
    against US closes) show only part of their co-movement on the same day;
    the rest appears a day later. Following Dimson (1979), the same-day
    cross-correlations are augmented with the cross-correlations at leads and
    lags up to ``lags`` days, for the pairs that involve a column listed in
    ``adjusted`` (default: all pairs); the result is projected onto the
    nearest valid correlation matrix (eigenvalues clipped at 1e-6, unit
    diagonal).
    """
    correlation = np.atleast_2d(np.corrcoef(scores, rowvar=False))
    n_series = correlation.shape[0]
    involved = np.zeros(n_series, dtype=bool)
    involved[list(range(n_series)) if adjusted is None else list(adjusted)] = True
    pairs = involved[:, None] | involved[None, :]
    for lag in range(1, lags + 1):
        joint = np.corrcoef(scores[lag:], scores[:-lag], rowvar=False)
        cross = joint[:n_series, n_series:]  # corr(x_i at t, x_j at t - lag)
        correlation = correlation + np.where(pairs, cross + cross.T, 0.0)
    np.fill_diagonal(correlation, 1.0)
    if lags == 0:
        return correlation
    return nearest_correlation(correlation)


def fit_gaussian_copula(
    marginals: Sequence[FittedMarginal], lags: int = 0, adjusted: Sequence[int] | None = None
) -> GaussianCopula:
    """Correlation of the normal scores of the fitted standardised residuals.

    Days where some model held back its residual (AR(1) means) are left out.
    ``lags`` adds lead-lag cross-correlations for series fixed at different
    times of day (see :func:`lead_lag_correlation`).
    """
    return GaussianCopula(correlation=lead_lag_correlation(joint_normal_scores(marginals), lags, adjusted))


def joint_normal_scores(marginals: Sequence[FittedMarginal], rows: np.ndarray | None = None) -> np.ndarray:
    """Normal scores of every series' residuals, shape (n_obs, n_series), days with a missing one dropped.

    ``rows`` (boolean, one per fitted day) keeps only those days.
    """
    scores = np.column_stack([normal_scores(m) for m in marginals])
    keep = np.isfinite(scores).all(axis=1)
    if rows is not None:
        keep &= rows
    return np.asarray(scores[keep])
