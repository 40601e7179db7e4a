"""Dynamic conditional correlation: DCC(1,1) (Engle 2002) as a copula on normal scores.

Notation, for ``k`` series (``k`` at most 5 in practice): ``u_t`` (k,) are the
normal scores ``Phi^{-1}(F_i(z_it))`` of the series' standardised
residuals on day ``t``, each roughly N(0, 1). ``Q_t`` (k, k) is a
positive definite "quasi-correlation" that follows

    Q_{t+1} = (1 - a - b) Qbar + a u_t u_t' + b Q_t,    Q_1 = Qbar,

and ``R_t = diag(Q_t)^{-1/2} Q_t diag(Q_t)^{-1/2}`` is the correlation of
day ``t``: ``u_t ~ N(0, R_t)``. ``a >= 0`` is the weight of yesterday's
scores, ``b >= 0`` the memory, and ``a + b < 1`` makes ``Q_t`` revert to
``Qbar`` (half-life ``ln(1/2) / ln(a + b)`` days).

Fitting is Engle's two-step estimator with correlation targeting: ``Qbar`` is
the sample correlation of the scores, then ``(a, b)`` maximise the
correlation part of the Gaussian log-likelihood. ``Qbar`` is therefore a
correlation matrix for fitted models and for models from a config. It is only
approximately the unconditional correlation of the simulated scores: ``E[R_t]``
differs slightly from ``Qbar`` because of the normalisation (Aielli 2013).

Both the likelihood and the simulation keep the lower triangle of each
``Q_t`` packed column by column, ``(Q_00, Q_10, ..., Q_{k-1,0}, Q_11, ...)``,
with the days (likelihood) or the paths (simulation) along the last, contiguous
axis. A right-looking Cholesky factorisation then runs one column at a time
on whole rows of days or paths: a few dozen numpy calls per step for ``k = 4``
whatever the number of paths. For 1000 paths this was about 2.5 times faster
than ``np.linalg.cholesky`` on the stacked (n_paths, k, k) matrices, which
calls LAPACK once per matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import scipy

from mcalloc.errors import ModelError
from mcalloc.models.inversion import standard_normals

__all__ = [
    "FittedDCC",
    "check_dcc_parameters",
    "dcc_loglikelihood",
    "fit_dcc",
]

CONFIG_KEY = "model.dependence.dcc"
MIN_OBSERVATIONS = 100

# (a, b) starting points for the fit: typical daily estimates lie near these
_STARTS = ((0.02, 0.95), (0.05, 0.90), (0.01, 0.98))
# a + b at or above this counts as integrated correlation, not a stationary fit
_MAX_PERSISTENCE = 0.9999
# finite-difference step for the Hessian of the log-likelihood in (a, b)
_HESSIAN_STEP = 1e-4


def check_dcc_parameters(a: float, b: float, key: str) -> str | None:
    """One-line problem with DCC parameters, or ``None`` if they are usable.

    Parameters
    ----------
    a, b
        The weights of yesterday's scores and of yesterday's ``Q``.
    key
        Key path of the parameters in the scenario, e.g. ``model.dependence.dcc``;
        the message starts with it.
    """
    if not (math.isfinite(a) and math.isfinite(b)):
        return f"{key}: a = {a} and b = {b} must be finite numbers"
    if a < 0.0:
        return f"{key}: a = {a:.6g} must be at least 0 (it is the weight of yesterday's scores)"
    if b < 0.0:
        return f"{key}: b = {b:.6g} must be at least 0 (it is the weight of yesterday's correlation)"
    if a + b >= 1.0:
        return (
            f"{key}: a + b = {a + b:.6g} must be below 1 for correlations to revert to their "
            "long-run level; lower b (daily fits typically give a + b between 0.95 and 0.995)"
        )
    return None


@cache
def _packed_layout(n_series: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Rows and columns of the packed lower triangle, and where each column starts.

    Column ``j`` holds ``(j, j), (j + 1, j), ..., (k - 1, j)`` at positions
    ``offsets[j]:offsets[j + 1]``.
    """
    rows = np.concatenate([np.arange(j, n_series) for j in range(n_series)])
    cols = np.concatenate([np.full(n_series - j, j) for j in range(n_series)])
    offsets = (0, *np.cumsum(np.arange(n_series, 0, -1)).tolist())
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols, offsets


