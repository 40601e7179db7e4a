"""Throughput of the simulator against references measured in the same run.

Three dependence models are built on the scenario's own marginals and
correlation: a Gaussian copula, a t copula (``nu = 8``) and a DCC(1,1)
(``a = 0.03``, ``b = 0.95``); a market factor, if the scenario has one, is
left out so that the three compare like for like (the rest of the model,
uncertain means and variance ceiling included, is kept). The scenario's model itself
is timed too, as ``default_model``. For each model:

* ``asset_steps_per_s``: simulated asset-days per second of whole chunks
  as a run's main pass books them (shocks, recursions, and the scenario's
  benchmark portfolios with its fees, rebalancing policy, flows, tax,
  currency and the wealth fan; a run also books its optimised portfolios,
  and draws the optimiser's paths first),
  :func:`~mcalloc.simulation.paths.run_simulation` on one worker. Until
  stop 38 it booked one single-asset portfolio per asset with plain fees and
  no fan, which flattered it by up to a fifth;
* ``rng_normals_per_s``: numpy's PCG64 ``standard_normal`` drawing as many
  normals, in the Gaussian copula's block shapes (one block per chunk and
  month), in the same process; the floor for any simulator that draws its
  shocks with numpy's normals. The copula models draw theirs by inversion
  of uniforms (:func:`mcalloc.models.inversion.standard_normals`), which
  costs less than numpy's normals; the reference stays numpy's;
* ``arch_fast_steps_per_s``: arch's own fast path,
  ``arch_model(...).forecast(params=..., horizon=H, method="simulation",
  simulations=S)`` for the first series' univariate model, S x H / seconds
  of the forecast call;
* ``draws_ceiling``: the ``ratio_vs_rng`` the model would reach if
  everything but drawing its own random numbers took no time: the time of
  the raw normals over that of the model's own draws in the same blocks
  (its normals by inversion, plus the uniform per path and day that a t
  copula inverts its chi-square from, or FHS's row indices instead of
  normals). A model cannot pass this ceiling however its other work is
  tuned; above 1, its draws cost less than numpy's normals;
* ``parallel_efficiency``: throughput on two workers over twice that on one
  (the worker pool is started before timing);
* ``peak_rss_mb``, ``full_run_seconds``, ``full_run_workers``: the whole
  pipeline (``mcalloc run``) at 1,000,000 paths with each model (the
  scenario's as it is, the others by ``--set``, :func:`full_run_settings`),
  only when asked for (``full``); the peak is of the resident memory summed
  over the run's process and its workers, sampled every 0.2 s.

Single-core measurements run in a child process started with one BLAS and
OpenMP thread, since those limits only take effect before numpy is loaded.
Times are medians of ``repeat`` runs, the contenders interleaved, so that a
busy machine slows them alike. Absolute speeds vary by machine; compare the
ratios. Used by ``scripts/bench_simulation.py``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcalloc.config import load_scenario
from mcalloc.config.schema import Scenario
from mcalloc.models.bootstrap import ResidualBootstrap
from mcalloc.models.copulas import DccCopula, TCopula
from mcalloc.models.dcc import FittedDCC
from mcalloc.models.dependence import GaussianCopula
from mcalloc.models.inversion import standard_normals
from mcalloc.models.joint import JointModel
from mcalloc.models.marginals import FittedMarginal
from mcalloc.simulation.paths import SimulationPlan, chunk_sizes, run_simulation

__all__ = [
    "TARGETS",
    "BenchmarkReport",
    "BenchmarkSettings",
    "FullRun",
    "ModelThroughput",
    "dependence_variants",
    "measure_arch_fast_path",
    "measure_full_run",
    "measure_machine_parallel_efficiency",
    "measure_model",
    "run_benchmark",
]

T_COPULA_NU = 8.0
DCC_A, DCC_B = 0.03, 0.95

TARGETS: dict[str, float] = {
    "ratio_vs_rng": 0.5,
    "ratio_vs_rng_dcc": 0.25,
    "ratio_vs_arch": 10.0,
    "parallel_efficiency": 0.85,
    "peak_rss_mb": 2048.0,
    "full_run_seconds": 150.0,
}
"""What the engine aims for (printed next to the measurements, never asserted)."""

_SINGLE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
_SEED = 20251217


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to run.

    ``n_paths`` paths over ``horizon_years`` per timed run (the same paths
    on one and two workers: enough chunks per worker that the pool's fixed
    cost per call, about a tenth of a second, is not what is measured);
    ``repeat`` runs of each; arch simulates ``arch_simulations`` paths of
    ``arch_horizon`` days per forecast call. ``full`` adds the pipeline run
    at ``full_paths`` paths.
    """

    config: Path
    n_paths: int = 32_000
    horizon_years: int = 10
    repeat: int = 3
    arch_simulations: int = 1000
    arch_horizon: int = 2520
    full: bool = False
    full_paths: int = 1_000_000


