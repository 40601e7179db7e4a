"""Compiled (numba) versions of the simulation's hot loops: the shocks and the volatility models.

The numpy code in :mod:`mcalloc.models.recursions`,
:mod:`mcalloc.models.factor`, :mod:`mcalloc.models.dependence`,
:mod:`mcalloc.models.dcc`, :mod:`mcalloc.models.bootstrap` and
:mod:`mcalloc.models.inversion` is the
reference: it states the equations one array operation at a time and the
tests hold these kernels to it. numpy must walk every array once per
operation, and the per-day loop runs in Python; these kernels make one pass
over a block, day by day, each day's work running along the paths (the
last, contiguous axis), which the compiler vectorises. Every kernel works
in place on arrays its caller owns, and is compiled once per machine
(``cache=True``). The books' kernels, which take the returns from here,
are in :mod:`mcalloc.portfolio.kernels`.

Arithmetic follows the reference's order where it can, so results agree to
a few units in the last place (the market factor and the gather agree
exactly).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "EGARCH",
    "GARCH",
    "dcc_scores",
    "factor_days",
    "gather_days",
    "invert_uniforms",
    "kernel",
    "mix_scores",
    "recursion_block",
]

GARCH = 0
"""Kind code of a GARCH or GJR-GARCH series."""
EGARCH = 1
"""Kind code of an EGARCH series."""

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

kernel = njit(cache=True, nogil=True, error_model="numpy")
"""How every kernel is compiled: cached, without the GIL, and dividing as numpy does.

