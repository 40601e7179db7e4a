"""End to end: the results contract, reproducibility and the optimiser's consistency."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.config import Scenario, load_scenario
from mcalloc.errors import InfeasibleError, OutputError
from mcalloc.metrics import cvar
from mcalloc.pipeline import build_model, run_scenario
from mcalloc.results.writer import RunFolder
from mcalloc.simulation import SimulationPlan, run_simulation

from .conftest import DEFAULT_CONFIG, ROOT

# no report.html here (it takes seconds to draw): tests/test_report.py checks it
SMALL = [
    "simulation.n_paths=600",
    "simulation.chunk_size=150",
    "simulation.horizon_years=3",
    "output.report=false",
]
CONTRACT_FILES = {
    "manifest.json",
    "config.yaml",
    "models.csv",
    "correlation.csv",
    "return_correlation.csv",
    "weights.csv",
    "metrics.csv",
    "optimization.csv",
    "frontier.csv",
    "stability.csv",
    "diversification.csv",
    "horizons.csv",
    "fan.csv",
    "drawdowns.csv",
    "paths.parquet",
    "report.html",
    "figures",
}


def test_same_seed_same_metrics_for_one_and_two_workers(tmp_path: Path) -> None:
    folders = []
    for n_jobs in (1, 2):
        scenario = load_scenario(DEFAULT_CONFIG, [*SMALL, f"simulation.n_jobs={n_jobs}"])
        folders.append(run_scenario(scenario, out=tmp_path / f"jobs{n_jobs}").folder)
    # every table, byte for byte (metrics, weights, fan, drawdowns, horizons, diversification, ...), and every
    # path's own results: a chunk combined out of order would show in the per-path table first
    tables = sorted(path.name for path in folders[0].glob("*.csv"))
    assert {"metrics.csv", "weights.csv", "horizons.csv", "fan.csv", "diversification.csv"} <= set(tables)
    assert tables == sorted(path.name for path in folders[1].glob("*.csv"))
    for name in tables:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
    pd.testing.assert_frame_equal(
        pd.read_parquet(folders[0] / "paths.parquet"), pd.read_parquet(folders[1] / "paths.parquet"), check_exact=True
    )


def test_the_run_summary_gives_each_columns_largest_monte_carlo_error(tmp_path: Path) -> None:
    # the headline table carries its error bars: under it, the largest standard error of each column that has
    # one, from metrics.csv (a run too small for any has no line rather than a line of nans)
    from mcalloc.cli.main import _summary

    scenario = load_scenario(DEFAULT_CONFIG, SMALL)
    metrics = pd.read_csv(run_scenario(scenario, out=tmp_path).folder / "metrics.csv")
    line = _summary(metrics, scenario).splitlines()[-1]
    assert line.startswith("Monte Carlo standard errors, the largest in each column, in percentage points")
    shown = dict(part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split(", "))
    columns = {"CAGR p50": ["cagr_median_se"], "CAGR p05..p95": ["cagr_p05_se", "cagr_p95_se"]}
    columns |= {"vol": ["vol_ann_se"], "maxDD p50": ["maxdd_median_se"], "maxDD p95": ["maxdd_p95_se"]}
    columns |= {"CVaR95 yr": ["cvar_95_annual_se"], "P(loss)": ["prob_loss_se"]}
    assert set(shown) == set(columns)  # every column but the wealth's, which moves with the median CAGR
    for label, names in columns.items():
        assert float(shown[label]) == pytest.approx(100 * metrics[names].max().max(), abs=0.005)
    bare = metrics.drop(columns=[name for names in columns.values() for name in names])
    assert "Monte Carlo" not in _summary(bare, scenario)
    # the header reads as English whatever the schedule and horizon ("rebalanced annual", "1 years" it said)
    for overrides, expected in [
        (["portfolio.rebalance=annual", "simulation.horizon_years=1"], "x 1 year, rebalanced annually, start"),
        (["portfolio.rebalance=never"], "years, never rebalanced, start"),
        (["portfolio.rebalance=quarterly"], "years, rebalanced quarterly, start"),
    ]:
        other = load_scenario(DEFAULT_CONFIG, [*SMALL, *overrides])
        assert expected in _summary(metrics, other).splitlines()[0], overrides


def test_the_return_correlation_is_the_assets_not_the_factor_models_shocks(tmp_path: Path) -> None:
    # with a market factor the shocks (correlation.csv) are the idiosyncratic parts', nearly uncorrelated;
    # what the assets do together is the correlation of their returns. Reference: the same model simulated
    # directly (other draws), daily simple returns pooled over paths and days; 300 paths x 3 years give
    # about 230,000 days, a standard error near 0.003 even with fat tails: tolerance 0.02. The data's
    # (SPY/IWM/EFA daily, 2001-2019, docs/models.md) are about 0.87, 0.83 and 0.73.
    scenario = load_scenario(DEFAULT_CONFIG, [*SMALL, "simulation.n_paths=300", "optimize.objectives=[]"])
    folder = run_scenario(scenario, out=tmp_path / "run").folder
    returns = pd.read_csv(folder / "return_correlation.csv").set_index("asset")
    shocks = pd.read_csv(folder / "correlation.csv").set_index("asset")
    assert set(returns["currency"]) == {"USD"}
    model, _ = build_model(scenario)
    simulated = np.expm1(model.simulate(np.random.default_rng(7), 300, 3 * 252)).reshape(-1, 3)
    reference = np.corrcoef(simulated, rowvar=False)
    names = scenario.asset_names
    np.testing.assert_allclose(returns.loc[names, names].to_numpy(), reference, atol=0.02)
    assert returns.loc["sp500", "russell2000"] > 0.8 > 0.3 > shocks.loc["sp500", "russell2000"]


def test_calibrated_parameters_without_their_step_length_are_run_with_a_warning(tmp_path: Path) -> None:
    # steps_per_year is checked against model.marginals.step; without one the run says nothing is checked
    quick = [*SMALL, "simulation.n_paths=300", "optimize.objectives=[]"]
    unchecked = "model.marginals.step is not set"
    stated = run_scenario(load_scenario(DEFAULT_CONFIG, quick), out=tmp_path / "stated")
    assert not [w for w in stated.warnings if unchecked in w]
    missing = run_scenario(load_scenario(DEFAULT_CONFIG, [*quick, "model.marginals.step="]), out=tmp_path / "missing")
    assert [w for w in missing.warnings if w.startswith(unchecked) and "1/252 year" in w]


def test_runs_of_one_configuration_started_in_one_second_each_get_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the run-id is the second and the configuration's hash: a second run of it started in the same second (other
    # --n-jobs, a script starting several) refused to start, or replaced the first (a stop-54 hunt)
    import mcalloc.pipeline

    base = tmp_path / "default" / "20261205T220049Z-5c1809ac"
    monkeypatch.setattr(mcalloc.pipeline, "_default_folder", lambda scenario, digest: base)
    scenario = load_scenario(DEFAULT_CONFIG, [*SMALL, "optimize.objectives=[]", f"output.dir={tmp_path}"])
    first, second = (run_scenario(scenario).folder for _ in range(2))
    assert (first, second) == (base, base.with_name(base.name + "-2"))
    assert json.loads((second / "manifest.json").read_text())["run_id"] == base.name + "-2"
    # a name a run is still writing is taken too
    base.with_name(f".{base.name}-3.partial").mkdir()
    names = list(mcalloc.pipeline.default_folder_names(base, tries=5))
    assert names == [base.with_name(base.name + "-4"), base.with_name(base.name + "-5")]
    # a run that claims the free name between the look and the claim: the next name is taken (a backtest's too);
    # a refusal for another reason is not passed over
    tried: list[str] = []

    def claimed_first(final: Path) -> RunFolder:
        tried.append(final.name)
        if len(tried) == 1:
            final.with_name(f".{final.name}.partial").mkdir()
            raise OutputError(f"{final}: another run has just started writing this results folder")
        return RunFolder(final=final, working=final)

    assert mcalloc.pipeline.claim_default_folder(base, claimed_first).final.name == base.name + "-5"
    assert tried == [base.name + "-4", base.name + "-5"]

    def refused(final: Path) -> RunFolder:
        raise OutputError(f"{final}: cannot create the results folder")

    with pytest.raises(OutputError, match="cannot create"):
        mcalloc.pipeline.claim_default_folder(tmp_path / "other" / "x", refused)


def test_different_seed_changes_results(tmp_path: Path) -> None:
    first = run_scenario(load_scenario(DEFAULT_CONFIG, [*SMALL, "seed=1"]), out=tmp_path / "a").metrics
    second = run_scenario(load_scenario(DEFAULT_CONFIG, [*SMALL, "seed=2"]), out=tmp_path / "b").metrics
    assert not np.allclose(first["cagr_median"], second["cagr_median"])


def _plan(scenario: Scenario, weights: np.ndarray, keep_months: bool = False) -> SimulationPlan:
    """The scenario's model, fees and schedule booking the mixes ``weights`` (n_portfolios, n_assets)."""
    from mcalloc.portfolio import FeeModel, Schedule

    model, _ = build_model(scenario)
    sim = scenario.simulation
    schedule = Schedule(sim.horizon_years, sim.steps_per_year, scenario.portfolio.rebalance)
    fees = FeeModel.of(scenario.assets, sim.steps_per_year)
    return SimulationPlan(model=model, fees=fees, schedule=schedule, weights=weights, keep_months=keep_months)


