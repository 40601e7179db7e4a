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

import itertools
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config

from mcalloc.errors import ModelError, signals_held
from mcalloc.metrics.fan import LOG_BIN, LOG_MAX, WealthFan
from mcalloc.models.joint import JointModel
from mcalloc.portfolio.accounting import FixedMixBook
from mcalloc.portfolio.compiled import CompiledBook
from mcalloc.portfolio.costs import FeeModel, RebalancePolicy
from mcalloc.portfolio.flows import CashFlowSchedule
from mcalloc.portfolio.schedule import Schedule
from mcalloc.portfolio.taxes import AccountTax
from mcalloc.simulation.collect import ChunkResult, Collector
from mcalloc.simulation.currency import CurrencyOverlay
from mcalloc.simulation.parallel import release_workers, return_free_heap
from mcalloc.simulation.resources import runs_in_process
from mcalloc.simulation.workers import start_resource_trackers, watched_workers

__all__ = [
    "ChunkResult",
    "SimulationPlan",
    "chunk_sizes",
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
    collector = Collector(n_paths)
    if runs_in_process(backend, n_jobs, len(sizes)):
        for size, child in zip(sizes, seeds, strict=True):
            collector.add(simulate_chunk(plan, size, child))
            report(size)
        return collector.result(copies)
    with _on_cluster(backend):
        return _in_parallel(plan, sizes, seeds, collector, report, copies, n_jobs, backend, release)


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
    collector: Collector,
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
