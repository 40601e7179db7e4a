"""Before a run: how much memory and time will it take, and does the machine have the memory?

The estimate counts what a run holds at its peak: per path and portfolio
about twenty numbers plus one per year (the metrics' inputs), the
optimiser's monthly growth of every asset with its working copies, the
bootstrap's, the main process itself, and a few hundred MB per local worker
process that runs chunks. It is rough (within a factor of about 1.5 on the
shipped scenarios, measured at stop 55); docs/batch.md explains it.
"""

from __future__ import annotations

from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError

__all__ = [
    "OPTIMISER_BYTES",
    "PATH_DAYS_PER_SECOND",
    "available_gb",
    "check_memory",
    "estimate",
    "memory_parts",
    "runs_in_process",
]

PATH_DAYS_PER_SECOND = 3e6
"""Simulated path-days per second per worker, measured on the default scenario (2-core machine, 2026)."""

OPTIMISER_BYTES = 28.0
"""Bytes per optimiser path, month and asset at the optimiser's peak: the growth in float32 (4), its float64
copy (8), the cumulative returns (8) and the temporary between them (8). Measured at stop 55: the main process
grew by about 25 bytes per path, month and asset (20,000 to 100,000 optimiser's paths, 10 and 40 years)."""

MAIN_PROCESS_GB = 0.3
"""The main process with its libraries loaded, before any path (measured 0.3 GB)."""

WORKER_GB, IDLE_WORKER_GB = 0.35, 0.05
"""A local worker process that runs chunks, and one started without a chunk to run (measured 0.2 and 0.04 GB)."""

FIXED_SECONDS = 25.0
"""Start-up, the metrics' bootstrap (at most 20,000 paths a resample, whatever the run's size) and the report:
15 to 45 s measured at stop 55 on runs of 1,000 to 200,000 paths."""


def runs_in_process(backend: str, n_jobs: int, n_chunks: int) -> bool:
    """Whether a run's chunks are simulated in the calling process: one worker or one chunk, on this machine."""
    return backend == "loky" and (n_jobs == 1 or n_chunks == 1)


def memory_parts(scenario: Scenario) -> dict[str, float]:
    """A run's peak memory in bytes, by the setting that sizes each part (see :func:`estimate`)."""
    from joblib import effective_n_jobs

    simulation = scenario.simulation
    n_portfolios = len(scenario.portfolio.benchmarks) + len(scenario.optimize.objectives)
    # per path and portfolio: about 20 numbers (8 bytes each) plus one per year (float32), kept for the metrics,
    # and the metrics' bootstrap and sorting work on copies of a few per-path columns
    per_path = n_portfolios * (20 * 8 + simulation.horizon_years * 4 + 4 * 8)
    optimiser = 0.0
    if scenario.optimize.objectives and scenario.optimize.scenarios.kind == "paths":
        fit_paths = scenario.optimize.fit_paths(simulation.n_paths)
        optimiser = fit_paths * simulation.horizon_years * 12 * len(scenario.assets) * OPTIMISER_BYTES
    n_workers = effective_n_jobs(simulation.n_jobs)
    # one chunk, or one worker, runs in the main process (with loky); a remote cluster's workers use their own memory
    in_process = runs_in_process(simulation.backend, simulation.n_jobs, simulation.n_chunks)
    busy = 0 if in_process else min(n_workers, simulation.n_chunks)
    workers = (
        0.0
        if simulation.scheduler is not None or in_process
        else WORKER_GB * busy + IDLE_WORKER_GB * (n_workers - busy)
    )
    return {
        "simulation.n_paths": simulation.n_paths * per_path + MAIN_PROCESS_GB * 1e9,
        "optimize.n_paths": optimiser,
        "simulation.n_jobs": workers * 1e9,
    }


def estimate(scenario: Scenario) -> dict[str, float]:
    """Rough peak memory (GB) and wall time (minutes) of a run from its sizes; see docs/batch.md."""
    from joblib import effective_n_jobs

    simulation = scenario.simulation
    n_workers = effective_n_jobs(simulation.n_jobs)
    passes = simulation.n_paths * (2 if scenario.currency.compare_in else 1)
    fit_paths = scenario.optimize.fit_paths(simulation.n_paths) if scenario.optimize.objectives else 0
    seconds = (passes + fit_paths) * simulation.n_steps / (PATH_DAYS_PER_SECOND * n_workers)
    seconds += FIXED_SECONDS + 5.0 * len(scenario.optimize.objectives)
    memory = sum(memory_parts(scenario).values())
    return {"memory_gb": round(memory / 1e9, 2), "minutes": round(seconds / 60.0, 1)}


def available_gb() -> float:
    """Memory the machine can give a new process now (psutil's ``available``), in GB."""
    import psutil

    return float(psutil.virtual_memory().available) / 1e9


def check_memory(scenario: Scenario, force: str | None = "pass --force") -> None:
    """Refuse a run that would need more memory than the machine has available now.

    ``force``: how the caller overrides the check (``pass --force``,
    ``pass force=True``), offered in the message; ``None`` when it cannot.

    Raises
    ------
    ConfigError
        Naming the estimate, what is available and what to change.
    """
    needed, available = estimate(scenario)["memory_gb"], available_gb()
    if needed > available:
        parts = memory_parts(scenario)
        largest = max(parts, key=lambda key: parts[key])  # the setting to lower first
        others = ", ".join(key for key in parts if key != largest and parts[key] > 0.0)
        remedies = [f"lower {largest}" + (f" (or {others})" if others else "")]
        if force is not None:
            remedies.append(f"{force} to run anyway")
        shares = ", ".join(f"{key} {value / 1e9:.1f}" for key, value in parts.items() if value > 0.0)
        raise ConfigError(
            f"{largest}: the run needs about {needed:.1f} GB ({shares}) but {available:.1f} GB is available; "
            + ", or ".join(remedies)
        )