def test_min_cvar_is_reported_on_its_own_paths_and_on_the_paths_it_never_saw(tmp_path: Path) -> None:
    scenario = load_scenario(DEFAULT_CONFIG, [*SMALL, "simulation.n_jobs=1", "optimize.n_paths=450"])
    outcome = run_scenario(scenario, out=tmp_path / "run")
    row = outcome.optimization.set_index("portfolio").loc["min_cvar_95"]
    weights = outcome.weights[outcome.weights.portfolio == "min_cvar_95"]["weight"].to_numpy()
    # regenerate both sets of paths independently: the optimiser's stream and the main one
    from mcalloc.optimize import Scenarios
    from mcalloc.pipeline import OPTIMIZER_STREAM

    sim = scenario.simulation
    plan = _plan(scenario, np.eye(3), keep_months=True)
    fit = run_simulation(plan, 450, sim.chunk_size, scenario.seed, n_jobs=1, stream=OPTIMIZER_STREAM)
    assert fit.month_growth is not None
    scenarios = Scenarios(fit.month_growth, 1)
    assert row["n_fit_paths"] == 450
    # the objective is CVaR95 of the 3-year log loss of the monthly rebalanced mix on the optimiser's paths
    losses = -np.log(fit.month_growth.astype(float) @ weights).sum(axis=1)
    assert row["objective_value"] == pytest.approx(cvar(losses, 0.95), abs=1e-9)
    assert row["horizon_cvar_95_fit"] == pytest.approx(cvar(losses, 0.95), abs=1e-12)
    # ... and on the paths it never saw, through the full accounting
    fresh = run_simulation(_plan(scenario, weights[None, :]), sim.n_paths, sim.chunk_size, scenario.seed, n_jobs=1)
    fresh_losses = -np.log(fresh.book.terminal_value[:, 0])
    assert row["horizon_cvar_95_new_paths"] == pytest.approx(cvar(fresh_losses, 0.95), rel=1e-9)
    assert row["objective_new_paths"] == row["horizon_cvar_95_new_paths"]
    assert 0 < row["objective_new_paths_se"] < 0.5 * row["objective_new_paths"]
    # drawdowns as the optimiser measures them: month-end NAVs from month-end peaks, on both sets of paths
    assert row["maxdd_p95_fit"] == pytest.approx(scenarios.maxdd_quantile(weights, 0.95), rel=1e-9)
    month_end = fresh.book.month_end_max_drawdown
    assert month_end is not None and (month_end[:, 0] <= fresh.book.max_drawdown[:, 0] + 1e-6).all()
    assert row["maxdd_p95_new_paths"] == pytest.approx(float(np.percentile(month_end[:, 0], 95)), rel=1e-9)
    # the two sets of paths are different futures, and the floor (the S&P 500's mean return) holds
    assert not np.allclose(fit.asset_growth[:100], fresh.asset_growth[:100, :1])
    assert row["mean_return_fit"] >= scenarios.mean_return(np.array([1.0, 0.0, 0.0])) - 1e-7
    # the grid of mixes finds nothing better on the same measure
    assert row["grid_gap"] <= 1e-7


