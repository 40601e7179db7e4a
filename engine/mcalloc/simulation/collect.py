"""Chunks' results gathered into one, in chunk order, as they come back from the workers.

Per-path arrays are copied into blocks as each chunk arrives, so no chunk
need be kept; sums are added in chunk order, so the result is the same
whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcalloc.metrics.fan import WealthFan
from mcalloc.portfolio.book_summary import BookSummary
from mcalloc.simulation.parallel import return_free_heap

__all__ = ["ChunkResult", "Collector"]


@dataclass(frozen=True)
class ChunkResult:
    """Per-path results of a chunk (or of all chunks, concatenated).

    Attributes
    ----------
    book
        Portfolio results, see :class:`BookSummary`.
    asset_growth
        ndarray of shape (n_paths, n_assets): each asset's after-fee growth
        over the whole horizon (buy and hold).
    asset_sum, asset_cross, n_observations
        Sum of daily after-fee simple returns, shape (n_assets,), their
        cross-products, shape (n_assets, n_assets), and the number of
        path-days summed; enough for the pooled daily covariance.
    month_growth
        With ``SimulationPlan.keep_months``: each asset's after-fee growth
        factor in each month, float32 of shape (n_paths, n_months, n_assets).
    fan
        With ``SimulationPlan.wealth_fan``: month-end wealth counted in bins
        (:class:`mcalloc.metrics.fan.WealthFan`), summed over chunks.
    """

    book: BookSummary
    asset_growth: np.ndarray
    asset_sum: np.ndarray
    asset_cross: np.ndarray
    n_observations: int
    month_growth: np.ndarray | None = None
    fan: WealthFan | None = None

    @property
    def daily_covariance(self) -> np.ndarray:
        """Pooled covariance of daily after-fee simple returns, (n_assets, n_assets)."""
        n = self.n_observations
        mean = self.asset_sum / n
        return (self.asset_cross - n * np.outer(mean, mean)) / (n - 1)


_PER_ASSET = frozenset({"asset_growth", "month_growth"})
"""The collected per-path arrays that are per asset; all the others are per portfolio."""


_BLOCK_PATHS = 65536
"""Paths per block of a collected result (:class:`_Blocked`)."""


class _Blocked:
    """One per-path result of every path, kept in blocks of rows and put together once, at the end.

    :meth:`assemble` frees each block as soon as it is copied, so putting the
    blocks together (and copying portfolios booked once into every portfolio
    that holds the same weights) needs the finished array plus one block,
    where one array for all paths would need the finished array and the
    collected one at once: 200 to 280 MB more (``year_end_values``) at the
    peak of a million-path run of the default scenario's portfolios.
    """

    def __init__(self, n_paths: int, example: np.ndarray) -> None:
        self.n_paths = n_paths
        self.row_shape = example.shape[1:]
        self.dtype = example.dtype
        starts = range(0, n_paths, _BLOCK_PATHS)
        self.blocks: list[np.ndarray | None] = [
            np.empty((min(_BLOCK_PATHS, n_paths - start), *self.row_shape), self.dtype) for start in starts
        ]

    @property
    def nbytes(self) -> int:
        return self.n_paths * int(np.prod(self.row_shape)) * self.dtype.itemsize

    def write(self, start: int, values: np.ndarray) -> None:
        """Rows ``start`` onwards are ``values``."""
        while values.shape[0]:
            number, offset = divmod(start, _BLOCK_PATHS)
            block = self.blocks[number]
            assert block is not None
            take = min(values.shape[0], block.shape[0] - offset)
            block[offset : offset + take] = values[:take]
            values, start = values[take:], start + take

    def assemble(self, index: np.ndarray | None = None) -> np.ndarray:
        """Every row in one array, once; with ``index``, the last axis is ``index`` of the collected one's."""
        if index is None and len(self.blocks) == 1:
            whole = self.blocks.pop()
            assert whole is not None
            return whole
        columns = self.row_shape if index is None else (*self.row_shape[:-1], index.size)
        out = np.empty((self.n_paths, *columns), self.dtype)
        for number in range(len(self.blocks)):
            block, self.blocks[number] = self.blocks[number], None
            assert block is not None
            start = number * _BLOCK_PATHS
            rows = out[start : start + block.shape[0]]
            if index is None:
                rows[...] = block
            else:  # straight into the rows, with no temporary the size of a block ("clip" takes no buffer)
                np.take(block, index, axis=-1, out=rows, mode="clip")
            del block, rows
        return out