@dataclass(frozen=True)
class ModelThroughput:
    """The single-core and two-worker measurements of one model (rates per second)."""

    asset_steps_per_s: float
    rng_normals_per_s: float
    arch_fast_steps_per_s: float
    two_worker_asset_steps_per_s: float
    own_draws_asset_steps_per_s: float = math.nan

    @property
    def draws_ceiling(self) -> float:
        return self.own_draws_asset_steps_per_s / self.rng_normals_per_s

    @property
    def ratio_vs_rng(self) -> float:
        return self.asset_steps_per_s / self.rng_normals_per_s

    @property
    def ratio_vs_arch(self) -> float:
        return self.asset_steps_per_s / self.arch_fast_steps_per_s

    @property
    def parallel_efficiency(self) -> float:
        return self.two_worker_asset_steps_per_s / (2.0 * self.asset_steps_per_s)


@dataclass(frozen=True)
class FullRun:
    """The pipeline at many paths: peak resident memory (MB), wall time, workers, and its error if it failed.

    ``peak_rss_mb`` is the largest sum over the run's process and its
    workers, ``largest_process_rss_mb`` the largest single process, both
    sampled every 0.2 s. ``stages`` is where the time went: the seconds of
    each stage, from the run's ``manifest.json`` (``timings_s``); their sum
    leaves out starting Python and loading the scenario.
    """

    n_paths: int
    peak_rss_mb: float
    largest_process_rss_mb: float
    seconds: float
    workers: int
    error: str | None = None
    stages: dict[str, float] | None = None