def _unpack(packed: np.ndarray, n_series: int) -> np.ndarray:
    """Symmetric (..., k, k) matrices from packed lower triangles (..., m)."""
    rows, cols, _ = _packed_layout(n_series)
    full = np.empty((*packed.shape[:-1], n_series, n_series))
    full[..., rows, cols] = packed
    full[..., cols, rows] = packed
    return full


def _cholesky_in_place(packed: np.ndarray, offsets: Sequence[int], scratch: np.ndarray, recip: np.ndarray) -> None:
    """Overwrite packed positive definite matrices with their lower Cholesky factors.

    Parameters
    ----------
    packed
        ndarray of shape (m, n_matrices): lower triangles in the packed
        column layout, one matrix per column of the array.
    offsets
        Where each matrix column starts in ``packed`` (from :func:`_packed_layout`).
    scratch, recip
        Work space of shapes (k, n_matrices) and (n_matrices,).
    """
    n_series = len(offsets) - 1
    for j in range(n_series):
        column = packed[offsets[j] : offsets[j + 1]]
        np.sqrt(column[0], out=column[0])
        if j + 1 == n_series:
            break
        np.divide(1.0, column[0], out=recip)
        below = column[1:]
        below *= recip
        # right-looking: remove this column's contribution from the columns to its right
        for right in range(j + 1, n_series):
            part = below[right - j - 1 :]
            update = scratch[: part.shape[0]]
            np.multiply(part, part[0], out=update)
            packed[offsets[right] : offsets[right + 1]] -= update