class Collector:
    """Per-path results of consecutive chunks copied into blocks for all paths, chunk by chunk.

    Holding every chunk and concatenating at the end would need twice the
    memory of the result at its peak; this needs it once, plus a block.
    """

    def __init__(self, n_paths: int) -> None:
        self.n_paths = n_paths
        self.filled = 0
        self.arrays: dict[str, _Blocked] = {}
        self.asset_sum: np.ndarray | None = None
        self.asset_cross: np.ndarray | None = None
        self.n_observations = 0
        self.shape: tuple[int, int] = (0, 0)
        self.histogram: np.ndarray | None = None
        self.fan: WealthFan | None = None

    def add(self, part: ChunkResult) -> None:
        fields = {
            "terminal_value": part.book.terminal_value,
            "max_drawdown": part.book.max_drawdown,
            "year_end_values": part.book.year_end_values,
            "log_return_sum": part.book.log_return_sum,
            "log_return_sumsq": part.book.log_return_sumsq,
            "asset_growth": part.asset_growth,
        }
        if part.month_growth is not None:
            fields["month_growth"] = part.month_growth
        for name in (
            "costs_paid",
            "rebalances",
            "taxes_paid",
            "longest_underwater",
            "underwater_at_end",
            "terminal_nav",
            "invested",
            "money_weighted",
            "depleted",
            "period_return_sum",
            "period_return_sumsq",
            "month_end_max_drawdown",
        ):
            values = getattr(part.book, name)
            if values is not None:
                fields[name] = values
        if self.arrays and fields.keys() != self.arrays.keys():
            # every chunk must report the same fields, or some rows would keep np.empty's garbage
            raise RuntimeError(f"chunks report different results: {sorted(fields.keys() ^ self.arrays.keys())}")
        if not self.arrays:
            self.arrays = {name: _Blocked(self.n_paths, values) for name, values in fields.items()}
            self.asset_sum = np.zeros_like(part.asset_sum)
            self.asset_cross = np.zeros_like(part.asset_cross)
            self.shape = (part.book.n_steps, part.book.n_blocks)
        for name, values in fields.items():
            self.arrays[name].write(self.filled, values)
        self.filled += part.asset_growth.shape[0]
        assert self.asset_sum is not None and self.asset_cross is not None
        if part.book.drawdown_histogram is not None:
            if self.histogram is None:
                self.histogram = np.zeros_like(part.book.drawdown_histogram)
            self.histogram += part.book.drawdown_histogram
        if part.fan is not None:
            if self.fan is None:
                self.fan = WealthFan(*part.fan.counts.shape[:2], part.fan.scales, part.fan.widths)
            self.fan.merge(part.fan)
        self.asset_sum += part.asset_sum
        self.asset_cross += part.asset_cross
        self.n_observations += part.n_observations

    def result(self, index: np.ndarray | None = None) -> ChunkResult:
        """Every path's results; with ``index`` (n,), portfolio ``j`` is a copy of the collected portfolio ``index[j]``.

        Each array is put together from its blocks, largest first, and the
        freed blocks are given back to the system before the next.
        """
        assert self.filled == self.n_paths and self.asset_sum is not None and self.asset_cross is not None
        arrays: dict[str, np.ndarray] = {}
        for name in sorted(self.arrays, key=lambda name: self.arrays[name].nbytes, reverse=True):
            # portfolios are the last axis of every per-path array but the per-asset ones
            arrays[name] = self.arrays.pop(name).assemble(None if name in _PER_ASSET else index)
            if self.n_paths > _BLOCK_PATHS:
                return_free_heap()
        if index is not None:
            if self.histogram is not None:
                self.histogram = self.histogram[index]
            if self.fan is not None:
                self.fan = self.fan.for_portfolios(index)
        book = BookSummary(
            terminal_value=arrays["terminal_value"],
            max_drawdown=arrays["max_drawdown"],
            year_end_values=arrays["year_end_values"],
            log_return_sum=arrays["log_return_sum"],
            log_return_sumsq=arrays["log_return_sumsq"],
            n_steps=self.shape[0],
            n_blocks=self.shape[1],
            costs_paid=arrays.get("costs_paid"),
            rebalances=arrays.get("rebalances"),
            terminal_nav=arrays.get("terminal_nav"),
            taxes_paid=arrays.get("taxes_paid"),
            longest_underwater=arrays.get("longest_underwater"),
            underwater_at_end=arrays.get("underwater_at_end"),
            drawdown_histogram=self.histogram,
            invested=arrays.get("invested"),
            money_weighted=arrays.get("money_weighted"),
            depleted=arrays.get("depleted"),
            period_return_sum=arrays.get("period_return_sum"),
            period_return_sumsq=arrays.get("period_return_sumsq"),
            month_end_max_drawdown=arrays.get("month_end_max_drawdown"),
        )
        return ChunkResult(
            book=book,
            asset_growth=arrays["asset_growth"],
            asset_sum=self.asset_sum,
            asset_cross=self.asset_cross,
            n_observations=self.n_observations,
            month_growth=arrays.get("month_growth"),
            fan=self.fan,
        )