@dataclass(frozen=True)
class BenchmarkReport:
    """Every measurement of a run, and how it was set up."""

    models: dict[str, ModelThroughput]
    context: dict[str, Any]
    full_runs: dict[str, FullRun] | None = None

    def record(self) -> dict[str, Any]:
        """One JSON-ready dictionary: a section per model, then ``context``."""
        runs = self.full_runs or {}
        result: dict[str, Any] = {}
        for name, model in self.models.items():
            full = runs.get(name)
            result[name] = {
                "asset_steps_per_s": round(model.asset_steps_per_s),
                "rng_normals_per_s": round(model.rng_normals_per_s),
                "ratio_vs_rng": round(model.ratio_vs_rng, 4),
                "draws_ceiling": round(model.draws_ceiling, 3),
                "arch_fast_steps_per_s": round(model.arch_fast_steps_per_s),
                "ratio_vs_arch": round(model.ratio_vs_arch, 3),
                "parallel_efficiency": round(model.parallel_efficiency, 3),
                "peak_rss_mb": round(full.peak_rss_mb, 1) if full else None,
                "full_run_seconds": round(full.seconds, 1) if full else None,
                "full_run_workers": full.workers if full else None,
                "full_run_error": full.error if full else None,
            }
        result["context"] = {
            **self.context,
            "full_runs": {name: asdict(full) for name, full in runs.items()} or None,
            "targets": TARGETS,
        }
        return result

    def table(self) -> list[str]:
        """A readable summary, targets beside the measurements."""
        context = self.context
        lines = [
            f"{context['n_paths']} paths x {context['n_steps']} days x {context['n_series']} series, "
            f"chunks of {context['chunk_size']}; medians of {context['repeat']} runs; "
            f"{context['cpu_count']} CPUs",
            f"arch reference: {context['arch_model']}",
            f"two workers drawing normals, a workload with nothing shared, reach an efficiency of "
            f"{context['machine_parallel_efficiency']:.2f} on this machine: the ceiling for the engine's",
            "",
            f"{'model':<14}{'asset-steps/s':>14}{'rng normals/s':>15}  {'vs rng':<18}{'ceiling':>8}  "
            f"{'arch steps/s':>13}  {'vs arch':<16}{'2 workers / 2 x 1':<17}".rstrip(),
        ]
        for name, model in self.models.items():
            rng_target = TARGETS["ratio_vs_rng_dcc" if name == "dcc" else "ratio_vs_rng"]
            lines.append(
                f"{name:<14}{model.asset_steps_per_s / 1e6:>12.2f} M{model.rng_normals_per_s / 1e6:>13.1f} M  "
                f"{_versus(model.ratio_vs_rng, rng_target, 3):<18}{model.draws_ceiling:>8.2f}  "
                f"{model.arch_fast_steps_per_s / 1e6:>11.2f} M  "
                f"{_versus(model.ratio_vs_arch, TARGETS['ratio_vs_arch'], 1):<16}"
                f"{_versus(model.parallel_efficiency, TARGETS['parallel_efficiency'], 2):<16}"
            )
        lines.append(
            "ceiling: vs rng if all but drawing the model's own random numbers took no time (raw normals' time "
            "over the model's draws' time; the copulas draw their normals by inversion of uniforms, which costs "
            "less than numpy's standard_normal, the reference)"
        )
        lines.append("")
        if not self.full_runs:
            lines.append("full run: not measured (pass --full)")
        for name, full in (self.full_runs or {}).items():
            lines.append(
                f"full run, {name}, {full.n_paths:,} paths on {full.workers} workers: "
                f"{full.seconds:.0f} s (target <= {TARGETS['full_run_seconds']:.0f} s on 2 cores, the default's), "
                f"peak RSS {full.peak_rss_mb:.0f} MB summed over processes "
                f"(target <= {TARGETS['peak_rss_mb']:.0f}), largest process {full.largest_process_rss_mb:.0f} MB"
            )
            if full.error:
                lines.append(f"  the run FAILED after {full.seconds:.0f} s: {full.error}")
            elif full.stages:
                lines.append(
                    "  stages: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in full.stages.items())
                )
        return lines


def _versus(value: float, target: float, digits: int) -> str:
    """``0.31 (>=0.5 no)``: a ratio and whether it meets its target."""
    return f"{value:.{digits}f} (>={target:g} {'ok' if value >= target else 'no'})"


def dependence_variants(model: JointModel) -> dict[str, JointModel]:
    """The Gaussian, t and DCC models on ``model``'s marginals and correlation, and ``model`` itself.

    The variants keep the rest of ``model`` (its start, uncertain means and variance ceiling) and leave out
    its market factor, so that the three compare like for like.
    """
    marginals = model.marginals
    correlation = np.asarray(model.dependence.correlation)
    dcc = FittedDCC.from_config(DCC_A, DCC_B, correlation)

    def variant(dependence: Any) -> JointModel:
        return replace(model, dependence=dependence, factor=None, baseline=None)

    return {
        "gaussian": variant(GaussianCopula(correlation, marginals)),
        "t": variant(TCopula(correlation, T_COPULA_NU, marginals)),
        "dcc": variant(DccCopula(dcc, marginals)),
        "default_model": model,
    }


def _run_plan(scenario: Scenario, model: JointModel) -> SimulationPlan:
    """The plan of a run's main pass: the scenario's benchmark portfolios with its fees, rebalancing policy,
    cash flows, account tax and currency, and the wealth fan (a run books its optimised portfolios too)."""
    from mcalloc.pipeline import benchmark_weights, simulation_plan
    from mcalloc.simulation.currency import CurrencyOverlay

    weights = list(benchmark_weights(scenario).values())
    return simulation_plan(scenario, model, weights, CurrencyOverlay.from_scenario(scenario), True, wealth_fan=True)


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _block_shapes(plan: SimulationPlan, n_paths: int, chunk_size: int) -> list[tuple[int, int]]:
    """The shapes of the Gaussian copula's draws: (paths x days, series) per chunk and month."""
    n_series = len(plan.model.marginals)
    months = np.diff(plan.schedule.month_bounds)
    return [(size * int(days), n_series) for size in chunk_sizes(n_paths, chunk_size) for days in months]


