"""`import mcalloc`: run and load, the round trip to the files, refusals, and the documented example."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import mcalloc
import pandas as pd
import pytest
from mcalloc.config import load_scenario
from mcalloc.errors import ConfigError
from mcalloc.pipeline import run_scenario
from mcalloc.report.compare import comparison_table
from mcalloc.report.page import build_report

from .conftest import DEFAULT_CONFIG, ROOT, one_error_line

SMALL = {
    "simulation__n_paths": 300,
    "simulation__chunk_size": 100,
    "simulation__horizon_years": 2,
    "output__report": False,
}


def _same_as_files(run: mcalloc.Run) -> None:
    for name in (
        "metrics",
        "weights",
        "models",
        "correlation",
        "return_correlation",
        "diversification",
        "horizons",
        "optimization",
        "fan",
        "drawdowns",
    ):
        table = getattr(run, name)
        pd.testing.assert_frame_equal(table, pd.read_csv(run.folder / f"{name}.csv"), check_exact=True)
    pd.testing.assert_frame_equal(run.paths, pd.read_parquet(run.folder / "paths.parquet"))
    assert run.manifest == json.loads((run.folder / "manifest.json").read_text())


@pytest.mark.parametrize(
    "config", [DEFAULT_CONFIG, ROOT / "configs" / "examples" / "sweden.yaml"], ids=["default", "sweden"]
)
def test_run_and_load_return_exactly_the_files(tmp_path: Path, config: Path) -> None:
    ran = mcalloc.run(config, out=tmp_path / "run", **SMALL)
    loaded = mcalloc.load(tmp_path / "run")
    _same_as_files(loaded)
    pd.testing.assert_frame_equal(ran.metrics, loaded.metrics)
    # what the pipeline computed, held in memory, against what load() reads back from the files it wrote
    # (written with 10 significant digits); a shifted row or a swapped column would show here
    overrides = [f"{key.replace('__', '.')}={value}" for key, value in SMALL.items()]
    outcome = run_scenario(load_scenario(config, overrides), out=tmp_path / "again")
    again = mcalloc.load(outcome.folder)
    for name in ("metrics", "weights", "models", "optimization", "diversification"):
        computed = getattr(outcome, name).reset_index(drop=True)
        written = getattr(again, name)
        if name == "models":  # an empty text cell is read back as missing
            computed = computed.replace("", float("nan"))
        pd.testing.assert_frame_equal(computed, written, check_dtype=False, rtol=1e-9, obj=name)
    # the same seed gives the same numbers through either door
    pd.testing.assert_frame_equal(again.metrics, loaded.metrics)
    assert loaded.config["simulation"]["n_paths"] == 300
    # the horizon's own year in horizons.csv is metrics.csv's base-currency row, to the last digit
    base = loaded.config.get("currency", {}).get("base", "USD")
    last = loaded.horizons[loaded.horizons.years == 2].set_index("portfolio")
    own = loaded.metrics[loaded.metrics.currency == base].set_index("portfolio").loc[last.index]
    for column in ("prob_loss", "cagr_median", "cagr_p05"):
        pd.testing.assert_series_equal(last[column], own[column], check_exact=True)
    assert loaded.weights_table().shape == (len(loaded.portfolios), len(loaded.assets))
    assert loaded.assets == [asset["name"] for asset in loaded.config["assets"]]


def test_labels_that_look_like_numbers_or_missing_values_come_back_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # models.csv held NA, 007 and None; load gave [nan, 7.0, nan] and the report an empty cell and 7 (a stop-53 hunt)
    labels = ["NA", "007", "None"]
    settings = {**SMALL, "output__report": True, "optimize__objectives": []}
    settings |= {f"assets__{i}__label": label for i, label in enumerate(labels)}
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", **settings)
    assert mcalloc.load(tmp_path / "run").models["label"].tolist() == labels
    assert run.models["label"].tolist() == labels
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert all(f"<td>{label}</td>" in page for label in labels)
    # a currency pandas reads as a number is no currency: refused where it is named
    from mcalloc.cli.main import main

    assert main(["validate", str(DEFAULT_CONFIG), "--set", "currency.base=INF"]) == 2
    one_error_line(capsys.readouterr(), ("currency.base", "'INF' is no currency", "such as SEK"))


def test_a_table_the_run_did_not_write_is_refused_not_read_as_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another run's frontier.csv copied in was loaded and drawn as this run's, checksums and all (a stop-53 hunt)
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)
    assert "frontier.csv" not in run.manifest["files"] and run.frontier is None
    (tmp_path / "run" / "frontier.csv").write_text("frontier,measure\nx,y\n", encoding="utf-8")
    with pytest.raises(mcalloc.RunFolderError, match=r"frontier\.csv: not among the files the run wrote") as error:
        mcalloc.load(tmp_path / "run")
    assert "remove it, or run its scenario again" in str(error.value)
    (tmp_path / "run" / "frontier.csv").unlink()
    # a path from the home folder, as pandas reads one ("~/..." was looked for as a folder named ~)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mcalloc.load("~/run", with_paths=False).folder == tmp_path / "run"
    # the comparison's default folder: a name cut to 120 characters keeps a digest of all of it
    from mcalloc.cli.compare_command import _default_out

    long = "x" * 130
    first = _default_out([tmp_path / f"{long}-a", tmp_path / "b"])
    second = _default_out([tmp_path / f"{long}-c", tmp_path / "b"])
    assert first != second and len(first.name) == len(second.name) == 120
    assert _default_out([tmp_path / "a", tmp_path / "b"]) == Path("results/comparisons/a-vs-b")


def test_a_bad_setting_given_to_run_is_named_as_given_and_nothing_is_written(tmp_path: Path) -> None:
    scenario = load_scenario(DEFAULT_CONFIG)
    for config in (DEFAULT_CONFIG, scenario):
        with pytest.raises(ConfigError, match=r"^mcalloc.run\(simulation__n_path=...\): simulation.n_path: unknown"):
            mcalloc.run(config, out=tmp_path / "run", simulation__n_path=300)
        with pytest.raises(ConfigError, match=r"^mcalloc.run\(simulation__n_paths=...\): simulation.n_paths: In"):
            mcalloc.run(config, out=tmp_path / "run", simulation__n_paths=-3)
        # a misspelt section is the keyword's too, not the file's
        with pytest.raises(
            ConfigError, match=r"^mcalloc.run\(simulaton__n_paths=...\): simulaton.n_paths: simulaton: unknown"
        ):
            mcalloc.run(config, out=tmp_path / "run", simulaton__n_paths=300)
        # a validated scenario given with a bad --set string: a ConfigError naming it, not pydantic's
        with pytest.raises(ConfigError, match=r"^--set assets.0.ter: Input should be greater"):
            mcalloc.run(config, out=tmp_path / "run", overrides=["assets.0.ter=-1"])
    # of two settings, the one that started a null section is blamed for the keys it lacks, not the first
    settings = {"model__mean_uncertainty": None, "model__mean_uncertainty__series": ["sp500"]}
    with pytest.raises(ConfigError, match=r"^mcalloc.run\(model__mean_uncertainty__series=...\): .*years: required"):
        mcalloc.run(load_scenario(DEFAULT_CONFIG), out=tmp_path / "run", **settings)
    assert not (tmp_path / "run").exists()


def test_load_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(mcalloc.RunFolderError, match=r"no manifest\.json"):
        mcalloc.load(tmp_path)
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)
    manifest = json.loads((run.folder / "manifest.json").read_text())
    for change, message in (({"schema_version": "2.0"}, "results schema 2.0"), ({"status": "failed"}, "failed")):
        (run.folder / "manifest.json").write_text(json.dumps({**manifest, **change}))
        with pytest.raises(mcalloc.RunFolderError, match=message):
            mcalloc.load(run.folder)
    # a manifest without its status was read as "the run is None, not complete" (a stop-53 hunt)
    (run.folder / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "status"}))
    with pytest.raises(mcalloc.RunFolderError, match=r"manifest\.json records no status, so nothing says the run"):
        mcalloc.load(run.folder)
    # a run without objectives has no optimisation rows, no frontier and no stability table
    (run.folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = mcalloc.load(run.folder)
    assert loaded.optimization is not None and loaded.optimization.empty
    assert loaded.frontier is None and loaded.stability is None
    # a damaged folder is refused in one line naming the file: the manifest holds every file's sha256
    assert set(manifest["files"]) >= {"config.yaml", "metrics.csv", "weights.csv", "paths.parquet"}
    metrics = (run.folder / "metrics.csv").read_text()
    damages = [
        ("manifest.json", "{not json", r"manifest\.json: not a readable manifest"),
        ("manifest.json", "[1, 2]", r"manifest\.json: not a manifest"),
        ("metrics.csv", metrics.replace("cagr_median,", "", 1), r"metrics\.csv: changed since the run wrote it"),
        ("metrics.csv", metrics[: len(metrics) // 2], r"metrics\.csv: changed since the run wrote it"),
        ("metrics.csv", None, r"metrics\.csv: missing"),
        ("config.yaml", None, r"config\.yaml: missing"),
        # a manifest of schema 1.2 on without its list of files would skip every check
        ("manifest.json", json.dumps({k: v for k, v in manifest.items() if k != "files"}), r"lists no result files"),
        ("manifest.json", json.dumps({**manifest, "files": {}}), r"lists no result files"),
        # the one file no checksum covers: a hand-edited n_paths failed in the comparison page's template (exit 1)
        ("manifest.json", json.dumps({**manifest, "n_paths": "x"}), r'manifest\.json: n_paths is "x", not a whole'),
        ("manifest.json", json.dumps({**manifest, "seed": True}), r"manifest\.json: seed is true, not a whole"),
        ("manifest.json", json.dumps({**manifest, "files": []}), r"manifest\.json: files is \[\], not a mapping"),
    ]
    # the per-path table may go (it is the largest file): the rest still loads
    slim = tmp_path / "slim"
    shutil.copytree(run.folder, slim)
    (slim / "paths.parquet").unlink()
    with pytest.warns(
        UserWarning, match=r"slim/paths.parquet: deleted since the run wrote it, so paths is None"
    ) as said:
        assert mcalloc.load(slim).paths is None
    assert said[0].filename == __file__  # the user's line, not mcalloc's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not read, not missed
        assert mcalloc.load(slim, with_paths=False).paths is None
    for name, text, message in damages:
        copy = tmp_path / f"damaged_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(run.folder, copy)
        if text is None:
            (copy / name).unlink()
        else:
            (copy / name).write_text(text)
        with pytest.raises(mcalloc.RunFolderError, match=message) as refused:
            mcalloc.load(copy)
        assert "\n" not in str(refused.value)


def test_a_run_whose_last_portfolio_leaves_a_metric_empty_completes_and_loads(tmp_path: Path) -> None:
    # a near-riskless benchmark listed last never has a year below the risk-free rate: its sortino is empty, a
    # cell every other row fills. A check meant for folders without checksums once took that for a cut line,
    # and the run failed writing its own report
    cash = "{mu: 0.05, omega: 0.000001, alpha: 0, gamma: 0, beta: 0.5, last_variance: 0.000002, " + (
        "max_variance: 0.000002, stressed_variance: 0.000002}"
    )
    overrides = [
        "model.mean_uncertainty=null",
        f"model.marginals.params.intl={cash}",
        "model.factor.loadings.intl=[0.0]",
        "portfolio.benchmarks={sp500_only: {sp500: 1.0}, cash: {intl: 1.0}}",
        "optimize.objectives=[]",
        "simulation.horizon_years=3",
    ]
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "cash", overrides=overrides, simulation__n_paths=300)
    metrics = mcalloc.load(run.folder).metrics.set_index("portfolio")
    assert metrics.index[-1] == "cash" and metrics.loc["cash"].isna().any()
    assert metrics.loc["sp500_only"].notna().sum() > metrics.loc["cash"].notna().sum()


def test_folders_it_cannot_check_or_that_are_not_runs_are_refused_in_one_line(tmp_path: Path) -> None:
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)
    manifest = json.loads((run.folder / "manifest.json").read_text())
    # a complete backtest is not damaged, it is another kind of folder
    backtest = tmp_path / "backtest"
    backtest.mkdir()
    (backtest / "manifest.json").write_text(json.dumps({**manifest, "kind": "backtest", "files": {}}))
    with pytest.raises(mcalloc.RunFolderError, match=r"backtest\b.*mcalloc report") as refused:
        mcalloc.load(backtest)
    assert "damaged" not in str(refused.value)
    # folders of schema 1.1 and earlier list no sha256 to check: what cannot be read is still one line
    old = {key: value for key, value in manifest.items() if key != "files"} | {"schema_version": "1.1"}
    weights = (run.folder / "weights.csv").read_text()
    damages = [
        ("metrics.csv", 'portfolio,"cagr_median\nx,1\n', r"metrics\.csv: unreadable"),
        ("metrics.csv", "", r"metrics\.csv: no rows"),
        ("weights.csv", weights.splitlines()[0].rsplit(",", 1)[0] + "\n", r"weights\.csv: no rows"),
        ("weights.csv", "portfolio\nx\n", r"weights\.csv: no column asset"),
        ("metrics.csv", "cagr_median\n0.1\n", r"metrics\.csv: no column portfolio"),
    ]
    # and what a checksum would have caught: a table cut at half its bytes, a weight that is text
    metrics = (run.folder / "metrics.csv").read_bytes()
    half = metrics[: len(metrics) // 2].decode()
    damages += [
        ("metrics.csv", half, r"metrics\.csv: (no rows for .*|its last line is cut short); the folder is damaged"),
        ("metrics.csv", half[: half.rfind("\n") + 1], r"metrics\.csv: no rows for "),
        ("weights.csv", weights.replace(",0.", ",abc", 1), r"weights\.csv: a weight that is not a number"),
        ("metrics.csv", metrics.decode().rstrip("\n").rsplit(",", 3)[0] + "\n", r"its last line is cut short"),
        # its config was read with yaml's own errors (a stop-53 hunt)
        ("config.yaml", "name: [unclosed\n", r"config\.yaml: unreadable \(.*\); the folder is damaged"),
        ("config.yaml", "- a list\n", r"config\.yaml: not a scenario \(a mapping\)"),
    ]
    for name, text, message in damages:
        copy = tmp_path / f"old_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(run.folder, copy)
        (copy / "manifest.json").write_text(json.dumps(old))
        (copy / name).write_text(text)
        with pytest.raises(mcalloc.RunFolderError, match=message) as refused:
            mcalloc.load(copy)
        assert "\n" not in str(refused.value) and str(copy) in str(refused.value)
    intact = tmp_path / "old_intact"
    shutil.copytree(run.folder, intact)
    (intact / "manifest.json").write_text(json.dumps(old))
    (intact / "paths.parquet").write_text("not parquet")
    # the per-path table is read only when asked for
    assert mcalloc.load(intact, with_paths=False).paths is None
    pd.testing.assert_frame_equal(mcalloc.load(intact, with_paths=False).metrics, run.metrics)


def test_a_scenario_without_benchmarks_completes(tmp_path: Path) -> None:
    # docs/results.md: prob_below_reference is empty when there is no benchmark to be below
    run = mcalloc.run(
        DEFAULT_CONFIG,
        out=tmp_path / "run",
        overrides=["portfolio.benchmarks={}", "optimize.objectives=[{kind: min_variance}]", "optimize.n_paths=500"],
        **SMALL,
    )
    assert run.manifest["status"] == "complete"
    assert run.horizons is not None and run.horizons["prob_below_reference"].isna().all()
    assert run.horizons.drop(columns="prob_below_reference").notna().all().all()


def test_the_documented_example_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "docs" / "results.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    first = next(index for index, block in enumerate(blocks) if "mcalloc.load(" in block)
    blocks = blocks[first : first + 2]
    assert "run.fan" in blocks[1]
    # run as a user would from the project folder, but writing under tmp_path
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        code = block.replace('"configs/default.yaml"', repr(str(DEFAULT_CONFIG)))
        exec(compile(code, "docs/results.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "default: 1,000 paths" in printed and "sp500_only" in printed and "objective_new_paths" in printed
    assert (tmp_path / "results" / "fan-and-drawdowns.png").stat().st_size > 10_000


def test_compare_puts_two_runs_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mcalloc.cli.main import main

    annual = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "annual", portfolio__rebalance="annual", **SMALL)
    monthly = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "monthly", overrides=["optimize.objectives=[]"], **SMALL)
    csv = tmp_path / "comparison.csv"
    out = tmp_path / "compared"
    assert main(["compare", str(monthly.folder), str(annual.folder), "--csv", str(csv), "--out", str(out)]) == 0
    table = pd.read_csv(csv)
    pd.testing.assert_frame_equal(pd.read_csv(out / "comparison.csv"), table)
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert page.count("<figure") == 2 and all(name in page for name in ("monthly", "annual", "min_cvar_95"))
    assert {p.name for p in (out / "figures").iterdir()} == {"comparison.png", "comparison.svg", "fans.png", "fans.svg"}
    assert list(table.run.unique()) == ["monthly", "annual"]
    # the settings that differ are columns; those that do not are left out
    assert set(table["portfolio.rebalance"]) == {"monthly", "annual"} and "simulation.n_paths" not in table
    # a key one run's config leaves out (at its default) is an empty cell, not the text "None"
    config = {**annual.config, "currency": {**annual.config.get("currency", {}), "compare_in": "EUR"}}
    mixed = comparison_table([monthly, dataclasses.replace(annual, config=config)])
    assert list(mixed["currency.compare_in"].unique()) == ["", "EUR"]
    # where it ran changes no number: not a difference; a run from another results schema is marked as such
    elsewhere = {**annual.config, "simulation": {**annual.config["simulation"], "n_jobs": 2, "backend": "dask"}}
    older = {**annual.manifest, "schema_version": "1.4"}
    marked = comparison_table([monthly, dataclasses.replace(annual, config=elsewhere, manifest=older)])
    assert not any(key.startswith("simulation.") for key in marked.columns)
    assert list(marked.columns[:4]) == ["run", "scenario", "schema_version", "portfolio.rebalance"]
    assert "schema_version" not in table
    # a calibrated model reads no data: a data section one run carries (a file calibrated from data) is no
    # difference, where a fitted run's would be
    data = {"source": "csv", "paths": {"sp500": "/data/spy.csv"}}
    carried = comparison_table([monthly, dataclasses.replace(annual, config={**annual.config, "data": data})])
    assert not any(key.startswith("data.") for key in carried.columns)

    def fitted(run: Any, path: str) -> Any:
        model = {**run.config["model"], "source": "fit"}
        return dataclasses.replace(run, config={**run.config, "model": model, "data": {"paths": {"sp500": path}}})

    both = comparison_table([fitted(monthly, "/data/spy.csv"), fitted(annual, "/data/other.csv")])
    assert set(both["data.paths.sp500"]) == {"/data/spy.csv", "/data/other.csv"}
    for run in (monthly, annual):
        mine = table[table.run == run.folder.name].set_index("portfolio")["cagr_median"]
        expected = run.metrics.set_index("portfolio")["cagr_median"]
        pd.testing.assert_series_equal(mine.loc[expected.index], expected, check_names=False, rtol=1e-9)
    printed = capsys.readouterr().out
    assert "monthly" in printed and f"report: {out / 'compare.html'}" in printed
    assert "taxes_mean" not in table  # no run is taxed or saves: the money columns would be noise
    assert main(["compare", str(monthly.folder)]) == 2
    one_error_line(capsys.readouterr(), ("compare: give at least two run folders",))
    # the same run twice, once by another spelling of its path: refused, nothing written
    again = f"{monthly.folder.parent}/./{monthly.folder.name}"  # a string: pathlib would drop the "."
    assert main(["compare", str(monthly.folder), again, "--out", str(tmp_path / "twice")]) == 2
    one_error_line(capsys.readouterr(), ("is given twice", "give each run folder once"))
    assert not (tmp_path / "twice").exists()


def test_run_refuses_what_would_not_fit_in_memory(tmp_path: Path) -> None:
    # as `mcalloc run` does: 100 million ten-year paths need far more memory than any machine here has
    with pytest.raises(ConfigError, match=r"GB is available; lower simulation.n_paths.*pass force=True"):
        mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "big", simulation__n_paths=100_000_000)
    assert not (tmp_path / "big").exists()


def test_compare_shows_the_investors_money_when_an_account_is_taxed(tmp_path: Path) -> None:
    # isk_vs_depot.yaml asks to compare the accounts' taxes and wealth: both are in the comparison, each run's
    # own numbers from its metrics.csv
    example = ROOT / "configs" / "examples" / "isk_vs_depot.yaml"
    runs = [mcalloc.run(example, out=tmp_path / kind, tax__kind=kind, **SMALL) for kind in ("isk", "depot")]
    table = comparison_table(runs)
    assert list(table.columns[-4:]) == ["terminal_wealth_p50", "invested_mean", "taxes_mean", "mwr_median"]
    # the setting that differs is the account; the rates of the one each run does not use are not differences
    assert [c for c in table.columns if c.startswith("tax.")] == ["tax.kind"]
    isk_rates = mcalloc.run(example, out=tmp_path / "isk_low", tax__kind="isk", tax__isk__allowance=150000, **SMALL)
    assert "tax.isk.allowance" in comparison_table([runs[0], isk_rates, runs[1]])
    for run in runs:
        own = table[table["run"] == run.folder.name].set_index("portfolio")
        metrics = run.metrics.set_index("portfolio")
        for column in ("invested_mean", "taxes_mean", "mwr_median"):
            pd.testing.assert_series_equal(own[column], metrics.loc[own.index, column], check_names=False)
    depot = table[table["run"] == "depot"]["taxes_mean"]
    assert (depot > table[table["run"] == "isk"]["taxes_mean"].to_numpy()).all()  # a depot taxes the gains


def test_keyword_settings_keep_their_order_and_take_numpy_values(tmp_path: Path) -> None:
    import numpy as np
    from mcalloc.config.overrides import override_text

    # a mapping keeps the order it was given in: the first benchmark is the reference (docs/config.md)
    assert override_text("b", {"z": {"sp500": 1.0}, "a": 2}) == "b={z: {sp500: 1.0}, a: 2}"
    # what a notebook computes with numpy, and paths, are written as the plain values they hold
    assert override_text("n", np.int64(200)) == "n=200"
    assert override_text("x", np.float64(0.25)) == "x=0.25"
    assert override_text("x", np.array([1, 2])) == "x=[1, 2]"
    assert override_text("x", {"a": np.float32(0.5)}) == "x={a: 0.5}"
    assert override_text("d", Path("/tmp/a b")) == "d=/tmp/a b"
    with pytest.raises(ConfigError, match=r"^mcalloc.run\(simulation__n_paths=...\): cannot write a value of type obj"):
        mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", simulation__n_paths=object())
    assert not (tmp_path / "run").exists()
    benchmarks = {"sp500_only": {"sp500": 1.0}, "balanced": {"sp500": 0.5, "intl": 0.5}}
    settings = {**SMALL, "simulation__n_paths": np.int64(300), "assets__0__ter": np.float64(0.001)}
    run = mcalloc.run(
        DEFAULT_CONFIG, out=tmp_path / "run", optimize__objectives=[], portfolio__benchmarks=benchmarks, **settings
    )
    assert run.portfolios == ["sp500_only", "balanced"] and run.manifest["n_paths"] == 300
    assert set(zip(run.diversification["portfolio"], run.diversification["reference"], strict=True)) == {
        ("balanced", "sp500_only")
    }
    # a run is equal to itself only (its tables would make == ambiguous)
    assert run == run and run != mcalloc.load(run.folder)


def test_load_and_load_batch_refuse_what_names_no_run_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(mcalloc.RunFolderError, match=r"^an empty path names no run folder"):
        mcalloc.load("")  # not the current folder
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "index.parquet").write_bytes(b"not parquet")
    with pytest.raises(mcalloc.RunFolderError, match=r"index\.parquet: unreadable \(.*\); run the batch again") as bad:
        mcalloc.load_batch(batch)
    assert "\n" not in str(bad.value)
    pd.DataFrame({"run": ["x"], "status": ["complete"]}).to_parquet(batch / "index.parquet")
    with pytest.raises(mcalloc.RunFolderError, match=r"index\.parquet: has no folder column"):
        mcalloc.load_batch(batch)
    # without a status the batch's report failed with KeyError: 'status' (a stop-53 hunt)
    pd.DataFrame({"run": ["x"], "folder": ["runs/x"]}).to_parquet(batch / "index.parquet")
    with pytest.raises(mcalloc.RunFolderError, match=r"index\.parquet: has no status column"):
        build_report(batch)
    # a run whose folder is gone is named where it should be, never a same-named folder under the current one
    gone = {"run": ["gone", "never"], "status": ["complete", "failed"], "folder": ["runs/gone", ""]}
    pd.DataFrame(gone).to_parquet(batch / "index.parquet")
    index = mcalloc.load_batch(batch)
    assert list(index["folder"]) == [str(batch / "runs" / "gone"), ""]
    with pytest.raises(mcalloc.RunFolderError, match=re.escape(str(batch / "runs" / "gone"))):
        mcalloc.load(index["folder"][0])


def test_a_manifest_listing_a_file_outside_its_folder_is_refused(tmp_path: Path) -> None:
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)
    manifest = json.loads((run.folder / "manifest.json").read_text())
    (tmp_path / "outside.txt").write_text("x")
    for name in ("../outside.txt", str(tmp_path / "outside.txt")):
        files = {**manifest["files"], name: "0" * 64}
        (run.folder / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
        with pytest.raises(mcalloc.RunFolderError, match=r"among the result files, a place outside the folder"):
            mcalloc.load(run.folder)


def test_a_run_never_replaces_what_would_lose_another_folder(tmp_path: Path) -> None:
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)
    manifest = json.loads((run.folder / "manifest.json").read_text())
    refusals = [
        # inside a complete run: replacing that run later would delete this one
        (tmp_path / "run" / "inner", r"inside the mcalloc folder .*/run, which a later run"),
        # the names mcalloc gives unfinished and failed folders
        (tmp_path / "other.failed", r"a name mcalloc gives to failed"),
        (tmp_path / ".other.partial", r"a name mcalloc gives to failed"),
    ]
    # a run folder holding another one (put there by hand): replacing it would delete both
    holder = tmp_path / "holder"
    shutil.copytree(run.folder, holder)
    shutil.copytree(run.folder, holder / "nested")
    refusals.append((holder, r"holds another mcalloc folder \(nested\), which replacing"))
    # a backtest's folder is not replaced by a run
    backtest = tmp_path / "backtest"
    backtest.mkdir()
    (backtest / "manifest.json").write_text(json.dumps({**manifest, "kind": "backtest"}))
    refusals.append((backtest, r"holds an mcalloc backtest, not a run"))
    for out, message in refusals:
        with pytest.raises(mcalloc.McallocError, match=message) as refused:
            mcalloc.run(DEFAULT_CONFIG, out=out, overrides=["optimize.objectives=[]"], **SMALL)
        # the argument is out=, not the command line's --out
        assert "\n" not in str(refused.value) and "--out" not in str(refused.value) and "out=" in str(refused.value)
    assert not (tmp_path / "run" / "inner").exists() and (holder / "nested" / "manifest.json").is_file()
    assert json.loads((backtest / "manifest.json").read_text())["kind"] == "backtest"
    # an earlier run alone is still replaced, as documented
    assert mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=["optimize.objectives=[]"], **SMALL)


def test_load_and_load_batch_say_what_they_were_given_instead(tmp_path: Path) -> None:
    (tmp_path / "pilot.failed").mkdir()
    with pytest.raises(mcalloc.RunFolderError, match=r"pilot: no such folder, but pilot.failed is beside it"):
        mcalloc.load(tmp_path / "pilot")
    (tmp_path / ".trial.partial").mkdir()
    with pytest.raises(
        mcalloc.RunFolderError,
        match=r"trial: no such folder, but .trial.partial is beside it \(the run runs or was stopped",
    ):
        mcalloc.load(tmp_path / "trial")
    with pytest.raises(mcalloc.RunFolderError, match=r"nowhere: no such folder; give the folder of an mcalloc batch"):
        mcalloc.load_batch(tmp_path / "nowhere")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{}")
    with pytest.raises(mcalloc.RunFolderError, match=r"run: a run's folder, not a batch; load it with mcalloc.load"):
        mcalloc.load_batch(tmp_path / "run")
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "index.csv").write_text("run,folder\n")
    with pytest.raises(mcalloc.RunFolderError, match=r"index.parquet: missing beside index.csv; run the batch again"):
        mcalloc.load_batch(tmp_path / "batch")


def test_arguments_of_the_wrong_kind_are_refused_in_one_line(tmp_path: Path) -> None:
    wrong = [
        (lambda: mcalloc.run(None), ConfigError, r"^mcalloc.run: config is not a path \(it is of type NoneType\)"),
        (
            lambda: mcalloc.run(b"configs/default.yaml"),
            ConfigError,
            r"^mcalloc.run: config is not a path \(it is of type bytes\)",
        ),
        (lambda: mcalloc.run({"name": "x"}), ConfigError, r"^mcalloc.run: config is not a path \(it is of type dict\)"),
        (
            lambda: mcalloc.run(DEFAULT_CONFIG, out=5),
            ConfigError,
            r"^mcalloc.run: out is not a path \(it is of type int\)",
        ),
        (
            lambda: mcalloc.run(DEFAULT_CONFIG, overrides=None),
            ConfigError,
            r"^mcalloc.run: overrides is of type NoneType; give a list",
        ),
        (
            lambda: mcalloc.run(DEFAULT_CONFIG, overrides=[5]),
            ConfigError,
            r"^mcalloc.run: overrides holds a value of type int, not text",
        ),
        (
            lambda: mcalloc.load(None),
            mcalloc.RunFolderError,
            r"^mcalloc.load: folder is not a path \(it is of type NoneType",
        ),
        # a flag given as text was read as True (any non-empty text is), silently
        (
            lambda: mcalloc.load(tmp_path, with_paths="no"),
            ConfigError,
            r"^mcalloc.load: with_paths is 'no' \(str\); give True or False$",
        ),
        (lambda: mcalloc.run(DEFAULT_CONFIG, force=1), ConfigError, r"^mcalloc.run: force is 1 \(int\); give True or"),
        (
            lambda: mcalloc.load(b"results"),
            mcalloc.RunFolderError,
            r"^mcalloc.load: folder is not a path \(it is of type bytes",
        ),
        (
            lambda: mcalloc.load_batch(3),
            mcalloc.RunFolderError,
            r"^mcalloc.load_batch: folder is not a path \(it is of type int",
        ),
    ]
    for call, kind, message in wrong:
        with pytest.raises(kind, match=message) as refused:
            call()
        assert "\n" not in str(refused.value)


def test_what_is_not_mcallocs_or_an_older_index_is_read_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from mcalloc.config.overrides import override_text

    # another tool's manifest.json in a folder above is not an mcalloc folder: the run goes ahead
    project = tmp_path / "webapp"
    project.mkdir()
    (project / "manifest.json").write_text(json.dumps({"name": "my-webapp"}))
    monkeypatch.chdir(project)
    run = mcalloc.run(DEFAULT_CONFIG, out="results/run", overrides=np.array(["optimize.objectives=[]"]), **SMALL)
    assert run.folder.resolve() == project / "results" / "run"
    # ../x is not inside the current folder, whatever it holds
    shutil.copyfile(run.folder / "manifest.json", project / "manifest.json")
    assert mcalloc.run(DEFAULT_CONFIG, out="../beside", overrides=["optimize.objectives=[]"], **SMALL)
    with pytest.raises(ConfigError, match=r"^mcalloc.run: overrides is of type dict; give a list of --set strings"):
        mcalloc.run(DEFAULT_CONFIG, overrides={"simulation.n_paths": 5})
    with pytest.raises(mcalloc.RunFolderError, match=r"^an empty path names no batch folder"):
        mcalloc.load_batch("")
    # an index written before schema 1.2 names folders as the batch did, relative to where it ran
    batch = tmp_path / "results" / "old"
    shutil.copytree(run.folder, batch / "runs" / "x")
    pd.DataFrame({"run": ["x"], "folder": ["results/old/runs/x"]}).to_parquet(batch / "index.parquet")
    monkeypatch.chdir(tmp_path)
    assert mcalloc.load(mcalloc.load_batch(batch)["folder"][0]).folder == Path("results/old/runs/x")
    # dates from pandas and numpy keep their time of day for the schema to judge
    assert override_text("d", pd.Timestamp("2005-01-01 12:00")) == "d='2005-01-01T12:00:00'"
    assert override_text("d", np.datetime64("2005-01-01T00:00:00.000000000")) == "d='2005-01-01'"


def test_a_script_without_a_main_guard_runs_on_a_local_dask_cluster(tmp_path: Path) -> None:
    # the local cluster's workers are fresh interpreters that ran the calling script again: every worker
    # called mcalloc.run itself and failed, and the run ended in 95 lines of tracebacks, RuntimeError: Nanny
    # failed to start (a stop-54 hunt). With joblib's workers the same script always ran.
    import subprocess
    import sys

    out = tmp_path / "run"
    script = tmp_path / "plain.py"
    settings = {**SMALL, "simulation__n_jobs": 2, "simulation__backend": "dask", "output__report": False}
    script.write_text(
        "import mcalloc\n"
        f"run = mcalloc.run({str(DEFAULT_CONFIG)!r}, out={str(out)!r}, **{settings!r})\n"
        "print(run.manifest['backend'], run.folder.name)\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["dask", "run"]
    assert "Traceback" not in done.stderr and "Nanny" not in done.stderr, done.stderr
