"""Random variates by inversion of uniforms, through a table of the quantile function.

A variate with quantile function ``Q`` is ``Q(u)`` for a uniform ``u``.
:class:`InversionTable` tabulates ``Q`` so that the compiled kernel
:func:`mcalloc.simulation.kernels.invert_uniforms` evaluates it in a few
nanoseconds: each half of ``(0, 1)`` is tabulated in the distance ``v`` from
its end (``v = u`` below one half, ``v = 1 - u`` above, exact in floating
point) on geometric levels, level ``k`` covering ``v`` in
``[2**(-5 - 4k), 2**(-1 - 4k))`` (the first up to 0.5) in 1,920 equal steps,
so each step is ``2**-7`` of where its level starts. Linear interpolation
within a step is then accurate to a few parts in a million for the smooth
quantile functions tabulated here, tested against the exact ones. The
uniforms within ``2**-29`` of an end, about one in 270 million, go to the
exact function.

Two tables use it: the t copula's mixing multiplier
(:class:`mcalloc.models.copulas.MixingTable`) and the standard normals of
the Gaussian, t and DCC copulas (:func:`standard_normals`). A uniform and a
lookup cost less than half of numpy's ziggurat ``standard_normal``: on the
2-core Xeon of the development machine, 4.9 ns a normal against 12 to 13.6
ns (a uniform alone 2.0 to 2.5 ns). ``scripts/bench_simulation.py`` keeps
numpy's normals as its reference. The normal table is within 3e-6 of
scipy's ``ndtri`` (1e-6 in probability), and its draws are tested for their
moments, their law and their tails, and for the spread of their quantiles
from one generator to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np
from scipy import special

__all__ = [
    "InversionTable",
    "normal_quantile_exact",
    "normal_table",
    "standard_normals",
]

_LEVELS = 7
"""Levels per side: the last starts ``2**-29`` from 0 or 1; beyond, inversion is exact."""
_CELLS = 1920
"""Cells per level: each level's step is ``2**-7`` of where it starts, which bounds the relative error."""
SMALLEST_UNIFORM = 2.0**-54
"""Where an exact inverse clamps a uniform of 0 (numpy's uniforms are multiples of ``2**-53``)."""

Quantile = Callable[[np.ndarray], np.ndarray]
"""A quantile function of a distance ``v`` from one end of ``(0, 1)``, exact."""