def test_an_uncompounded_min_cvar_is_judged_on_the_new_paths_sums_of_monthly_returns(tmp_path: Path) -> None:
    # the optimiser's loss is minus the sum of the months' returns of a monthly rebalanced mix: the book sums them too
    overrides = [*SMALL, "simulation.n_jobs=1", "optimize.objectives=[{kind: min_cvar, form: uncompounded}]"]
    scenario = load_scenario(DEFAULT_CONFIG, overrides)
    outcome = run_scenario(scenario, out=tmp_path / "run")
    row = outcome.optimization.set_index("portfolio").loc["min_cvar_95_uncompounded"]
    weights = outcome.weights[outcome.weights.portfolio == "min_cvar_95_uncompounded"]["weight"].to_numpy()
    sim = scenario.simulation
    fresh = run_simulation(_plan(scenario, weights[None, :]), sim.n_paths, sim.chunk_size, scenario.seed, n_jobs=1)
    assert fresh.book.period_return_sum is not None
    assert row["objective_new_paths"] == pytest.approx(cvar(-fresh.book.period_return_sum[:, 0], 0.95), rel=1e-9)
    assert 0 < row["objective_new_paths_se"] < row["objective_new_paths"]
    # rebalanced quarterly, the optimiser sums quarters' returns and the book months': no like
    quarterly = load_scenario(DEFAULT_CONFIG, [*overrides, "portfolio.rebalance=quarterly"])
    table = run_scenario(quarterly, out=tmp_path / "quarterly").optimization
    assert table["objective_new_paths"].isna().all()