def _draw_normals(shapes: Iterable[tuple[int, int]]) -> None:
    rng = np.random.Generator(np.random.PCG64(_SEED))
    for shape in shapes:
        rng.standard_normal(shape)


def _draw_own(model: JointModel, shapes: Iterable[tuple[int, int]]) -> None:
    """The random numbers ``model``'s dependence draws for these blocks, and nothing else."""
    rng = np.random.Generator(np.random.PCG64(_SEED))
    dependence = model.dependence
    for rows, n_series in shapes:
        if isinstance(dependence, ResidualBootstrap):
            rng.integers(0, dependence.residuals.shape[0], rows)
            if dependence.block_length > 1.0:
                rng.random(rows)
        else:
            standard_normals(rng, (rows, n_series))
        if isinstance(dependence, TCopula):
            rng.random(rows)


def measure_model(
    plan: SimulationPlan, n_paths: int, chunk_size: int, repeat: int, arch_steps_per_s: float
) -> ModelThroughput:
    """Time ``plan`` on one and two workers and the raw RNG, interleaved; rates from the medians."""
    n_steps = plan.schedule.n_steps
    units = n_paths * n_steps * plan.weights.shape[1]
    shapes = _block_shapes(plan, n_paths, chunk_size)
    # warm up: caches, and the worker pool, which is then reused
    run_simulation(plan, min(n_paths, chunk_size), chunk_size, _SEED, n_jobs=1)
    run_simulation(plan, 2 * chunk_size, chunk_size, _SEED, n_jobs=2)
    rng_times, own_times, one_times, two_times = [], [], [], []
    for _ in range(repeat):
        rng_times.append(_seconds(lambda: _draw_normals(shapes)))
        own_times.append(_seconds(lambda: _draw_own(plan.model, shapes)))
        one_times.append(_seconds(lambda: run_simulation(plan, n_paths, chunk_size, _SEED, n_jobs=1)))
        two_times.append(_seconds(lambda: run_simulation(plan, n_paths, chunk_size, _SEED, n_jobs=2)))
    return ModelThroughput(
        asset_steps_per_s=units / statistics.median(one_times),
        rng_normals_per_s=units / statistics.median(rng_times),
        arch_fast_steps_per_s=arch_steps_per_s,
        two_worker_asset_steps_per_s=units / statistics.median(two_times),
        own_draws_asset_steps_per_s=units / statistics.median(own_times),
    )


def measure_machine_parallel_efficiency(shapes: list[tuple[int, int]], repeat: int) -> float:
    """Two workers' efficiency on a workload with nothing to share: each draws half of ``shapes``' normals.

    The ceiling for the engine's own efficiency on this machine (virtual CPUs
    may share a physical core, or the host be busy).
    """
    from joblib import Parallel, delayed

    halves = [shapes[0::2], shapes[1::2]]
    parallel = Parallel(n_jobs=2, backend="loky")
    parallel(delayed(_draw_normals)(half) for half in halves)
    one_times, two_times = [], []
    for _ in range(repeat):
        one_times.append(_seconds(lambda: _draw_normals(shapes)))
        two_times.append(_seconds(lambda: parallel(delayed(_draw_normals)(half) for half in halves)))
    return statistics.median(one_times) / (2.0 * statistics.median(two_times))