@dataclass(frozen=True, eq=False)
class InversionTable:
    """A quantile function tabulated for :func:`mcalloc.simulation.kernels.invert_uniforms`.

    ``exact`` inverts uniforms (any shape, in ``[0, 1)``) exactly: the
    reference for the uniforms the table leaves. ``pairs`` holds each cell's
    base and slope side by side, so the kernel reads one cache line per
    lookup; cells of the lower side come first, level by level, from
    ``offsets``.
    """

    base: np.ndarray = field(repr=False, compare=False)
    slope: np.ndarray = field(repr=False, compare=False)
    starts: np.ndarray = field(repr=False, compare=False)
    inverse_steps: np.ndarray = field(repr=False, compare=False)
    lasts: np.ndarray = field(repr=False, compare=False)
    offsets: np.ndarray = field(repr=False, compare=False)
    exact: Quantile = field(repr=False, compare=False)

    @staticmethod
    def tabulate(lower: Quantile, upper: Quantile) -> dict[str, np.ndarray]:
        """The table's arrays for ``Q(v)`` (``lower``) and ``Q(1 - v)`` (``upper``), each given the distance ``v``."""
        starts = 2.0 ** (-5.0 - 4.0 * np.arange(_LEVELS))
        ends = np.concatenate([[0.5], starts[:-1]])
        steps = (ends - starts) / _CELLS
        # the first level has one cell more, beyond 0.5, for a uniform of exactly 0.5
        cells = [_CELLS + 1] + [_CELLS] * (_LEVELS - 1)
        distances = [start + np.arange(n + 1) * step for start, step, n in zip(starts, steps, cells, strict=True)]
        tables = [lower(v) for v in distances] + [upper(v) for v in distances]
        return {
            "base": np.concatenate([table[:-1] for table in tables]),
            "slope": np.concatenate([np.diff(table) for table in tables]),
            "starts": starts,
            "inverse_steps": 1.0 / steps,
            "lasts": np.array(cells, dtype=np.int64) - 1,
            "offsets": np.cumsum([0] + 2 * cells)[:-1].astype(np.int64),
        }

    def __call__(self, uniforms: np.ndarray) -> np.ndarray:
        """The quantiles of ``uniforms`` (any shape): the numpy reference of :meth:`invert_in_place`."""
        given = np.asarray(uniforms, dtype=float)
        uniforms = given.reshape(-1)
        upper = uniforms > 0.5
        distance = np.minimum(uniforms, 1.0 - uniforms)
        level = np.sum(distance[..., None] < self.starts, axis=-1)
        # below the last level, or nan (as the kernel, which reads no cell for it): the exact inverse
        exact = (level == self.starts.size) | np.isnan(uniforms)
        distance[exact] = self.starts[0]
        level[exact] = 0
        local = (distance - self.starts[level]) * self.inverse_steps[level]
        # the cell within its level first, as the kernel finds it: a distance just below a level's top stays there
        cell = np.minimum(local.astype(np.int64), self.lasts[level])
        index = self.offsets[upper * self.starts.size + level] + cell
        local -= cell
        result: np.ndarray = np.take(self.slope, index)
        result *= local
        result += np.take(self.base, index)
        if exact.any():
            result[exact] = self.exact(uniforms[exact])
        return result.reshape(given.shape)

    @cached_property
    def pairs(self) -> np.ndarray:
        """Each cell's base and slope side by side, (2 * n_cells,)."""
        return np.column_stack([self.base, self.slope]).ravel()

    def invert_in_place(self, uniforms: np.ndarray) -> np.ndarray:
        """:meth:`__call__` for C-contiguous float64 ``uniforms`` of any shape, compiled, in place."""
        from mcalloc.simulation.kernels import invert_uniforms

        if uniforms.dtype != np.float64 or not uniforms.flags.c_contiguous:
            raise ValueError("invert_in_place needs a C-contiguous float64 array")
        flat = uniforms.reshape(-1)
        exact = invert_uniforms(flat, self.pairs, self.starts, self.inverse_steps, self.lasts, self.offsets)
        if exact.size:
            flat[exact] = self.exact(flat[exact])
        return uniforms


def normal_quantile_exact(uniforms: np.ndarray) -> np.ndarray:
    """The standard normal quantile of each of ``uniforms`` (scipy's ``ndtri``), exact.

    Uniforms above one half are inverted through their complement, ``-ndtri(1
    - u)`` (exact in floating point), so those near 1 keep their precision;
    a uniform of exactly 0 counts as ``2**-54`` instead of giving minus
    infinity.
    """
    uniforms = np.asarray(uniforms, dtype=float)
    upper = uniforms > 0.5
    distance = np.maximum(np.where(upper, 1.0 - uniforms, uniforms), SMALLEST_UNIFORM)
    result: np.ndarray = np.where(upper, -special.ndtri(distance), special.ndtri(distance))
    return result


@cache
def normal_table() -> InversionTable:
    """The standard normal quantile, tabulated (built once per process, in about a millisecond)."""

    def upper(distance: np.ndarray) -> np.ndarray:
        result: np.ndarray = -special.ndtri(distance)
        return result

    return InversionTable(**InversionTable.tabulate(special.ndtri, upper), exact=normal_quantile_exact)


def standard_normals(
    rng: np.random.Generator, shape: tuple[int, ...] | None = None, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Independent standard normals of ``shape`` (or into ``out``), each the quantile of one uniform of ``rng``.

    The uniforms are ``rng.random`` in C order, so the draws depend only on
    the generator's state and the number of values, as numpy's own do.
    """
    if out is None:
        if shape is None:
            raise ValueError("standard_normals needs a shape or out")
        out = np.empty(shape)
    elif out.dtype != np.float64 or not out.flags.c_contiguous:
        # refused before any draw, so that the generator has not moved on
        raise ValueError("standard_normals needs a C-contiguous float64 out")
    rng.random(out=out)
    return normal_table().invert_in_place(out)
