"""Before a run: how much memory and time will it take, and does the machine have the memory?

The estimate counts what a run holds at its peak: per path and portfolio
about twenty numbers plus one per year (the metrics' inputs), the
optimiser's monthly growth of every asset (float32), working copies for the
bootstrap, and a few hundred MB per local worker process. It is rough (within
a factor of about two on the shipped scenarios) and errs high; docs/batch.md
explains it.
"""

from __future__ import annotations

from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError

__all__ = ["PATH_DAYS_PER_SECOND", "available_gb", "check_memory", "estimate"]

PATH_DAYS_PER_SECOND = 3e6
"""Simulated path-days per second per worker, measured on the default scenario (2-core machine, 2026)."""


def estimate(scenario: Scenario) -> dict[str, float]:
    """Rough peak memory (GB) and wall time (minutes) of a run from its sizes; see docs/batch.md."""
    from joblib import effective_n_jobs

    simulation = scenario.simulation
    n_portfolios = len(scenario.portfolio.benchmarks) + len(scenario.optimize.objectives)
    n_months = simulation.horizon_years * 12
    # per path and portfolio: about 20 numbers (8 bytes each) plus one per year (float32), kept for the metrics
    per_path = n_portfolios * (20 * 8 + simulation.horizon_years * 4)
    main = simulation.n_paths * per_path
    # the optimiser's paths: each asset's monthly growth, float32
    fit = 0.0
    if scenario.optimize.objectives and scenario.optimize.scenarios.kind == "paths":
        fit = scenario.optimize.fit_paths(simulation.n_paths) * n_months * len(scenario.assets) * 4.0
    # the metrics' bootstrap and sorting work on copies of a few per-path columns
    working = 4 * simulation.n_paths * n_portfolios * 8
    n_workers = effective_n_jobs(simulation.n_jobs)
    # worker processes on this machine (a remote cluster's workers use their own memory)
    workers = 0.0 if simulation.scheduler is not None else 0.35e9 * n_workers
    passes = simulation.n_paths * (2 if scenario.currency.compare_in else 1)
    fit_paths = scenario.optimize.fit_paths(simulation.n_paths) if scenario.optimize.objectives else 0
    seconds = (passes + fit_paths) * simulation.n_steps / (PATH_DAYS_PER_SECOND * n_workers)
    seconds += 10.0 + 5.0 * len(scenario.optimize.objectives)
    return {"memory_gb": round((main + fit + working + workers) / 1e9, 2), "minutes": round(seconds / 60.0, 1)}


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
        simulation = scenario.simulation
        remedies = ["lower simulation.n_paths (or optimize.n_paths, simulation.n_jobs)"]
        if force is not None:
            remedies.append(f"{force} to run anyway")
        raise ConfigError(
            f"simulation.n_paths: {simulation.n_paths:,} paths x {simulation.horizon_years} years need about "
            f"{needed:.1f} GB but {available:.1f} GB is available; " + ", or ".join(remedies)
        )
