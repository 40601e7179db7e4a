"""Monte Carlo over chunks of paths, in parallel with joblib.

Paths are split into chunks of ``chunk_size`` (the last may be smaller). Chunk
``k`` draws from its own generator seeded by the ``k``-th child of
``SeedSequence(seed)``, so every number depends on the seed and chunk size
only: running the chunks on one worker or many gives identical results.

A chunk whose model has uncertain means draws each path's offset to them
first, from a stream of its own (the chunk's seed with one more spawn key),
so that the shocks are the same numbers with the means known or not.

Each chunk runs month by month: simulate the month's daily returns, apply
fees, book the portfolios, and keep running sums. Nothing of shape
(n_paths, n_steps, ...) is ever held, so memory does not grow with horizon.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config

from mcalloc.errors import ModelError, signals_held
from mcalloc.metrics.fan import LOG_BIN, LOG_MAX, WealthFan
from mcalloc.models.joint import JointModel
from mcalloc.portfolio.accounting import BookSummary, FixedMixBook
from mcalloc.portfolio.compiled import CompiledBook
from mcalloc.portfolio.costs import FeeModel, RebalancePolicy
from mcalloc.portfolio.flows import CashFlowSchedule
from mcalloc.portfolio.schedule import Schedule
from mcalloc.portfolio.taxes import AccountTax
from mcalloc.simulation.currency import CurrencyOverlay
from mcalloc.simulation.workers import start_resource_trackers, watched_workers

__all__ = [
    "ChunkResult",
    "SimulationPlan",
    "chunk_sizes",
    "release_workers",
    "run_simulation",
    "seed_sequence",
    "simulate_chunk",
]


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate and which fixed-mix portfolios to run along the paths.

    ``weights`` has shape (n_portfolios, n_assets). ``currency`` turns the
    model's factors (assets plus FX) into base-currency asset returns.
    ``keep_months`` keeps every asset's monthly growth on every path
    (``ChunkResult.month_growth``): the optimiser's scenarios. ``wealth_fan``
    counts every portfolio's month-end wealth (``ChunkResult.fan``).
    """

    model: JointModel
    fees: FeeModel
    schedule: Schedule
    weights: np.ndarray
    currency: CurrencyOverlay | None = None
    compiled: bool = True
    policy: RebalancePolicy | None = None
    flows: CashFlowSchedule | None = None
    tax: AccountTax | None = None
    keep_months: bool = False
    wealth_fan: bool = False


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


_SHARE_PER_RUN = 2
"""A task takes ``1 / (_SHARE_PER_RUN * workers)`` of the chunks still to send (guided scheduling)."""

_MAX_CHUNKS_PER_RUN = 16
"""Most chunks per task: what a worker returns at once stays small whatever ``n_paths`` is."""


def run_edges(n_chunks: int, workers: int) -> list[int]:
    """Where a parallel pass's runs of consecutive chunks start and stop: ``[0, ..., n_chunks]``.

    Each run takes a share of the chunks still to send, at most
    :data:`_MAX_CHUNKS_PER_RUN` and at least one, so runs shrink towards the
    end (guided self-scheduling, Polychronopoulos and Kuck 1987): few sends of
    the plan, and a worker that finishes early waits at most one chunk's time
    for the last, where runs of equal length left it idle up to a run's.
    """
    edges = [0]
    while edges[-1] < n_chunks:
        remaining = n_chunks - edges[-1]
        share = -(-remaining // (_SHARE_PER_RUN * max(1, workers)))
        edges.append(edges[-1] + min(_MAX_CHUNKS_PER_RUN, share))
    return edges


_DRIFT_STREAM = 2**32 - 1
"""The spawn key that derives a chunk's stream of drifts from its seed (no chunk is spawned this far)."""


def drift_generator(seed: np.random.SeedSequence) -> np.random.Generator:
    """The generator a chunk seeded by ``seed`` draws its paths' offsets to the means from."""
    key = (*seed.spawn_key, _DRIFT_STREAM)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed.entropy, spawn_key=key)))


