"""What a simulation worker loads: the modules that simulate, not the ones that fit, report or optimise.

A loky or dask worker unpickles its task (the simulation plan and
``simulation.paths._simulate_chunks``), which imports the modules of the
plan's classes. Each heavy library such a worker loads costs its memory once
per worker (pandas and scipy.stats about 60 MB each, arch more), so the
packages import their names on first use and the simulating modules import
pandas, scipy.stats, scipy.optimize and arch only where they fit or read.
The plans are those the pipeline really simulates from, captured from
``run_simulation``'s calls to ``simulate_chunk``; a fresh interpreter
unpickles each and runs a chunk, as a worker would.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcalloc.config import load_scenario
from mcalloc.pipeline import run_scenario
from mcalloc.simulation import paths
from mcalloc.simulation.paths import ChunkResult, SimulationPlan

from .conftest import DEFAULT_CONFIG, ROOT

SMALL = [
    "simulation.n_paths=200",
    "simulation.chunk_size=100",
    "simulation.horizon_years=1",
    "output.report=false",
    "optimize.objectives=[]",
]
NOT_IN_A_WORKER = (
    "pandas",
    "arch",
    "statsmodels",
    "matplotlib",
    "cvxpy",
    "scipy.stats",
    "scipy.optimize",
    "mcalloc.data",
    "mcalloc.models.fitting",
    "mcalloc.models.joint_fit",
    "mcalloc.models.selection",
    "mcalloc.models.assembly",
    "mcalloc.pipeline",
)
WORKER = """
import json, pickle, sys
with open(sys.argv[1], "rb") as file:
    plan, sizes, seeds = pickle.load(file)
from mcalloc.simulation.paths import _simulate_chunks
_simulate_chunks(plan, sizes, seeds)
print(json.dumps(sorted(sys.modules)))
"""


def _sent_plan(config: Path, overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the scenario on one worker; the plan its first chunk is simulated from, pickled as a task would be.

    On one worker ``run_simulation`` calls ``simulate_chunk`` with the plan it
    would send to worker processes, so that is the plan captured.
    """
    real = paths.simulate_chunk
    path = tmp_path / "plan.pkl"

    def capture(plan: SimulationPlan, n_paths: int, seed: np.random.SeedSequence) -> ChunkResult:
        if not path.exists():
            path.write_bytes(pickle.dumps((plan, [n_paths], [seed])))
        return real(plan, n_paths, seed)

    monkeypatch.setattr(paths, "simulate_chunk", capture)
    run_scenario(load_scenario(config, [*SMALL, *overrides, "simulation.n_jobs=1"]), out=tmp_path / "run")
    assert path.exists()
    return path


def _worker_modules(plan_file: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(plan_file)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(done.stdout))


def _loaded(modules: set[str]) -> list[str]:
    return [name for name in NOT_IN_A_WORKER if name in modules or any(m.startswith(name + ".") for m in modules)]


GIVEN_CORRELATION = "model.dependence.correlation=[[1,0.5,0.4],[0.5,1,0.3],[0.4,0.3,1]]"


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        pytest.param(DEFAULT_CONFIG, [], id="default"),
        pytest.param(DEFAULT_CONFIG, ["model.dependence.kind=t", GIVEN_CORRELATION, "model.dependence.nu=8"], id="t"),
        pytest.param(
            DEFAULT_CONFIG,
            ["model.dependence.kind=dcc", GIVEN_CORRELATION, "model.dependence.dcc={a: 0.03, b: 0.95}"],
            id="dcc",
        ),
        pytest.param(ROOT / "configs" / "examples" / "sweden.yaml", [], id="sweden"),
    ],
)
def test_a_worker_loads_no_fitting_reporting_or_optimising_library(
    config: Path, overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = _worker_modules(_sent_plan(config, overrides, tmp_path, monkeypatch))
    assert "mcalloc.simulation.paths" in modules and "numpy" in modules
    assert _loaded(modules) == []


def test_a_worker_of_a_fitted_model_loads_no_pandas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    # a model fitted to data carries its dates (a pandas index); the workers are sent the model without them
    config = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    overrides = ["data.start=2015-01-01", "output.calibration.n_paths=0", "model.dependence.kind=t"]
    modules = _worker_modules(_sent_plan(config, overrides, tmp_path, monkeypatch))
    assert _loaded(modules) == []