def test_acceptance_command_writes_complete_contract(tmp_path: Path) -> None:
    """`mcalloc run configs/default.yaml --set simulation.n_paths=2000 --out DIR`, as a user types it."""
    out = tmp_path / "x"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcalloc",
            "run",
            str(DEFAULT_CONFIG),
            "--set",
            "simulation.n_paths=2000",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "sp500_only" in completed.stdout and "min_cvar_95" in completed.stdout
    assert {p.name for p in out.iterdir()} >= CONTRACT_FILES
    assert not list(tmp_path.glob(".*partial"))

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["schema_version"] == "1.17"
    assert manifest["seed"] == 20251217 and manifest["n_paths"] == 2000
    for key in (
        "scenario",
        "run_id",
        "started_at",
        "finished_at",
        "config_sha256",
        "engine_version",
        "python",
        "packages",
        "data",
        "timings_s",
    ):
        assert manifest[key] not in (None, ""), key
    # every stage the default runs, in order, the tables' computing and writing among them
    assert list(manifest["timings_s"]) == [
        "model",
        "simulate the optimiser's paths",
        "optimise",
        "simulate",
        "metrics",
        "diversification",
        "write tables",
        "report",
    ]
    assert {"numpy", "arch", "cvxpy", "numba", "llvmlite", "highspy"} <= set(manifest["packages"])
    # the residual file the default resamples, traced to its bytes (it is not in config_sha256)
    (residuals,) = manifest["data"]
    shipped = ROOT / "configs" / "default.residuals.csv"
    assert residuals["source"] == "model.dependence.residuals" and Path(residuals["path"]) == shipped.resolve()
    assert residuals["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert residuals["rows"] == len(pd.read_csv(shipped))

    weights = pd.read_csv(out / "weights.csv")
    assert list(weights.columns) == ["portfolio", "asset", "weight"]
    sums = weights.groupby("portfolio")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)

    metrics = pd.read_csv(out / "metrics.csv")
    required = [
        "portfolio",
        "cagr_median",
        "cagr_p05",
        "cagr_p95",
        "vol_ann",
        "maxdd_median",
        "maxdd_p95",
        "cvar_95_annual",
        "prob_loss",
        "terminal_wealth_p05",
        "terminal_wealth_p50",
        "terminal_wealth_p95",
    ]
    assert set(required) <= set(metrics.columns)
    assert np.isfinite(metrics[required[1:]].to_numpy()).all()
    assert set(metrics.portfolio) == set(sums.index)
    assert (metrics.maxdd_p95 >= metrics.maxdd_median).all() and (metrics.maxdd_median > 0).all()
    assert (metrics.terminal_wealth_p05 < metrics.terminal_wealth_p50).all()

    models = pd.read_csv(out / "models.csv")
    assert {"mu", "omega", "alpha", "gamma", "beta", "nu", "vol_ann_unconditional"} <= set(models.columns)
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["simulation"]["n_paths"] == 2000
    assert load_scenario(out / "config.yaml").simulation.n_paths == 2000


def test_rerun_into_same_out_replaces_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_scenario(load_scenario(DEFAULT_CONFIG, SMALL), out=out)
    first = (out / "manifest.json").read_text()
    # a failing re-run (an unreachable return target) leaves the earlier result untouched
    failing = load_scenario(DEFAULT_CONFIG, [*SMALL, "seed=4", "optimize.objectives.0.min_return=0.9"])
    with pytest.raises(InfeasibleError):
        run_scenario(failing, out=out)
    assert (out / "manifest.json").read_text() == first
    assert json.loads((tmp_path / "run.failed" / "manifest.json").read_text())["status"] == "failed"
    # a successful one replaces it and clears the failed folder
    run_scenario(load_scenario(DEFAULT_CONFIG, [*SMALL, "seed=3"]), out=out)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 3
    assert not (tmp_path / "run.failed").exists()