def measure_arch_fast_path(
    marginal: FittedMarginal, horizon: int, simulations: int, repeat: int = 1
) -> tuple[float, str]:
    """Steps per second of arch's simulation forecast of ``marginal``'s model, and what was run.

    The model is arch's constant mean (``mu``; an AR(1) mean is left out)
    with the same volatility process and law in percent units. arch needs
    data to start its recursion from; a series of normals with the model's
    long-run variance serves. Only the ``forecast`` call is timed.
    """
    from arch import __version__ as arch_version
    from arch import arch_model
    from arch.univariate import Normal, SkewStudent, StudentsT

    p = marginal.params
    vol = "EGARCH" if marginal.kind == "egarch" else "GARCH"
    params = [p.get("mu", 0.0), p["omega"], p["alpha"], p.get("gamma", 0.0), p["beta"]]
    law_keys = {"normal": (), "t": ("nu",), "skewt": ("nu", "skew")}[marginal.dist]
    params += [p[key] for key in law_keys]
    variance = marginal.unconditional_variance
    scale = math.sqrt(variance) if math.isfinite(variance) and variance > 0 else 1.0
    data = p.get("mu", 0.0) + scale * np.random.Generator(np.random.PCG64(_SEED)).standard_normal(2000)
    model = arch_model(data, mean="Constant", vol=vol, p=1, o=1, q=1, dist=marginal.dist, rescale=False)
    law = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}[marginal.dist]
    model.distribution = law(seed=_SEED)
    array = np.array(params, dtype=float)
    times = [
        _seconds(lambda: model.forecast(params=array, horizon=horizon, method="simulation", simulations=simulations))
        for _ in range(repeat)
    ]
    description = (
        f"arch {arch_version}: arch_model(mean='Constant', vol='{vol}', p=1, o=1, q=1, dist='{marginal.dist}')"
        f".forecast(method='simulation', horizon={horizon}, simulations={simulations}) "
        f"with {marginal.name}'s parameters ({marginal.label})"
    )
    return simulations * horizon / statistics.median(times), description


def _measure_in_this_process(settings: BenchmarkSettings, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every single-core and two-worker measurement, as a JSON-ready dictionary."""
    from mcalloc.pipeline import build_model

    scenario = load_scenario(settings.config, [f"simulation.horizon_years={settings.horizon_years}"])
    model, _ = build_model(scenario)
    sim = scenario.simulation
    progress(f"arch: forecast by simulation, {settings.arch_simulations} x {settings.arch_horizon} days")
    arch_rate, arch_description = measure_arch_fast_path(
        model.marginals[0], settings.arch_horizon, settings.arch_simulations, max(1, min(settings.repeat, 2))
    )
    models: dict[str, Any] = {}
    variants = dependence_variants(model)
    progress("machine: two workers drawing normals")
    plan = _run_plan(scenario, variants["gaussian"])
    machine = measure_machine_parallel_efficiency(
        _block_shapes(plan, 4 * settings.n_paths, sim.chunk_size), settings.repeat
    )
    for name, variant in variants.items():
        progress(f"{name}: {settings.n_paths} paths, {settings.repeat} runs on 1 and on 2 workers")
        plan = _run_plan(scenario, variant)
        measured = measure_model(plan, settings.n_paths, sim.chunk_size, settings.repeat, arch_rate)
        models[name] = asdict(measured)
    return {
        "models": models,
        "context": {
            "config": str(settings.config),
            "n_paths": settings.n_paths,
            "n_steps": sim.n_steps,
            "n_series": len(model.marginals),
            "chunk_size": sim.chunk_size,
            "repeat": settings.repeat,
            "cpu_count": os.cpu_count(),
            "machine_parallel_efficiency": round(machine, 3),
            "default_dependence": type(model.dependence).__name__,
            "default_has_factor": model.factor is not None,
            "t_copula_nu": T_COPULA_NU,
            "dcc": {"a": DCC_A, "b": DCC_B},
            "arch_model": arch_description,
            "threads": "one BLAS/OpenMP thread per process",
            "normals": "the copulas' by inversion of PCG64 uniforms; the reference's numpy's standard_normal",
        },
    }


def _child_main() -> None:
    """Entry point of the single-thread child: settings as JSON in ``argv[1]``, results as JSON on stdout."""
    raw = json.loads(sys.argv[1])
    settings = BenchmarkSettings(**{**raw, "config": Path(raw["config"])})

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    print(json.dumps(_measure_in_this_process(settings, progress)))


def _tree_rss_bytes(root: int) -> tuple[int, int]:
    """Resident memory of ``root`` and all its descendants (Linux ``/proc``): their sum and the largest, bytes."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    page = os.sysconf("SC_PAGE_SIZE")
    total, largest, pending = 0, 0, [root]
    while pending:
        pid = pending.pop()
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        total += resident
        largest = max(largest, resident)
        pending.extend(children.get(pid, []))
    return total, largest


def full_run_settings(config: Path) -> dict[str, list[str]]:
    """``--set`` options that make the scenario's run use each model of :func:`dependence_variants`.

    The scenario's own model (``default_model``) needs none; the others replace its dependence with the
    Gaussian copula, the t copula or DCC on its correlation, without its factor, as the timed variants are.
    """
    from mcalloc.pipeline import build_model

    model, _ = build_model(load_scenario(config))
    correlation = json.dumps(np.asarray(model.dependence.correlation).tolist())
    dependence = {
        "gaussian": "kind: gaussian",
        "t": f"kind: t, nu: {T_COPULA_NU}",
        "dcc": f"kind: dcc, dcc: {{a: {DCC_A}, b: {DCC_B}}}",
    }
    settings: dict[str, list[str]] = {
        name: ["model.factor=null", f"model.dependence={{{kind}, residuals: null, correlation: {correlation}}}"]
        for name, kind in dependence.items()
    }
    settings["default_model"] = []
    return settings


def measure_full_run(
    config: Path, n_paths: int, progress: Callable[[str], None], overrides: Sequence[str] = ()
) -> FullRun:
    """Run ``python -m mcalloc run config --set simulation.n_paths=N`` (``mcalloc run``) and watch its memory.

    ``overrides`` are more ``--set`` options (another dependence model, say).

    A failed run is reported, with the last line it wrote to stderr, rather
    than raised: its time and memory up to the failure still tell something.
    """
    from joblib import effective_n_jobs

    settings = [f"simulation.n_paths={n_paths}", *overrides]
    scenario = load_scenario(config, settings)
    workers = int(effective_n_jobs(scenario.simulation.n_jobs))
    progress(f"full run: {n_paths:,} paths on {workers} workers (minutes)")
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "mcalloc", "run", str(config)]
        command += [part for setting in settings for part in ("--set", setting)]
        command += ["--out", str(Path(folder) / "run")]
        log = Path(folder) / "stderr.txt"
        peak, largest = 0, 0
        with log.open("w") as stderr:
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            while process.poll() is None:
                total, single = _tree_rss_bytes(process.pid)
                peak, largest = max(peak, total), max(largest, single)
                time.sleep(0.2)
            seconds = time.perf_counter() - start
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        stages = _stage_seconds(Path(folder) / "run" / "manifest.json")
    error = None
    if process.returncode != 0:
        error = f"exit status {process.returncode}: " + (lines[-1] if lines else "no message")
        progress(f"full run failed: {error}")
    return FullRun(
        n_paths=n_paths,
        peak_rss_mb=peak / 2**20,
        largest_process_rss_mb=largest / 2**20,
        seconds=seconds,
        workers=workers,
        error=error,
        stages=stages,
    )