def _check_inputs(scores: np.ndarray, qbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    qbar = np.asarray(qbar, dtype=float)
    if scores.ndim != 2 or qbar.shape != (scores.shape[1], scores.shape[1]):
        raise ValueError(f"scores must be (n_obs, k) and qbar (k, k); got {scores.shape} and {qbar.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite; drop the days with missing values first")
    if not np.allclose(qbar, qbar.T) or np.linalg.eigvalsh(qbar).min() <= 0.0:
        raise ValueError("qbar must be symmetric positive definite")
    return scores, qbar


def _filter(a: float, b: float, scores: np.ndarray, qbar: np.ndarray) -> tuple[float, np.ndarray]:
    """Log-likelihood and ``Q_{n_obs + 1}`` (k, k), without checking the inputs."""
    n_obs, n_series = scores.shape
    rows, cols, offsets = _packed_layout(n_series)
    target = qbar[rows, cols]
    # Q_t - b Q_{t-1} = (1 - a - b) Qbar + a u_{t-1} u_{t-1}' is a linear filter of the outer products
    drive = np.empty((n_obs + 1, rows.size))
    drive[0] = target
    np.multiply(scores[:, rows], scores[:, cols], out=drive[1:])
    drive[1:] *= a
    drive[1:] += (1.0 - a - b) * target
    path = scipy.signal.lfilter([1.0], [1.0, -b], drive, axis=0)  # Q_1 ... Q_{n_obs + 1}
    factor = np.ascontiguousarray(path[:-1].T)  # (m, n_obs)
    diagonal = factor[list(offsets[:-1])]  # Q_ii, (k, n_obs)
    scratch = np.empty((n_series, n_obs))
    _cholesky_in_place(factor, offsets, scratch, np.empty(n_obs))
    # in terms of Q: log det R = log det Q - sum log Q_ii and u'R^{-1}u = w'Q^{-1}w with w = diag(Q)^{1/2} u
    solved = np.sqrt(diagonal) * scores.T
    log_det_q = np.zeros(n_obs)
    for j in range(n_series):
        column = factor[offsets[j] : offsets[j + 1]]
        log_det_q += np.log(column[0])
        solved[j] /= column[0]
        if j + 1 < n_series:
            solved[j + 1 :] -= column[1:] * solved[j]
    log_det_r = 2.0 * log_det_q - np.log(diagonal).sum(axis=0)
    total = log_det_r.sum() + np.square(solved).sum() - np.square(scores).sum()
    return -0.5 * float(total), _unpack(path[-1], n_series)


def dcc_loglikelihood(a: float, b: float, scores: np.ndarray, qbar: np.ndarray) -> float:
    """Correlation part of the Gaussian DCC log-likelihood.

    ``sum_t -0.5 (log det R_t + u_t' R_t^{-1} u_t - u_t' u_t)``: the log density
    of the scores under ``N(0, R_t)`` minus that of independent standard
    normals, i.e. the Gaussian copula log density given the path of ``R_t``.
    The ``-k/2 log(2 pi)`` terms cancel between the two, and the volatility part
    of Engle's (2002) likelihood is left out because it does not depend on
    ``(a, b)``.

    Parameters
    ----------
    a, b
        DCC parameters, ``a >= 0``, ``b >= 0``, ``a + b < 1``.
    scores
        ndarray of shape (n_obs, k): normal scores, finite.
    qbar
        ndarray of shape (k, k): the target, symmetric positive definite.

    Returns
    -------
    float
        The log-likelihood summed over the ``n_obs`` days, in nats.
    """
    problem = check_dcc_parameters(a, b, "dcc_loglikelihood")
    if problem is not None:
        raise ValueError(problem)
    scores, qbar = _check_inputs(scores, qbar)
    return _filter(a, b, scores, qbar)[0]


def _simulate_from_normals(normals: np.ndarray, q: np.ndarray, a: float, b: float, qbar: np.ndarray) -> np.ndarray:
    """Turn standard normals into DCC scores, in place, continuing from ``q``.

    Parameters
    ----------
    normals
        ndarray of shape (n_paths, n_steps, k): independent standard normals
        ``e_t``, overwritten with the scores ``u_t = chol(R_t) e_t``.
    q
        ndarray of shape (n_paths, k, k): ``Q`` of each path's first day,
        overwritten with ``Q`` of the day after the last one.
    a, b, qbar
        The model.

    Returns
    -------
    ndarray of shape (n_paths, n_steps, k)
        ``normals``.
    """
    n_paths, n_steps, n_series = normals.shape
    if n_steps == 0:
        return normals
    offsets = _packed_layout(n_series)[2]
    level, deviation = _packed_deviation(q, a, b, qbar)
    level = level[:, None]
    # time-major with paths last, so every operation below runs on contiguous rows
    block = np.ascontiguousarray(normals.transpose(1, 2, 0))
    factor = np.empty_like(deviation)
    scale = np.empty((n_series, n_paths))
    product = np.empty((n_series, n_paths))
    scratch = np.empty((n_series, n_paths))
    recip = np.empty(n_paths)
    diagonal = list(offsets[:-1])
    root_a = math.sqrt(a)
    for step in range(n_steps):
        np.add(deviation, level, out=factor)
        np.sqrt(factor[diagonal], out=scale)
        _cholesky_in_place(factor, offsets, scratch, recip)
        shocks = block[step]
        # u = diag(Q)^{-1/2} L e, where L L' = Q: the Cholesky factor of R is diag(Q)^{-1/2} L
        for j in range(n_series):
            column = factor[offsets[j] : offsets[j + 1]]
            if j == 0:
                np.multiply(column, shocks[0], out=product)
            else:
                update = scratch[: n_series - j]
                np.multiply(column, shocks[j], out=update)
                product[j:] += update
        np.divide(product, scale, out=shocks)
        deviation *= b
        np.multiply(shocks, root_a, out=product)
        for j in range(n_series):
            update = scratch[: n_series - j]
            np.multiply(product[j:], product[j], out=update)
            deviation[offsets[j] : offsets[j + 1]] += update
    normals[...] = block.transpose(2, 0, 1)
    deviation += level
    q[...] = _unpack(deviation.T, n_series)
    return normals


def _packed_deviation(q: np.ndarray, a: float, b: float, qbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``level = (1 - a - b) / (1 - b) Qbar`` (m,) and each path's ``Q - level`` (m, n_paths), packed.

    ``Q_t - level`` decays at rate ``b`` between shocks, which saves adding
    the target every day; the layout is :func:`_packed_layout`'s.
    """
    rows, cols, _ = _packed_layout(qbar.shape[0])
    level = (1.0 - a - b) / (1.0 - b) * qbar[rows, cols]
    deviation = np.ascontiguousarray(q[:, rows, cols].T)
    deviation -= level[:, None]
    return level, deviation


def _matrix_problem(matrix: np.ndarray, key: str) -> str | None:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        return f"{key}: must be a square matrix, got shape {matrix.shape}"
    if not np.isfinite(matrix).all() or not np.allclose(matrix, matrix.T, atol=1e-10):
        return f"{key}: must be symmetric with finite entries"
    if np.linalg.eigvalsh(matrix).min() <= 1e-10:
        return f"{key}: must be positive definite; use a consistent set of pairwise correlations"
    return None


@dataclass(frozen=True)
class FittedDCC:
    """A DCC(1,1) model with known parameters, ready to simulate normal scores.

    Attributes
    ----------
    a, b
        Weights of yesterday's scores and of yesterday's ``Q``.
    qbar
        ndarray of shape (k, k): the target ``Qbar``, a correlation matrix
        when fitted by :func:`fit_dcc` or read by :meth:`from_config`.
    last_q
        ndarray of shape (k, k): ``Q`` of the day after the data ends, or
        ``None`` if unknown (parameters from a config without it).
    loglikelihood
        :func:`dcc_loglikelihood` at the fit, in nats (NaN if not fitted).
    n_obs
        Days used by the fit (0 if not fitted).
    std_errors
        Standard errors of ``(a, b)`` from the numerical Hessian, or ``None``
        when it is not positive definite or the estimate is on the boundary.
        They treat ``Qbar`` as known, so they understate the uncertainty of
        the two-step estimator somewhat (Engle and Sheppard 2001).
    """

    a: float
    b: float
    qbar: np.ndarray
    last_q: np.ndarray | None = None
    loglikelihood: float = math.nan
    n_obs: int = 0
    std_errors: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        problem = check_dcc_parameters(self.a, self.b, "FittedDCC")
        if problem is not None:
            raise ValueError(problem)
        qbar = np.array(self.qbar, dtype=float)
        if qbar.ndim != 2 or qbar.shape[0] != qbar.shape[1]:
            raise ValueError(f"FittedDCC: qbar must be a square matrix, got shape {qbar.shape}")
        qbar.setflags(write=False)
        object.__setattr__(self, "qbar", qbar)
        if self.last_q is not None:
            last_q = np.array(self.last_q, dtype=float)
            if last_q.shape != qbar.shape:
                raise ValueError(f"FittedDCC: last_q has shape {last_q.shape}, qbar {qbar.shape}")
            last_q.setflags(write=False)
            object.__setattr__(self, "last_q", last_q)

    @property
    def n_series(self) -> int:
        return int(self.qbar.shape[0])

    @property
    def correlation(self) -> np.ndarray:
        """The long-run correlation: ``qbar`` scaled to unit diagonal, (k, k)."""
        scale = np.sqrt(np.diag(self.qbar))
        correlation: np.ndarray = self.qbar / np.outer(scale, scale)
        np.fill_diagonal(correlation, 1.0)
        return correlation

    def q_after(self, scores: np.ndarray) -> np.ndarray:
        """``Q`` of the day after ``scores`` (n_obs, k), run from ``qbar`` as the fit runs it (missing rows skipped)."""
        data = np.asarray(scores, dtype=float)
        data = data[np.isfinite(data).all(axis=1)]
        if data.shape[0] == 0:
            return np.array(self.qbar, dtype=float)
        return _filter(self.a, self.b, data, self.qbar)[1]

    def initial_q(self, n_paths: int, start: Literal["long_run", "last"] = "long_run") -> np.ndarray:
        """``Q`` of each path's first day, ndarray of shape (n_paths, k, k) (a new array).

        ``long_run`` starts every path from ``qbar``; ``last`` from the ``Q``
        of the day after the data.

        Raises
        ------
        ModelError
            For ``last`` when ``last_q`` is unknown.
        """
        if start == "last":
            if self.last_q is None:
                raise ModelError(f"{CONFIG_KEY}.last_q: unknown, so simulation.start.kind: last cannot be used")
            first = self.last_q
        else:
            first = self.qbar
        return np.tile(first, (n_paths, 1, 1))

    def sample_scores(
        self, rng: np.random.Generator, q: np.ndarray, n_steps: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Simulate ``n_steps`` days of correlated normal scores for each path.

        Parameters
        ----------
        rng
            Source of the standard normals, drawn in one call of shape
            (n_paths, n_steps, k).
        q
            ndarray of shape (n_paths, k, k): ``Q`` of each path's next day
            (from :meth:`initial_q`). Updated in place, so a second call
            continues the same paths.
        n_steps
            Days to simulate.
        out
            Optional C-contiguous float64 array of shape (n_paths, n_steps, k)
            to fill and return instead of a new one.

        Returns
        -------
        ndarray of shape (n_paths, n_steps, k)
            Scores, each N(0, 1) with day-``t`` correlation ``R_t``.
        """
        n_series = self.n_series
        if q.ndim != 3 or q.shape[1:] != (n_series, n_series):
            raise ValueError(f"q must have shape (n_paths, {n_series}, {n_series}), got {q.shape}")
        shape = (q.shape[0], n_steps, n_series)
        if out is None:
            normals = standard_normals(rng, shape)
        else:
            if out.shape != shape:
                raise ValueError(f"out must have shape {shape}, got {out.shape}")
            normals = standard_normals(rng, out=out)
        return _simulate_from_normals(normals, q, self.a, self.b, self.qbar)

    def sample_scores_day_major(self, rng: np.random.Generator, q: np.ndarray, n_steps: int) -> np.ndarray:
        """:meth:`sample_scores` from the same draws, compiled, returned day-major: (n_steps, k, n_paths)."""
        from mcalloc.simulation.kernels import dcc_scores

        n_series = self.n_series
        normals = standard_normals(rng, (q.shape[0], n_steps, n_series))
        level, deviation = _packed_deviation(q, self.a, self.b, self.qbar)
        block = np.ascontiguousarray(normals.transpose(1, 2, 0))
        if n_steps:
            dcc_scores(block, deviation, level, np.asarray(_packed_layout(n_series)[2]), self.a, self.b)
        deviation += level[:, None]
        q[...] = _unpack(deviation.T, n_series)
        return block

    def to_config(self) -> dict[str, Any]:
        """Parameters for a config file, plain floats at full precision.

        ``correlation`` is ``qbar`` as nested lists (a correlation matrix for
        fitted models, see the class docstring); ``last_q`` is included when
        known, so that ``simulation.start.kind: last`` can use it.
        """
        config: dict[str, Any] = {"a": float(self.a), "b": float(self.b), "correlation": self.qbar.tolist()}
        if self.last_q is not None:
            config["last_q"] = self.last_q.tolist()
        return config

    @classmethod
    def from_config(
        cls,
        a: float,
        b: float,
        correlation: Sequence[Sequence[float]] | np.ndarray,
        last_q: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> FittedDCC:
        """The model from configured parameters, with ``qbar = correlation``.

        Raises
        ------
        ModelError
            When a parameter is unusable; the message starts with its key
            under ``model.dependence.dcc``.
        """
        problem = check_dcc_parameters(float(a), float(b), CONFIG_KEY)
        try:
            matrix = np.array(correlation, dtype=float)
        except ValueError:
            raise ModelError(f"{CONFIG_KEY}.correlation: must be a square matrix of numbers") from None
        if problem is None:
            problem = _matrix_problem(matrix, f"{CONFIG_KEY}.correlation")
        if problem is None and not np.allclose(np.diag(matrix), 1.0, atol=1e-10):
            problem = f"{CONFIG_KEY}.correlation: must have ones on the diagonal"
        start = None
        if problem is None and last_q is not None:
            try:
                start = np.array(last_q, dtype=float)
            except ValueError:
                raise ModelError(f"{CONFIG_KEY}.last_q: must be a square matrix of numbers") from None
            problem = _matrix_problem(start, f"{CONFIG_KEY}.last_q")
            if problem is None and start.shape != matrix.shape:
                problem = f"{CONFIG_KEY}.last_q: has shape {start.shape} but correlation {matrix.shape}"
        if problem is not None:
            raise ModelError(problem)
        return cls(a=float(a), b=float(b), qbar=matrix, last_q=start)


def _from_free(x: np.ndarray) -> tuple[float, float]:
    """(a, b) from the optimiser's (persistence a + b, share a / (a + b)), a box onto the triangle."""
    persistence, share = float(x[0]), float(x[1])
    return persistence * share, persistence * (1.0 - share)


def _standard_errors(a: float, b: float, scores: np.ndarray, qbar: np.ndarray) -> tuple[float, float] | None:
    """Standard errors from the inverse of minus the central-difference Hessian in (a, b)."""
    h = _HESSIAN_STEP
    if a - h < 0.0 or b - h < 0.0 or a + b + 2.0 * h >= 1.0:
        return None  # on or next to the boundary, where the usual asymptotics do not hold

    def loglik(da: float, db: float) -> float:
        return _filter(a + da * h, b + db * h, scores, qbar)[0]

    centre = loglik(0, 0)
    hessian = np.empty((2, 2))
    hessian[0, 0] = (loglik(1, 0) - 2.0 * centre + loglik(-1, 0)) / h**2
    hessian[1, 1] = (loglik(0, 1) - 2.0 * centre + loglik(0, -1)) / h**2
    hessian[0, 1] = hessian[1, 0] = (loglik(1, 1) - loglik(1, -1) - loglik(-1, 1) + loglik(-1, -1)) / (4.0 * h**2)
    information = -hessian
    if not np.isfinite(information).all() or np.linalg.eigvalsh(information).min() <= 0.0:
        return None
    variances = np.diag(np.linalg.inv(information))
    return float(np.sqrt(variances[0])), float(np.sqrt(variances[1]))


def fit_dcc(scores: np.ndarray) -> FittedDCC:
    """Fit a DCC(1,1) to normal scores by two-step estimation with correlation targeting.

    ``Qbar`` is the sample correlation of the scores (``np.corrcoef``); then
    ``(a, b)`` maximise :func:`dcc_loglikelihood` subject to ``a >= 0``,
    ``b >= 0``, ``a + b < 1``, by L-BFGS-B on ``(a + b, a / (a + b))`` from a
    few starting points, keeping the best.

    Parameters
    ----------
    scores
        ndarray of shape (n_obs, k): normal scores of the standardised
        residuals, one row per day. Rows with a missing value (NaN) are left
        out, as for the Gaussian copula; such rows should only occur at the
        start (models that hold back observations), since dropping a row
        elsewhere joins the days on either side.

    Returns
    -------
    FittedDCC
        With ``last_q``, the log-likelihood and, when available, standard errors.

    Raises
    ------
    ModelError
        With fewer than 100 complete rows, fewer than two series, collinear
        scores, or when the fit does not converge to a stationary model.
    """
    data = np.asarray(scores, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"scores must have shape (n_obs, k), got {data.shape}")
    data = data[np.isfinite(data).all(axis=1)]
    n_obs, n_series = int(data.shape[0]), int(data.shape[1])
    fallback = "use model.dependence.kind: gaussian"
    if n_series < 2:
        raise ModelError(f"model.dependence: DCC needs at least two series, got {n_series}; {fallback}")
    if n_obs < MIN_OBSERVATIONS:
        raise ModelError(
            f"model.dependence: DCC needs at least {MIN_OBSERVATIONS} days on which every series has a "
            f"score, got {n_obs}; use a longer data window or {fallback}"
        )
    qbar = np.corrcoef(data, rowvar=False)
    if np.linalg.eigvalsh(qbar).min() <= 1e-10:
        raise ModelError(f"model.dependence: the series' scores are collinear, so DCC cannot be fitted; {fallback}")

    def objective(x: np.ndarray) -> float:
        a, b = _from_free(x)
        return -_filter(a, b, data, qbar)[0] / n_obs

    best: Any = None
    for a_start, b_start in _STARTS:
        start = np.array([a_start + b_start, a_start / (a_start + b_start)])
        bounds = [(0.0, _MAX_PERSISTENCE), (0.0, 1.0)]
        result = scipy.optimize.minimize(objective, start, method="L-BFGS-B", bounds=bounds)
        if result.success and np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise ModelError(f"model.dependence: the DCC fit did not converge from any starting point; {fallback}")
    a, b = _from_free(best.x)
    if a + b >= _MAX_PERSISTENCE - 1e-6:
        raise ModelError(
            f"model.dependence: the DCC fit reached a + b = {a + b:.6g}, correlations that never revert "
            f"to a long-run level; use a shorter data window or {fallback}"
        )
    loglikelihood, last_q = _filter(a, b, data, qbar)
    return FittedDCC(
        a=a,
        b=b,
        qbar=qbar,
        last_q=last_q,
        loglikelihood=loglikelihood,
        n_obs=n_obs,
        std_errors=_standard_errors(a, b, data, qbar),
    )