def test_fit_from_shared_data(tmp_path: Path, shared_data: Path) -> None:
    config = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    outcome = run_scenario(load_scenario(config, SMALL), out=tmp_path / "fit")
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    assert [Path(d["path"]).name for d in manifest["data"]] == ["SPY.csv", "IWM.csv", "EFA.csv"]
    assert all(len(d["sha256"]) == 64 for d in manifest["data"])
    # the default scenario's calibrated numbers were measured with this config
    default = load_scenario(DEFAULT_CONFIG).model
    fitted = outcome.models.set_index("asset")
    for asset, params in (default.marginals.params or {}).items():
        for key in ("mu", "omega", "alpha", "gamma", "beta"):
            assert fitted.loc[asset, key] == pytest.approx(getattr(params, key), rel=1e-4, abs=1e-6), (asset, key)
    assert list(fitted["role"]) == ["market", "idiosyncratic", "idiosyncratic"]
    # a fitted run reports how its data sit among simulated windows, and the VaR backtest
    calibration = pd.read_csv(outcome.folder / "calibration.csv")
    assert {"statistic", "series", "window", "data", "sim_p05", "sim_p95", "percentile", "p_value"} <= set(
        calibration.columns
    )
    assert set(calibration.statistic) >= {"vol_ann", "corr_daily", "corr_high_vol", "var99_exceedance_rate"}
    dependence = pd.read_csv(outcome.folder / "dependence.csv")
    assert set(dependence.kind) == {"fhs", "factor"}
    # the report shows it as mcalloc fit prints it (it was calibration.csv's raw long table, True/False and all):
    # each statistic's percentile per window, * outside 5..95; the VaR backtest; the joint test
    import html

    import mcalloc
    from mcalloc.models.validation import JOINT_STATISTIC, outside_band, window_rows
    from mcalloc.report.page import write_report
    from mcalloc.report.tables import calibration_tables

    page = write_report(mcalloc.load(outcome.folder, with_paths=False)).read_text(encoding="utf-8")
    tables = calibration_tables(calibration)
    assert tables is not None
    for table_id, shown in (("calibration", "windows"), ("calibration-var", "var"), ("calibration-joint", "joint")):
        assert f'<table id="{table_id}">' in page
        assert all(f"<td>{html.escape(cell)}</td>" in page for row in tables[shown].rows for cell in row)
    windows = window_rows(calibration).assign(outside=outside_band(window_rows(calibration)))
    grid = {(row[0], row[1]): row[2:] for row in tables["windows"].rows}
    order = list(dict.fromkeys(windows["window"]))
    assert tables["windows"].columns == ["statistic", "series", *order]
    for record in windows.to_dict("records"):
        cell = grid[(record["statistic"], record["series"])][order.index(record["window"])]
        assert cell == f"{record['percentile']:.1f}" + ("*" if record["outside"] else ""), (record, cell)
    var = calibration[calibration["statistic"] == "var99_exceedance_rate"]
    assert [row[0] for row in tables["var"].rows] == list(var["series"]) and len(var) == 3
    for row, p_value in zip(tables["var"].rows, var["p_value"], strict=True):
        assert row[3] == f"{p_value:.3f}" and (row[4] == "passes") == (p_value >= 0.05), row
    joint = calibration[calibration["statistic"] == JOINT_STATISTIC]
    assert [row[0] for row in tables["joint"].rows] == list(joint["window"]) and len(joint) >= 2
    assert "True" not in "".join(cell for row in tables["windows"].rows for cell in row)
    # its note says how many fell outside, and what the joint test is for
    said = " ".join(html.unescape(page).split())
    assert "(docs/models.md, the calibration report); a right model puts about nine in ten" in said
    assert "window statistics outside the simulated 5..95 band. The statistics of one window move together" in said


def test_a_residual_file_only_an_fhs_model_reads_is_recorded_only_for_it(tmp_path: Path) -> None:
    # a gaussian copula ignores model.dependence.residuals: the run neither reads nor records it
    overrides = [
        *SMALL,
        "model.dependence.kind=gaussian",
        "model.dependence.correlation=[[1, 0.5, 0.4], [0.5, 1, 0.3], [0.4, 0.3, 1]]",
        "model.dependence.residuals=nothere.csv",
        "output.report=false",
    ]
    outcome = run_scenario(load_scenario(DEFAULT_CONFIG, overrides), out=tmp_path / "gaussian")
    assert json.loads((outcome.folder / "manifest.json").read_text())["data"] == []