def chunk_sizes(n_paths: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks that ``n_paths`` are split into."""
    full, rest = divmod(n_paths, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def simulate_chunk(plan: SimulationPlan, n_paths: int, seed: np.random.SeedSequence) -> ChunkResult:
    """Simulate one chunk of paths and run every portfolio along them.

    Floating-point overflow is not warned about day by day (thousands of
    identical warnings); an asset whose growth is not finite at the end
    stops the run with one error naming it.

    Raises
    ------
    ModelError
        If an asset's simulated growth overflowed.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        result = (
            _simulate_chunk_numpy(plan, n_paths, seed)
            if not plan.compiled
            else _simulate_chunk_compiled(plan, n_paths, seed)
        )
    broken = ~np.isfinite(result.asset_growth).all(axis=0)
    if broken.any():
        names = [plan.model.asset_names[i] for i in np.flatnonzero(broken)]
        raise ModelError(
            f"{', '.join(names)}: simulated returns overflowed (growth is not finite); check "
            f"model.marginals.params.{names[0]} (mu, omega, beta: the long-run volatility they imply) and the horizon"
        )
    return result


def _simulate_chunk_numpy(plan: SimulationPlan, n_paths: int, seed: np.random.SeedSequence) -> ChunkResult:
    """:func:`simulate_chunk` in plain numpy, the reference the compiled path is tested against."""
    rng = np.random.Generator(np.random.PCG64(seed))
    schedule = plan.schedule
    state = plan.model.initial_state(n_paths, drift_generator(seed))
    book = FixedMixBook(plan.weights, n_paths, plan.policy)
    if plan.tax is not None:
        plan.tax.prepare(book)
    n_assets = plan.weights.shape[1]
    asset_growth = np.ones((n_paths, n_assets))
    asset_sum = np.zeros(n_assets)
    asset_cross = np.zeros((n_assets, n_assets))
    bounds = schedule.month_bounds
    months = _month_buffer(plan, n_paths, bounds.size - 1)
    fan = _wealth_fan(plan, bounds.size - 1)
    daily = schedule.rebalance == "daily"
    for month in range(bounds.size - 1):
        n_steps = int(bounds[month + 1] - bounds[month])
        log_returns = plan.model.simulate_block(rng, state, n_steps, compiled=False)
        if plan.currency is not None:
            log_returns = plan.currency.apply(log_returns)
        growth = plan.fees.net_growth(log_returns, out=log_returns)
        _start_month(plan, book, month)
        block_growth = book.advance(growth, daily_rebalance=daily)
        _end_month(plan, book, month)
        if fan is not None:
            fan.add(month, book.value)
        asset_growth *= block_growth
        if months is not None:
            months[:, month, :] = block_growth
        # after-fee simple returns in path-major order: the sums below add
        # them up in that order, into a buffer reused from month to month
        simple = np.subtract(growth, 1.0, out=state.scratch("simple", growth.shape)).reshape(-1, n_assets)
        asset_sum += simple.sum(axis=0)
        asset_cross += simple.T @ simple
    return ChunkResult(
        book=book.summary(schedule.horizon_years),
        asset_growth=asset_growth,
        asset_sum=asset_sum,
        asset_cross=asset_cross,
        n_observations=n_paths * schedule.n_steps,
        month_growth=months,
        fan=fan,
    )


def _wealth_fan(plan: SimulationPlan, n_months: int) -> WealthFan | None:
    """Counts of month-end wealth when the plan asks for them.

    Each month's bins are centred on the money put in so far grown at the
    assets' average long-run mean log return, so that long horizons (a
    century at 8% a year grows wealth e^8-fold) stay inside the fan's range.
    """
    if not plan.wealth_fan:
        return None
    # the money put in by each month end (a share of the initial wealth), as the report's paid-in line
    scales = np.ones(n_months) if plan.flows is None else plan.flows.paid_in()[1 : n_months + 1].copy()
    n_assets = plan.weights.shape[1]
    drift = float(np.mean(plan.model.mean_log_returns()[:n_assets]))
    steps = plan.schedule.month_bounds[1 : n_months + 1]
    if np.isfinite(drift):
        scales *= np.exp(drift * steps)
    return WealthFan(plan.weights.shape[0], n_months, scales, _fan_widths(plan, steps))


