"""Compiled (numba) versions of the simulation's hot loops.

The numpy code in :mod:`mcalloc.models.recursions`,
:mod:`mcalloc.models.factor`, :mod:`mcalloc.portfolio.accounting`,
:mod:`mcalloc.models.dependence`, :mod:`mcalloc.models.dcc` and
:mod:`mcalloc.metrics.fan` is the reference: it states the equations one
array operation at a time and the tests hold these kernels to it. numpy
must walk every array once per operation, and the per-day loop runs in
Python; these kernels make one pass over a block, day by day, each day's
work running along the paths (the last, contiguous axis), which the
compiler vectorises. The counting kernels (:func:`count_bins`,
:func:`count_drawdowns`) replace numpy's index arithmetic and ``bincount``
with one loop. Every kernel works in place on arrays its caller owns, and
is compiled once per machine (``cache=True``).

Arithmetic follows the reference's order where it can, so results agree to
a few units in the last place (the market factor, the gather and the
counts agree exactly); the sums of the pooled covariance are taken in a
different order and agree to rounding, and the daily growth factors come
from :func:`exp_block`, within 0.6 units in the last place of the exact
``exp``, not from numpy's.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "EGARCH",
    "GARCH",
    "book_block",
    "count_bins",
    "count_drawdowns",
    "dcc_scores",
    "exp_block",
    "factor_days",
    "gather_days",
    "mix_scores",
    "recursion_block",
    "t_mixing",
]

GARCH = 0
"""Kind code of a GARCH or GJR-GARCH series."""
EGARCH = 1
"""Kind code of an EGARCH series."""

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

_kernel = njit(cache=True, nogil=True, error_model="numpy")
"""How every kernel is compiled: cached, without the GIL, and dividing as numpy does.

