"""Monte Carlo over chunks of paths, in parallel with joblib.

Paths are split into chunks of ``chunk_size`` (the last may be smaller). Chunk
``k`` draws from its own generator seeded by the ``k``-th child of
``SeedSequence(seed)``, so every number depends on the seed and chunk size
only: running the chunks on one worker or many gives identical results.

Each chunk runs month by month: simulate the month's daily returns, apply
fees, book the portfolios, and keep running sums. Nothing of shape
(n_paths, n_steps, ...) is ever held, so memory does not grow with horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed

from engine.models.joint import JointModel
from engine.portfolio.accounting import BookSummary, FixedMixBook
from engine.portfolio.costs import FeeModel
from engine.portfolio.schedule import Schedule
from engine.simulation.currency import CurrencyOverlay

__all__ = ["ChunkResult", "SimulationPlan", "chunk_sizes", "run_simulation", "simulate_chunk"]


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate and which fixed-mix portfolios to run along the paths.

    ``weights`` has shape (n_portfolios, n_assets). ``currency`` turns the
    model's factors (assets plus FX) into base-currency asset returns.
    """

    model: JointModel
    fees: FeeModel
    schedule: Schedule
    weights: np.ndarray
    currency: CurrencyOverlay | None = None


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
    """

    book: BookSummary
    asset_growth: np.ndarray
    asset_sum: np.ndarray
    asset_cross: np.ndarray
    n_observations: int

    @property
    def daily_covariance(self) -> np.ndarray:
        """Pooled covariance of daily after-fee simple returns, (n_assets, n_assets)."""
        n = self.n_observations
        mean = self.asset_sum / n
        return (self.asset_cross - n * np.outer(mean, mean)) / (n - 1)


def chunk_sizes(n_paths: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks that ``n_paths`` are split into."""
    full, rest = divmod(n_paths, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def simulate_chunk(plan: SimulationPlan, n_paths: int, seed: np.random.SeedSequence) -> ChunkResult:
    """Simulate one chunk of paths and run every portfolio along them."""
    rng = np.random.Generator(np.random.PCG64(seed))
    schedule = plan.schedule
    state = plan.model.initial_state(n_paths)
    book = FixedMixBook(plan.weights, n_paths)
    n_assets = plan.weights.shape[1]
    asset_growth = np.ones((n_paths, n_assets))
    asset_sum = np.zeros(n_assets)
    asset_cross = np.zeros((n_assets, n_assets))
    bounds = schedule.month_bounds
    daily = schedule.rebalance == "daily"
    for month in range(bounds.size - 1):
        n_steps = int(bounds[month + 1] - bounds[month])
        log_returns = plan.model.simulate_block(rng, state, n_steps)
        if plan.currency is not None:
            log_returns = plan.currency.apply(log_returns)
        growth = plan.fees.net_growth(log_returns, out=log_returns)
        if schedule.rebalance_at(month):
            book.rebalance()
        block_growth = book.advance(growth, daily_rebalance=daily)
        if schedule.is_year_end(month):
            book.mark_year_end()
        asset_growth *= block_growth
        # after-fee simple returns in path-major order: the sums below add
        # them up in that order, into a buffer reused from month to month
        simple = np.subtract(growth, 1.0, out=state.scratch("simple", growth.shape)).reshape(-1, n_assets)
        asset_sum += simple.sum(axis=0)
        asset_cross += simple.T @ simple
    return ChunkResult(
        book=book.summary(),
        asset_growth=asset_growth,
        asset_sum=asset_sum,
        asset_cross=asset_cross,
        n_observations=n_paths * schedule.n_steps,
    )


def _concatenate(parts: list[ChunkResult]) -> ChunkResult:
    books = [p.book for p in parts]
    book = BookSummary(
        terminal_value=np.concatenate([b.terminal_value for b in books]),
        max_drawdown=np.concatenate([b.max_drawdown for b in books]),
        year_end_values=np.concatenate([b.year_end_values for b in books]),
        log_return_sum=np.concatenate([b.log_return_sum for b in books]),
        log_return_sumsq=np.concatenate([b.log_return_sumsq for b in books]),
        n_steps=books[0].n_steps,
        n_blocks=books[0].n_blocks,
    )
    asset_sum = np.zeros_like(parts[0].asset_sum)
    asset_cross = np.zeros_like(parts[0].asset_cross)
    for part in parts:
        asset_sum += part.asset_sum
        asset_cross += part.asset_cross
    return ChunkResult(
        book=book,
        asset_growth=np.concatenate([p.asset_growth for p in parts]),
        asset_sum=asset_sum,
        asset_cross=asset_cross,
        n_observations=sum(p.n_observations for p in parts),
    )


def run_simulation(
    plan: SimulationPlan,
    n_paths: int,
    chunk_size: int,
    seed: int,
    n_jobs: int = 1,
) -> ChunkResult:
    """Simulate ``n_paths`` paths in chunks on ``n_jobs`` workers.

    The result does not depend on ``n_jobs``: chunks are seeded by index and
    combined in index order.
    """
    sizes = chunk_sizes(n_paths, chunk_size)
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    if n_jobs == 1 or len(sizes) == 1:
        parts = [simulate_chunk(plan, size, child) for size, child in zip(sizes, seeds, strict=True)]
    else:
        parallel = Parallel(n_jobs=n_jobs, backend="loky")
        parts = list(
            parallel(delayed(simulate_chunk)(plan, size, child) for size, child in zip(sizes, seeds, strict=True))
        )
    return _concatenate(parts)