_FAN_SPREADS = 3.0
"""Standard deviations of log wealth either side of the scale a month's bins reach at least."""


def _fan_widths(plan: SimulationPlan, steps: np.ndarray) -> np.ndarray:
    """Each month's bin width: 1% of wealth, wider where ``_FAN_SPREADS`` standard deviations pass ``LOG_MAX``.

    The spread of log wealth after ``t`` steps is about ``sqrt(v t + d t^2)``
    for ``v`` the largest series' variance per step (an asset's and an
    exchange rate's standard deviations added: the two compound for an
    investor abroad) and ``d`` the largest variance of a path's offset to
    its mean (0 with the means known); with uncertain means it grows with
    ``t``, not its square root, and after decades passes the range that 1%
    bins span.
    """
    model = plan.model
    n_assets = plan.weights.shape[1]

    def largest(values: np.ndarray) -> float:
        finite = values[np.isfinite(values)]
        return float(np.sqrt(finite.max())) if finite.size else 0.0

    with np.errstate(invalid="ignore"):
        variances = np.diag(model.long_run_covariance()) / 1e4
    offsets = np.diag(model.drift_covariance()) if model.mean_years is not None else np.zeros(variances.size)
    step_sd = largest(variances[:n_assets]) + largest(variances[n_assets:])
    offset_sd = largest(offsets[:n_assets]) + largest(offsets[n_assets:])
    spread = np.sqrt(step_sd**2 * steps + (offset_sd * steps) ** 2)
    return LOG_BIN * np.maximum(1.0, _FAN_SPREADS * spread / LOG_MAX)


def _month_buffer(plan: SimulationPlan, n_paths: int, n_months: int) -> np.ndarray | None:
    """Where each asset's monthly growth goes when the plan keeps it."""
    if not plan.keep_months:
        return None
    return np.empty((n_paths, n_months, plan.weights.shape[1]), dtype=np.float32)


def _start_month(plan: SimulationPlan, book: FixedMixBook, month: int) -> None:
    """What happens as ``month`` starts, in order: the tax tally, contributions and withdrawals, rebalancing."""
    if plan.tax is not None:
        plan.tax.on_month_start(book, month)
    if plan.flows is not None:
        fixed, rate = plan.flows.at(month)
        deposit = plan.flows.deposit_at(month)
        if fixed or rate or deposit:  # a deposit and a withdrawal that cancel still count as a deposit
            book.apply_flow(fixed, rate, month / 12.0, deposit)
    if plan.schedule.rebalance_at(month):
        book.rebalance()


def _end_month(plan: SimulationPlan, book: FixedMixBook, month: int) -> None:
    """What happens as ``month`` ends: dividend taxes, and at a year's end the yearly tax and the year-end mark."""
    if plan.tax is not None:
        plan.tax.on_month_end(book)
    if plan.schedule.is_year_end(month):
        if plan.tax is not None:
            plan.tax.on_year_end(book, last=month == plan.schedule.month_bounds.size - 2)
        book.mark_year_end()


def _simulate_chunk_compiled(plan: SimulationPlan, n_paths: int, seed: np.random.SeedSequence) -> ChunkResult:
    """:func:`simulate_chunk` with the compiled recursions and books; the numpy loop above is the reference."""
    rng = np.random.Generator(np.random.PCG64(seed))
    schedule = plan.schedule
    state = plan.model.initial_state(n_paths, drift_generator(seed))
    book = CompiledBook(plan.weights, n_paths, plan.fees.daily_factor, plan.policy)
    if plan.tax is not None:
        plan.tax.prepare(book)
    bounds = schedule.month_bounds
    months = _month_buffer(plan, n_paths, bounds.size - 1)
    previous = np.ones((n_paths, plan.weights.shape[1]))
    fan = _wealth_fan(plan, bounds.size - 1)
    daily = schedule.rebalance == "daily"
    for month in range(bounds.size - 1):
        n_steps = int(bounds[month + 1] - bounds[month])
        log_returns = plan.model.simulate_block(rng, state, n_steps)
        if plan.currency is not None:
            log_returns = plan.currency.apply(log_returns)
        _start_month(plan, book, month)
        book.advance_log(log_returns, daily_rebalance=daily)
        _end_month(plan, book, month)
        if fan is not None:
            fan.add(month, book.value)
        if months is not None:
            current = book.asset_growth
            months[:, month, :] = current / previous
            previous = current
    return ChunkResult(
        book=book.summary(schedule.horizon_years),
        asset_growth=book.asset_growth,
        asset_sum=book.asset_sum,
        asset_cross=book.asset_cross,
        n_observations=n_paths * schedule.n_steps,
        month_growth=months,
        fan=fan,
    )