With numba's default (Python's) error model each float division checks
for a zero divisor so that it can raise, and that branch keeps the loop
from being vectorised: the drawdown loop of :func:`mcalloc.portfolio.kernels.book_block` ran one
path at a time. numpy's model returns ``inf`` or ``nan`` as the numpy
references do; the quotients themselves are the same IEEE results.
"""


@kernel
def recursion_block(
    days: np.ndarray,
    variance: np.ndarray,
    last_return: np.ndarray,
    kind: np.ndarray,
    ar: np.ndarray,
    mu: np.ndarray,
    phi: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    ceiling: np.ndarray,
    scale: float,
) -> None:
    """Unit-variance shocks to decimal log returns for one block, in place.

    ``days`` (n_steps, n_series, n_paths) holds the shocks on entry and the
    returns on exit; ``variance`` and ``last_return`` (n_series, n_paths),
    in percent units, carry the paths into the next block. Parameters are
    per series, as in :class:`mcalloc.models.recursions.RecursionPlan`;
    ``ar`` flags the AR(1) series, ``kind`` holds :data:`GARCH` or
    :data:`EGARCH`.
    """
    n_steps, n_series, n_paths = days.shape
    inverse_scale = 1.0 / scale
    for series in range(n_series):
        if kind[series] == EGARCH:
            for path in range(n_paths):
                variance[series, path] = math.log(variance[series, path])
    for step in range(n_steps):
        for series in range(n_series):
            row = days[step, series]
            state = variance[series]
            w_omega = omega[series]
            w_alpha = alpha[series]
            w_gamma = gamma[series]
            w_beta = beta[series]
            if kind[series] == GARCH:
                cap = ceiling[series]
                for path in range(n_paths):
                    z = row[path]
                    v = state[path]
                    e = z * math.sqrt(v)
                    # the weight of e^2 is alpha + gamma when the shock is negative
                    weight = w_alpha + w_gamma * np.float64(z < 0.0)
                    v = w_beta * v + (e * e * weight + w_omega)
                    state[path] = min(v, cap)
                    row[path] = e
            else:
                log_cap = math.log(ceiling[series])
                for path in range(n_paths):
                    z = row[path]
                    log_v = state[path]
                    news = ((abs(z) - _SQRT_2_OVER_PI) * w_alpha + w_gamma * z) + w_omega
                    row[path] = z * math.exp(log_v * 0.5)
                    state[path] = min(log_v * w_beta + news, log_cap)
            w_mu = mu[series]
            if ar[series]:
                w_phi = phi[series]
                previous = last_return[series]
                for path in range(n_paths):
                    current = (row[path] + w_mu) + w_phi * previous[path]
                    previous[path] = current
                    row[path] = current * inverse_scale
            else:
                for path in range(n_paths):
                    row[path] = (row[path] + w_mu) * inverse_scale
    for series in range(n_series):
        if kind[series] == EGARCH:
            for path in range(n_paths):
                variance[series, path] = math.exp(variance[series, path])


@kernel
def mix_scores(
    draws: np.ndarray,
    cholesky: np.ndarray,
    multiplier: np.ndarray,
    identity: np.ndarray,
    table: np.ndarray,
    rows: np.ndarray,
    limit: float,
    step: float,
    out: np.ndarray,
) -> int:
    """Copula innovations from independent normals, one pass, day-major.

    ``draws`` (n_steps, n, n_paths) are independent standard normals; the
    scores are ``cholesky @ draws`` each day, times ``multiplier`` (n_steps,
    n_paths; a t copula's ``sqrt(nu / w)``) unless it is empty. Series with
    ``identity`` set keep their scores; the others go through their
    :class:`mcalloc.models.dependence.ScoreTransform` table (row ``rows[i]``
    of ``table``, each cell's base and slope side by side, grid
    ``[-limit, limit]`` in steps of ``step``). A score
    off the grid is left as it is for the caller to transform exactly; the
    return value counts them.
    """
    n_steps, n, n_paths = draws.shape
    scaled = multiplier.size > 0
    inverse_step = 1.0 / step
    offset = limit / step
    last = table.shape[1] // 2 - 1e-9
    off_grid = 0
    # the cells and fractions first, in a pass the compiler vectorises; then the
    # lookups, which it cannot (no gathers), in a loop that does nothing else
    cells = np.empty(n_paths, dtype=np.uint64)
    fractions = np.empty(n_paths)
    for day in range(n_steps):
        for series in range(n):
            row = out[day, series]
            row[:] = 0.0
            for source in range(series + 1):
                weight = cholesky[series, source]
                if weight != 0.0:
                    drawn = draws[day, source]
                    for path in range(n_paths):
                        row[path] += weight * drawn[path]
            if scaled:
                scale = multiplier[day]
                for path in range(n_paths):
                    row[path] *= scale[path]
            if identity[series]:
                continue
            cell_pairs = table[rows[series]]
            for path in range(n_paths):
                score = row[path]
                off_grid += abs(score) > limit
                # in this order a nan score clamps to cell 0 (read, then left as it is)
                position = min(last, max(0.0, score * inverse_step + offset))
                cell = np.uint64(position)
                cells[path] = cell
                fractions[path] = position - np.float64(cell)
            for path in range(n_paths):
                score = row[path]
                cell = cells[path] * np.uint64(2)
                looked_up = cell_pairs[cell + np.uint64(1)] * fractions[path] + cell_pairs[cell]
                row[path] = looked_up if abs(score) <= limit else score
    return off_grid


_INVERSION_BLOCK = 1024
"""Uniforms :func:`invert_uniforms` finds the cells of in one pass, before it looks them up."""


@kernel
def invert_uniforms(
    uniforms: np.ndarray,
    pairs: np.ndarray,
    starts: np.ndarray,
    inverse_steps: np.ndarray,
    lasts: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Quantiles of ``uniforms`` (1-d) from an :class:`mcalloc.models.inversion.InversionTable`, in place.

    A uniform ``u`` below one half is looked up by ``v = u``, one above by
    ``v = 1 - u`` (exact in floating point), each side in its own tables.
    Level ``k`` of a side tabulates ``v`` from ``starts[k]`` up to
    ``starts[k - 1]`` (0.5 for the first) in steps of ``1 / inverse_steps[k]``,
    cells 0 to ``lasts[k]``, from cell ``offsets[side * n_levels + k]`` of
    ``pairs`` (each cell's base, then its slope). The cell is found within its level before the
    level's offset is added, so a ``v`` just below a level's top stays in its
    last cell. A uniform whose ``v`` is below the last start (or a nan) is
    left as it is for the caller to invert exactly: the kernel returns their
    indices.
    """
    n_values = uniforms.size
    n_levels = starts.size
    smallest = starts[n_levels - 1]
    # the first level holds 15 in 16 uniforms: its cells are found in a pass the
    # compiler vectorises, the lookups in a second loop, deeper levels there too
    first_start = starts[0]
    first_inverse = inverse_steps[0]
    first_last = np.float64(lasts[0])
    lower_offset = np.float64(offsets[0])
    upper_offset = np.float64(offsets[n_levels])
    cells = np.empty(_INVERSION_BLOCK, dtype=np.uint64)
    fractions = np.empty(_INVERSION_BLOCK)
    remaining = np.empty(8, dtype=np.int64)
    n_remaining = 0
    for begin in range(0, n_values, _INVERSION_BLOCK):
        row = uniforms[begin : min(begin + _INVERSION_BLOCK, n_values)]
        for index in range(row.size):
            u = row[index]
            local = max(0.0, (min(u, 1.0 - u) - first_start) * first_inverse)
            cell = min(np.float64(np.uint64(local)), first_last)
            fractions[index] = local - cell
            # branch-free: the side is a coin toss, which a branch would mispredict half the time
            cells[index] = np.uint64(cell + (upper_offset if u > 0.5 else lower_offset))
        for index in range(row.size):
            u = row[index]
            v = min(u, 1.0 - u)
            if v >= first_start:
                pair = cells[index] * np.uint64(2)
                row[index] = pairs[pair + np.uint64(1)] * fractions[index] + pairs[pair]
                continue
            if not v >= smallest:  # nan too: no table row is read for it
                if n_remaining == remaining.size:
                    grown = np.empty(2 * remaining.size, dtype=np.int64)
                    grown[:n_remaining] = remaining
                    remaining = grown
                remaining[n_remaining] = begin + index
                n_remaining += 1
                continue
            level = 1
            while v < starts[level]:
                level += 1
            local = (v - starts[level]) * inverse_steps[level]
            deeper = min(int(local), lasts[level])
            pair_index = 2 * (offsets[n_levels * (u > 0.5) + level] + deeper)
            row[index] = pairs[pair_index + 1] * (local - deeper) + pairs[pair_index]
    return remaining[:n_remaining]


@kernel
def dcc_scores(
    block: np.ndarray, deviation: np.ndarray, level: np.ndarray, offsets: np.ndarray, a: float, b: float
) -> None:
    """DCC(1,1) scores from independent normals, in place; the reference is ``mcalloc.models.dcc``.

    ``block`` (n_steps, k, n_paths) holds day-major normals ``e_t`` on entry
    and the scores ``u_t = diag(Q_t)^{-1/2} chol(Q_t) e_t`` on exit.
    ``deviation`` (m, n_paths) is each path's ``Q - level`` in the packed
    lower-triangle layout (column ``j`` at ``offsets[j]:offsets[j + 1]``),
    ``level`` (m,) is ``(1 - a - b) / (1 - b) Qbar`` in that layout; the
    deviation decays at rate ``b`` between shocks and is left for the next
    block. Every step runs along the paths (the last, contiguous axis), as
    the reference's array operations do, in their order.
    """
    n_steps, n, n_paths = block.shape
    m = deviation.shape[0]
    factor = np.empty((m, n_paths))
    scale = np.empty((n, n_paths))
    product = np.empty((n, n_paths))
    root_a = math.sqrt(a)
    for step in range(n_steps):
        for index in range(m):
            for path in range(n_paths):
                factor[index, path] = deviation[index, path] + level[index]
        for j in range(n):
            for path in range(n_paths):
                scale[j, path] = math.sqrt(factor[offsets[j], path])
        # right-looking Cholesky of every path's packed factor, in place
        for j in range(n):
            start = offsets[j]
            for path in range(n_paths):
                factor[start, path] = math.sqrt(factor[start, path])
            if j + 1 == n:
                break
            for path in range(n_paths):
                recip = 1.0 / factor[start, path]
                for i in range(1, n - j):
                    factor[start + i, path] *= recip
            for right in range(j + 1, n):
                pivot = start + right - j
                target = offsets[right]
                for i in range(n - right):
                    for path in range(n_paths):
                        factor[target + i, path] -= factor[pivot + i, path] * factor[pivot, path]
        for j in range(n):
            start = offsets[j]
            for i in range(j, n):
                for path in range(n_paths):
                    if j == 0:
                        product[i, path] = factor[start + i - j, path] * block[step, 0, path]
                    else:
                        product[i, path] += factor[start + i - j, path] * block[step, j, path]
        for i in range(n):
            for path in range(n_paths):
                score = product[i, path] / scale[i, path]
                block[step, i, path] = score
                product[i, path] = score * root_a
        for index in range(m):
            for path in range(n_paths):
                deviation[index, path] *= b
        for j in range(n):
            start = offsets[j]
            for i in range(j, n):
                for path in range(n_paths):
                    deviation[start + i - j, path] += product[i, path] * product[j, path]


@kernel
def gather_days(rows: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    """Whole rows of history as day-major shocks: ``out[t, j, p] = rows[indices[p, t], j]``.

    ``rows`` (n_rows, n) are the resampled residuals, ``indices`` (n_paths,
    n_steps) the rows drawn, path-major as the reference's fancy index
    ``rows[indices]`` takes them; ``out`` is (n_steps, n, n_paths), written
    one contiguous row (a day of one series) at a time.
    """
    n_paths, n_steps = indices.shape
    n = rows.shape[1]
    for step in range(n_steps):
        for j in range(n):
            target = out[step, j]
            for path in range(n_paths):
                target[path] = rows[indices[path, step], j]


@kernel
def factor_days(
    days: np.ndarray,
    market: int,
    loadings: np.ndarray,
    switching: int,
    regime_loadings: np.ndarray,
    regimes: np.ndarray,
    history: np.ndarray,
) -> None:
    """Market-plus-idiosyncratic returns to series returns, in place; the reference is ``FactorStructure.apply``.

    ``days`` (n_steps, n, n_paths) holds the market's returns in row
    ``market`` and idiosyncratic returns in the others; each series ``i``
    gains ``loadings[i, l]`` times the market's return ``l`` days before, lag
    by lag as the reference adds them. Series ``switching`` (-1: none) takes
    its loadings from ``regime_loadings[regimes[t, p]]`` instead.
    ``history`` (n_paths, n_lags) holds the market's returns before the
    block, most recent first, and is moved on to the block's end.
    """
    n_steps, n, n_paths = days.shape
    n_lags = loadings.shape[1] - 1
    drivers = days[:, market, :].copy()
    for step in range(n_steps):
        for lag in range(n_lags + 1):
            back = step - lag
            source = drivers[back] if back >= 0 else history[:, lag - step - 1]
            for series in range(n):
                row = days[step, series]
                if series == switching:
                    for path in range(n_paths):
                        row[path] += regime_loadings[regimes[step, path], lag] * source[path]
                    continue
                weight = loadings[series, lag]
                if weight != 0.0:
                    for path in range(n_paths):
                        row[path] += weight * source[path]
    for lag in range(n_lags - 1, -1, -1):
        for path in range(n_paths):
            history[path, lag] = drivers[n_steps - 1 - lag, path] if lag < n_steps else history[path, lag - n_steps]
