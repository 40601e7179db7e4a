"""Throughput of the simulator against references measured in the same run.

References: drawing the same number of standard normals with numpy's PCG64
(the floor for any simulator that draws its shocks), and arch's own
``arch_model(...).simulate`` for the same GJR-GARCH-t models, one path and
asset at a time. Used by ``scripts/bench_simulation.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from arch import arch_model

from engine.config.schema import Scenario
from engine.models.joint import JointModel
from engine.portfolio.costs import FeeModel
from engine.portfolio.schedule import Schedule
from engine.simulation.paths import SimulationPlan, run_simulation

__all__ = ["Throughput", "measure_throughput"]


@dataclass(frozen=True)
class Throughput:
    """Median seconds per simulated path-day-asset for each contender."""

    raw_rng: float
    engine_1_worker: float
    engine_2_workers: float
    arch_simulate: float

    def report(self) -> list[str]:
        rows = [
            ("raw RNG (PCG64 normals)", self.raw_rng),
            ("mcalloc, 1 worker", self.engine_1_worker),
            ("mcalloc, 2 workers", self.engine_2_workers),
            ("arch simulate, 1 worker", self.arch_simulate),
        ]
        lines = [f"  {name:<26} {seconds * 1e9:8.1f} ns per path-day-asset" for name, seconds in rows]
        lines += [
            "ratios",
            f"  mcalloc 1 worker / raw RNG   {self.engine_1_worker / self.raw_rng:6.2f}x  (1 is the floor)",
            f"  arch / mcalloc 1 worker      {self.arch_simulate / self.engine_1_worker:6.1f}x  (speed-up over arch)",
            f"  mcalloc 1 / 2 workers        {self.engine_1_worker / self.engine_2_workers:6.2f}x  (2 is ideal)",
        ]
        return lines


def _median_seconds(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_throughput(
    scenario: Scenario, model: JointModel, n_paths: int, repeat: int = 3, arch_paths: int = 10
) -> Throughput:
    """Time the engine (booking one single-asset portfolio per asset) and both references."""
    sim = scenario.simulation
    n_assets = len(scenario.assets)
    n_steps = sim.n_steps
    plan = SimulationPlan(
        model=model,
        fees=FeeModel(np.array([a.ter for a in scenario.assets]), sim.steps_per_year),
        schedule=Schedule(sim.horizon_years, sim.steps_per_year, scenario.portfolio.rebalance),
        weights=np.eye(n_assets),
    )
    block = (sim.chunk_size * sim.steps_per_year // 12, n_assets)

    def raw_rng() -> None:
        rng = np.random.Generator(np.random.PCG64(1))
        for _ in range(max(n_paths // sim.chunk_size, 1) * 12 * sim.horizon_years):
            rng.standard_normal(block)

    def engine(n_jobs: int) -> Callable[[], object]:
        return lambda: run_simulation(plan, n_paths, sim.chunk_size, scenario.seed, n_jobs=n_jobs)

    def arch_reference() -> None:
        for marginal in model.marginals:
            p = marginal.params
            spec = arch_model(None, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t")
            params = [p["mu"], p["omega"], p["alpha"], p["gamma"], p["beta"], p["nu"]]
            for _ in range(arch_paths):
                spec.simulate(params, nobs=n_steps, burn=0)

    engine(2)()  # start the worker pool so that its start-up is not timed
    units = n_paths * n_steps * n_assets
    return Throughput(
        raw_rng=_median_seconds(raw_rng, repeat) / units,
        engine_1_worker=_median_seconds(engine(1), repeat) / units,
        engine_2_workers=_median_seconds(engine(2), repeat) / units,
        arch_simulate=_median_seconds(arch_reference, repeat) / (arch_paths * n_steps * n_assets),
    )