With numba's default (Python's) error model each float division checks
for a zero divisor so that it can raise, and that branch keeps the loop
from being vectorised: the drawdown loop of :func:`book_block` ran one
path at a time. numpy's model returns ``inf`` or ``nan`` as the numpy
references do; the quotients themselves are the same IEEE results.
"""


@_kernel
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


@_kernel
def book_block(
    growth: np.ndarray,
    fee_factor: np.ndarray,
    weights: np.ndarray,
    holdings: np.ndarray,
    value: np.ndarray,
    units: np.ndarray,
    block_start: np.ndarray,
    peak: np.ndarray,
    max_drawdown: np.ndarray,
    underwater: np.ndarray,
    longest_underwater: np.ndarray,
    log_return_sum: np.ndarray,
    log_return_sumsq: np.ndarray,
    asset_growth: np.ndarray,
    asset_sum: np.ndarray,
    asset_cross: np.ndarray,
    daily_rebalance: bool,
) -> None:
    """Book one block of days for every path and portfolio, in place.

    ``growth`` (n_steps, n_assets, n_paths) holds each day's market growth
    factor ``exp(r)`` and is multiplied by ``fee_factor`` (n_assets,) in
    place. ``holdings`` (n_portfolios, n_assets, n_paths) and ``value``
    (wealth), ``units`` (wealth over NAV; 1 without cash flows),
    ``block_start`` (the NAV the block's return is measured from: before the
    costs of a rebalance at its start), ``peak`` (of the NAV),
    ``max_drawdown`` and the sums of block log returns (n_portfolios,
    n_paths) carry the books from block to block, as do ``underwater`` and
    ``longest_underwater`` (steps in a row below the running peak, now and
    at the longest);
    ``asset_growth`` (n_assets, n_paths) collects each asset's buy-and-hold
    growth; ``asset_sum`` (n_assets, n_paths) and ``asset_cross`` (n_assets,
    n_assets, n_paths, lower triangle) each path's sums of daily after-fee
    simple returns and of their cross-products.
    """
    n_steps, n_assets, n_paths = growth.shape
    n_portfolios = weights.shape[0]
    cumulative = np.ones((n_assets, n_paths))
    running = np.ones((n_portfolios, n_paths))
    # The running maxima (peak, worst peak-to-NAV ratio, longest run under
    # water) alternate between two buffers, read from one and written to the
    # other, step by step. Updated in place, ``x[i] = max(x[i], y)`` is
    # compiled to a masked store (the compiler stores only where ``y`` is
    # larger), slow on the AMD EPYC (Zen 1) this was measured on: on the
    # default run's blocks (8 portfolios, 1,000 paths, 21 days) the kernel
    # took 7.0 ns per portfolio, path and day, and takes 5.0 with two buffers.
    tops = np.empty((2, n_portfolios, n_paths))
    tops[0] = peak
    worsts = np.empty((2, n_portfolios, n_paths))
    worsts[0] = 0.0
    longests = np.empty((2, n_portfolios, n_paths))
    longests[0] = longest_underwater
    current = np.empty(n_paths)
    mixed = np.empty(n_paths)
    nav_row = np.empty(n_paths)
    # without cash flows every book holds one unit: the NAV is the value itself
    scaled = False
    for portfolio in range(n_portfolios):
        for path in range(n_paths):
            if units[portfolio, path] != 1.0:
                scaled = True
    for step in range(n_steps):
        day = growth[step]
        for asset in range(n_assets):
            row = day[asset]
            kept = fee_factor[asset]
            held = cumulative[asset]
            sums = asset_sum[asset]
            for path in range(n_paths):
                g = row[path] * kept
                row[path] = g
                held[path] *= g
                sums[path] += g - 1.0
            for other in range(asset + 1):
                cross = asset_cross[asset, other]
                other_row = day[other]
                for path in range(n_paths):
                    cross[path] += (row[path] - 1.0) * (other_row[path] - 1.0)
        for portfolio in range(n_portfolios):
            if daily_rebalance:
                mixed[:] = 0.0
                for asset in range(n_assets):
                    share = weights[portfolio, asset]
                    row = day[asset]
                    for path in range(n_paths):
                        mixed[path] += row[path] * share
                for path in range(n_paths):
                    running[portfolio, path] *= mixed[path]
                    current[path] = running[portfolio, path] * value[portfolio, path]
            else:
                for asset in range(n_assets):
                    held = cumulative[asset]
                    position = holdings[portfolio, asset]
                    if asset == 0:
                        # a sum started from zero, as the reference's; one pass fewer than clearing first
                        for path in range(n_paths):
                            current[path] = 0.0 + held[path] * position[path]
                    else:
                        for path in range(n_paths):
                            current[path] += held[path] * position[path]
            read = step % 2
            best = tops[read, portfolio]
            deepest = worsts[read, portfolio]
            longest = longests[read, portfolio]
            new_best = tops[1 - read, portfolio]
            new_deepest = worsts[1 - read, portfolio]
            new_longest = longests[1 - read, portfolio]
            held_units = units[portfolio]
            wet = underwater[portfolio]
            navs = current
            if scaled:
                navs = nav_row
                for path in range(n_paths):
                    nav_row[path] = current[path] / held_units[path]
            for path in range(n_paths):
                nav = navs[path]
                top_nav = max(best[path], nav)
                new_best[path] = top_nav
                ratio = top_nav / nav
                new_deepest[path] = max(deepest[path], ratio)
                run = (wet[path] + 1.0) * (ratio > 1.0)
                wet[path] = run
                new_longest[path] = max(longest[path], run)
            if step == n_steps - 1:
                for path in range(n_paths):
                    nav = navs[path]
                    block = math.log(nav / block_start[portfolio, path])
                    log_return_sum[portfolio, path] += block
                    log_return_sumsq[portfolio, path] += block * block
                    value[portfolio, path] = current[path]
                    block_start[portfolio, path] = nav
    last = n_steps % 2
    for portfolio in range(n_portfolios):
        for path in range(n_paths):
            peak[portfolio, path] = tops[last, portfolio, path]
            longest_underwater[portfolio, path] = longests[last, portfolio, path]
            max_drawdown[portfolio, path] = max(
                max_drawdown[portfolio, path], 1.0 - 1.0 / worsts[last, portfolio, path]
            )
        for asset in range(n_assets):
            for path in range(n_paths):
                if daily_rebalance:
                    holdings[portfolio, asset, path] = value[portfolio, path] * weights[portfolio, asset]
                else:
                    holdings[portfolio, asset, path] *= cumulative[asset, path]
    for asset in range(n_assets):
        for path in range(n_paths):
            asset_growth[asset, path] *= cumulative[asset, path]


@_kernel
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


@_kernel
def t_mixing(
    uniforms: np.ndarray,
    pairs: np.ndarray,
    starts: np.ndarray,
    inverse_steps: np.ndarray,
    lasts: np.ndarray,
    offsets: np.ndarray,
) -> int:
    """A t copula's multipliers ``sqrt(nu / w)`` from uniforms by inversion, in place; the reference is ``TCopula``.

    A uniform ``u`` below one half is looked up by ``v = u``, one above by
    ``v = 1 - u`` (exact in floating point), each side in its own tables.
    Level ``k`` of a side tabulates ``v`` from ``starts[k]`` up to
    ``starts[k - 1]`` (0.5 for the first) in steps of ``1 / inverse_steps[k]``,
    cells 0 to ``lasts[k]``, from cell ``offsets[side * n_levels + k]`` of
    ``pairs`` (each cell's base, then its slope). The cell is found within its level before the
    level's offset is added, so a ``v`` just below a level's top stays in its
    last cell. A uniform whose ``v`` is below the last start is left negated
    (0 becomes -0.0: its sign bit marks it) for the caller to invert exactly;
    the return value counts them.
    """
    n_steps, n_paths = uniforms.shape
    n_levels = starts.size
    smallest = starts[n_levels - 1]
    # the first level holds 15 in 16 uniforms: its cells are found in a pass the
    # compiler vectorises, the lookups in a second loop, deeper levels there too
    first_start = starts[0]
    first_inverse = inverse_steps[0]
    first_last = np.float64(lasts[0])
    lower_offset = np.float64(offsets[0])
    upper_offset = np.float64(offsets[n_levels])
    cells = np.empty(n_paths, dtype=np.uint64)
    fractions = np.empty(n_paths)
    remaining = 0
    for day in range(n_steps):
        row = uniforms[day]
        for path in range(n_paths):
            u = row[path]
            local = max(0.0, (min(u, 1.0 - u) - first_start) * first_inverse)
            cell = min(np.float64(np.uint64(local)), first_last)
            fractions[path] = local - cell
            # branch-free: the side is a coin toss, which a branch would mispredict half the time
            cells[path] = np.uint64(cell + (upper_offset if u > 0.5 else lower_offset))
        for path in range(n_paths):
            u = row[path]
            v = min(u, 1.0 - u)
            if v >= first_start:
                index = cells[path] * np.uint64(2)
                row[path] = pairs[index + np.uint64(1)] * fractions[path] + pairs[index]
                continue
            if not v >= smallest:  # nan too: no table row is read for it
                row[path] = -u
                remaining += 1
                continue
            level = 1
            while v < starts[level]:
                level += 1
            local = (v - starts[level]) * inverse_steps[level]
            deeper = min(int(local), lasts[level])
            index = 2 * (offsets[n_levels * (u > 0.5) + level] + deeper)
            row[path] = pairs[index + 1] * (local - deeper) + pairs[index]
    return remaining


@_kernel
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


_EXP_REACH = 0.125
"""Largest ``|x|`` that :func:`exp_block`'s polynomial covers; beyond it ``math.exp`` (libm) is called."""
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10 = (1.0 / math.factorial(k) for k in range(2, 11))


@_kernel
def exp_block(logs: np.ndarray, out: np.ndarray) -> int:
    """``exp`` of ``logs`` (n_steps, n_assets, n_paths) into ``out``: daily growth factors from log returns.

    numpy's float64 ``exp`` has SIMD code only for AVX-512; elsewhere it calls
    libm one value at a time, and on a 2-core AMD EPYC (Zen 1) it was a fifth
    of a Gaussian-copula run. Daily log returns are small, so a polynomial
    the compiler vectorises covers nearly all of them: ``exp(x) = 1 + (x +
    x^2 q(x))`` with ``q`` the Taylor series of ``(exp(x) - 1 - x) / x^2`` to
    ``x^8`` (its remainder below ``x^9 / 11!``: 3e-18 of the result at
    ``|x| = 1/8``), summed in Estrin's order (short chains of dependent
    operations) and added to 1 last, so that only the last two roundings
    count. Measured against the exact value on 2 million points of
    ``[-1/8, 1/8]``: at most 0.60 units in the last place (numpy's own: 0.50).
    Values beyond ``1/8`` (a 12% day), infinities included, take ``math.exp``
    in a second pass; NaN stays NaN. Returns how many did.
    """
    n_steps, n_assets, n_paths = logs.shape
    beyond = 0
    for step in range(n_steps):
        for asset in range(n_assets):
            row = logs[step, asset]
            target = out[step, asset]
            for path in range(n_paths):
                x = row[path]
                beyond += abs(x) > _EXP_REACH
                x2 = x * x
                x4 = x2 * x2
                low = (_E2 + _E3 * x) + (_E4 + _E5 * x) * x2
                high = ((_E6 + _E7 * x) + (_E8 + _E9 * x) * x2) + _E10 * x4
                target[path] = 1.0 + (x + x2 * (low + x4 * high))
    if beyond:
        for step in range(n_steps):
            for asset in range(n_assets):
                for path in range(n_paths):
                    x = logs[step, asset, path]
                    if abs(x) > _EXP_REACH:
                        out[step, asset, path] = math.exp(x)
    return beyond


@_kernel
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


@_kernel
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


@_kernel
def count_bins(logs: np.ndarray, low: float, width: float, counts: np.ndarray) -> None:
    """Add each log wealth in ``logs`` (n_portfolios, n_paths) to its bin in ``counts`` (n_portfolios, n_bins + 2).

    Bin ``k`` in 1..n_bins holds ``low + (k - 1) width <= x < low + k width``;
    bin 0 everything below ``low`` and ``nan`` (zero wealth, whose log is
    ``-inf``, included), the last bin everything from the top edge up. The
    reference is :meth:`mcalloc.metrics.fan.WealthFan.add_reference`.
    """
    n_portfolios, n_paths = logs.shape
    last = counts.shape[1] - 1
    for portfolio in range(n_portfolios):
        row = logs[portfolio]
        bins = counts[portfolio]
        for path in range(n_paths):
            position = (row[path] - low) / width
            if position >= 0.0:  # false for nan
                bins[min(int(min(position, last)) + 1, last)] += 1
            else:
                bins[0] += 1


@_kernel
def count_drawdowns(
    nav: np.ndarray, peak: np.ndarray, month_peak: np.ndarray, month_max: np.ndarray, histogram: np.ndarray
) -> None:
    """Count each book's month-end drawdowns (n_portfolios, n_paths) into ``histogram`` (n_portfolios, 2, n_bins).

    ``[:, 0]`` counts ``1 - nav / peak`` (the daily NAV's running peak);
    ``[:, 1]`` counts ``1 - nav / month_peak`` after ``month_peak`` takes in
    ``nav``, whose largest so far ``month_max`` keeps; both updated in place.
    Bin ``k`` holds drawdowns in ``[k / n_bins, (k + 1) / n_bins)``, the last
    one everything from its lower edge up. The reference is
    :meth:`mcalloc.portfolio.accounting.FixedMixBook._record_drawdown`.
    """
    n_portfolios, n_paths = nav.shape
    n_bins = histogram.shape[2]
    # each portfolio's bins first, then the counts: with the increments in
    # the same loop as the month peaks' updates, the compiler left that loop
    # unvectorised, and on 240 month ends saved from a default run this
    # kernel took 36 ns per portfolio and path, against 11 to 13 now (0.51 s
    # to 0.42 s in a 20,000-path pass, where the histogram is mostly out of
    # cache)
    daily_bins = np.empty(n_paths, dtype=np.int64)
    monthly_bins = np.empty(n_paths, dtype=np.int64)
    for portfolio in range(n_portfolios):
        highest = month_peak[portfolio]
        deepest = month_max[portfolio]
        for path in range(n_paths):
            value = nav[portfolio, path]
            drawdown = 1.0 - value / peak[portfolio, path]
            daily_bins[path] = max(min(int(drawdown * n_bins), n_bins - 1), 0)
            top = max(highest[path], value)
            highest[path] = top
            fall = 1.0 - value / top
            deepest[path] = max(deepest[path], fall)
            monthly_bins[path] = max(min(int(fall * n_bins), n_bins - 1), 0)
        daily = histogram[portfolio, 0]
        for path in range(n_paths):
            daily[daily_bins[path]] += 1
        monthly = histogram[portfolio, 1]
        for path in range(n_paths):
            monthly[monthly_bins[path]] += 1