def _stage_seconds(manifest: Path) -> dict[str, float] | None:
    """A finished run's seconds per stage (``manifest.json``'s ``timings_s``); ``None`` if it has none."""
    try:
        timings = json.loads(manifest.read_text(encoding="utf-8")).get("timings_s")
    except (OSError, ValueError, AttributeError):  # no manifest (a failed run), or not one
        return None
    return timings if isinstance(timings, dict) else None


def run_benchmark(
    settings: BenchmarkSettings, progress: Callable[[str], None] = lambda message: None
) -> BenchmarkReport:
    """Measure everything; the single-core part in a child process with one BLAS/OpenMP thread.

    Raises
    ------
    RuntimeError
        If the child process fails.
    """
    arguments = {**asdict(settings), "config": str(settings.config)}
    command = [
        sys.executable,
        "-c",
        "from mcalloc.simulation.benchmark import _child_main; _child_main()",
        json.dumps(arguments),
    ]
    progress("single-core measurements in a child process with one BLAS/OpenMP thread")
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={**os.environ, **_SINGLE_THREAD})
    if child.returncode != 0:
        raise RuntimeError(f"the benchmark's child process failed (exit status {child.returncode})")
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    models = {name: ModelThroughput(**values) for name, values in measured["models"].items()}
    full_runs = None
    if settings.full:
        full_runs = {}
        for name, overrides in full_run_settings(settings.config).items():
            progress(f"{name}:")
            full_runs[name] = measure_full_run(settings.config, settings.full_paths, progress, overrides)
    return BenchmarkReport(models=models, context=measured["context"], full_runs=full_runs)