def _simulate_chunks(plan: SimulationPlan, sizes: list[int], seeds: list[np.random.SeedSequence]) -> list[ChunkResult]:
    """A run of consecutive chunks; their counts (wealth fan, drawdown histogram) are summed into the first's.

    Each chunk's counts are added as soon as it is done, so the worker holds
    one set (a fan is 3 to 5 MB a chunk on the default scenario's portfolios) and
    sends one back. Sums of integer counts: the same in any grouping.
    """
    parts: list[ChunkResult] = []
    for size, child in zip(sizes, seeds, strict=True):
        part = simulate_chunk(plan, size, child)
        if parts:
            first = parts[0]
            # every chunk of a plan counts the same (both or neither), so no count is dropped here
            assert (first.fan is None) == (part.fan is None)
            assert (first.book.drawdown_histogram is None) == (part.book.drawdown_histogram is None)
            if first.fan is not None and part.fan is not None:
                first.fan.merge(part.fan)
            total = first.book.drawdown_histogram
            if total is not None and part.book.drawdown_histogram is not None:
                total += part.book.drawdown_histogram
            part = replace(part, fan=None, book=replace(part.book, drawdown_histogram=None))
        parts.append(part)
    return parts


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


class _Collector:
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


def plan_for_workers(plan: SimulationPlan) -> SimulationPlan:
    """``plan`` without what simulating does not need: the fitted model's dates (a pandas index).

    Workers unpickle the plan; without the dates they run without pandas
    (tests/test_worker_imports.py).
    """
    if plan.model.fit_index is None:
        return plan
    return replace(plan, model=replace(plan.model, fit_index=None))


def seed_sequence(seed: int, stream: int = 0) -> np.random.SeedSequence:
    """The root of a run's chunk seeds: stream 0 is the paths portfolios are judged on, others are apart from it."""
    return np.random.SeedSequence(seed) if stream == 0 else np.random.SeedSequence((seed, stream))


def run_simulation(
    plan: SimulationPlan,
    n_paths: int,
    chunk_size: int,
    seed: int,
    n_jobs: int = 1,
    stream: int = 0,
    progress: Callable[[int], None] | None = None,
    backend: str = "loky",
    release: bool = False,
) -> ChunkResult:
    """Simulate ``n_paths`` paths in chunks on ``n_jobs`` workers.

    The result does not depend on ``n_jobs``: chunks are seeded by index and
    combined in index order. ``stream`` picks independent sets of paths for
    the same seed (see :func:`seed_sequence`). ``progress`` is called with
    the number of paths each time finished chunks come back. ``backend``
    is joblib's: ``loky`` (local processes) or ``dask`` (the workers of the
    dask.distributed client this process is connected to, see
    :func:`mcalloc.simulation.distributed.dask_client`); numbers do not
    change with it. Portfolios with the same weights are booked once: their
    books would be identical, so each is a copy of the one booked.
    ``release`` stops the local worker processes as soon as every chunk is
    back, before those copies are made: a large run's copies then do not
    share the machine's memory with idle workers.
    """
    distinct, inverse = np.unique(plan.weights, axis=0, return_inverse=True)
    copies = np.asarray(inverse).ravel() if distinct.shape[0] < plan.weights.shape[0] else None
    if copies is not None:
        plan = replace(plan, weights=distinct)
    plan = plan_for_workers(plan)
    report = progress if progress is not None else (lambda done: None)
    return_free_heap()
    sizes = chunk_sizes(n_paths, chunk_size)
    seeds = seed_sequence(seed, stream).spawn(len(sizes))
    collector = _Collector(n_paths)
    if backend == "loky" and (n_jobs == 1 or len(sizes) == 1):
        for size, child in zip(sizes, seeds, strict=True):
            collector.add(simulate_chunk(plan, size, child))
            report(size)
        return collector.result(copies)
    with _on_cluster(backend):
        return _in_parallel(plan, sizes, seeds, collector, report, copies, n_jobs, backend, release)


