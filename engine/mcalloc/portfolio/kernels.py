"""Compiled (numba) kernels of the books: a block of days booked, growth factors, and month-end counts.

The reference is the numpy code of :mod:`mcalloc.portfolio.accounting`
(:func:`book_block`, through :class:`mcalloc.portfolio.compiled.CompiledBook`)
and :mod:`mcalloc.metrics.fan` (:func:`count_bins`); the tests hold these
kernels to it. They are compiled as :mod:`mcalloc.simulation.kernels`'
are (:data:`mcalloc.simulation.kernels.kernel`). The counting kernels
(:func:`count_bins`, :func:`count_drawdowns`) replace numpy's index
arithmetic and ``bincount`` with one loop, and agree with it exactly; the
sums of the pooled covariance are taken in a different order than the
reference's and agree to rounding, and the daily growth factors come from
:func:`exp_block`, within 0.6 units in the last place of the exact ``exp``,
not from numpy's.
"""

from __future__ import annotations

import math

import numpy as np

from mcalloc.simulation.kernels import kernel

__all__ = ["book_block", "count_bins", "count_drawdowns", "exp_block"]


@kernel
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


_EXP_REACH = 0.125
"""Largest ``|x|`` that :func:`exp_block`'s polynomial covers; beyond it ``math.exp`` (libm) is called."""

_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10 = (1.0 / math.factorial(k) for k in range(2, 11))


@kernel
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


@kernel
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


@kernel
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