def return_free_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    What earlier stages freed (the optimiser's problems, a previous pass's
    copies) stays in this process's resident memory otherwise, under the
    pass's results and its workers: about 80 MB on the default scenario.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)


def _on_cluster(backend: str) -> AbstractContextManager[None]:
    """A dask cluster's failures as one line (:func:`mcalloc.simulation.distributed.cluster_failures`)."""
    if backend != "dask":
        return nullcontext()
    from mcalloc.simulation.distributed import cluster_failures

    return cluster_failures()


def _in_parallel(
    plan: SimulationPlan,
    sizes: list[int],
    seeds: list[np.random.SeedSequence],
    collector: _Collector,
    report: Callable[[int], None],
    copies: np.ndarray | None,
    n_jobs: int,
    backend: str,
    release: bool,
) -> ChunkResult:
    """:func:`run_simulation`'s chunks on ``n_jobs`` workers of ``backend``, in runs of consecutive chunks."""
    # runs of consecutive chunks (run_edges): the plan is sent once per run rather than once per
    # chunk, shorter runs at the end keep the workers evenly loaded, and a bounded number of
    # chunks per run bounds what a worker holds and sends back at once
    workers = effective_n_jobs(n_jobs) if backend == "loky" else _dask_workers()
    tasks = (
        delayed(_simulate_chunks)(plan, sizes[start:stop], seeds[start:stop])
        for start, stop in itertools.pairwise(run_edges(len(sizes), workers))
    )
    # loky workers watch this process from the moment they start, so none outlives it (simulation.workers)
    local = {"n_jobs": workers, **watched_workers()} if backend == "loky" else {"n_jobs": -1}
    with parallel_config(backend=backend, **local):
        # the workers start (and their manager threads) before Parallel returns: without SIGINT, which
        # they inherit, so that a Ctrl-C reaches this process alone (simulation.workers)
        if backend == "loky":
            start_resource_trackers()
        with signals_held(signal.SIGINT):
            runs = Parallel(batch_size=1, return_as="generator")(tasks)
        # results come back in submission order whatever the backend, so chunks are combined in index order
        for run in runs:
            for part in run:
                collector.add(part)
            report(sum(part.asset_growth.shape[0] for part in run))
            del run, part  # the last run's chunks are not kept alive under the result
    if release and backend == "loky":
        release_workers()
    return collector.result(copies)


def _dask_workers() -> int:
    """Worker threads of the dask.distributed cluster this process is connected to (``distributed.Client``)."""
    from distributed import get_client

    info = get_client().scheduler_info()
    return max(1, sum(int(worker.get("nthreads", 1)) for worker in info["workers"].values()))


Item = TypeVar("Item")
Result = TypeVar("Result")


def local_threads(n_jobs: int) -> int:
    """Threads for work in this process (the bootstrap tables, the optimiser's grid): ``n_jobs`` as joblib
    reads it, at most this machine's cores."""
    return max(1, min(int(effective_n_jobs(n_jobs)), os.cpu_count() or 1))


def thread_map(function: Callable[[Item], Result], items: Sequence[Item], threads: int, name: str) -> list[Result]:
    """``[function(item) for item in items]``, in order, on up to ``threads`` threads of this process.

    For numpy work that releases the GIL; the threads are named ``name``.
    """
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(threads, thread_name_prefix=name) as pool:
        return list(pool.map(function, items))


def release_workers() -> None:
    """Stop joblib's idle worker processes now rather than after their idle timeout (they restart on demand)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
