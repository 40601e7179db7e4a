"""mcalloc batch: sweeps, failure isolation, resuming after SIGKILL, the index, and dask.distributed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mcalloc
import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.batch import read_sweep
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.config.loader import override_text
from mcalloc.errors import ConfigError
from mcalloc.pipeline import run_scenario

from .conftest import DEFAULT_CONFIG, ROOT, one_error_line

# small and quick: no optimiser, no report, no per-path file
TINY = {
    "simulation.n_paths": 200,
    "simulation.chunk_size": 100,
    "simulation.horizon_years": 2,
    "simulation.n_jobs": 1,
    "optimize.objectives": [],
    "output.report": False,
    "output.paths": False,
}


def _sweep(tmp_path: Path, grid: dict[str, list[object]], name: str = "sweep", **extra: object) -> Path:
    data = {"name": name, "base": str(DEFAULT_CONFIG), "set": TINY, "grid": grid, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "n_runs"), [("horizon_x_smallcaps", 12), ("sek_account_x_rebalance", 6)], ids=["smallcaps", "sek"]
)
def test_shipped_sweeps_expand_into_valid_scenarios(name: str, n_runs: int) -> None:
    batch = read_sweep(ROOT / "configs" / "sweeps" / f"{name}.yaml")
    assert batch.name == name and len(batch.runs) == n_runs
    assert len({run.name for run in batch.runs}) == n_runs
    for run in batch.runs:
        scenario = load_scenario(run.config, run.overrides)
        assert scenario.simulation.n_paths == 5000


def test_the_sweep_file_docs_batch_md_shows_expands_into_valid_scenarios(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    example = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    example["base"] = str(DEFAULT_CONFIG)
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(example, sort_keys=False), encoding="utf-8")
    batch = read_sweep(path)
    assert len(batch.runs) == 3 * 3 * 2
    for run in batch.runs:
        load_scenario(run.config, run.overrides)


def test_a_grid_may_list_the_same_benchmarks_in_another_order(tmp_path: Path) -> None:
    # the first benchmark is the reference of diversification.csv: the same mapping in another order is another
    # setting, which the grid refused as a value listed twice, and both runs' names read alike
    first = {"sp500_only": {"sp500": 1.0}, "mix": {"sp500": 0.6, "russell2000": 0.2, "intl": 0.2}}
    second = dict(reversed(list(first.items())))
    batch = read_sweep(_sweep(tmp_path, {"portfolio.benchmarks": [first, second]}))
    assert len({run.name for run in batch.runs}) == 2
    references = [next(iter(load_scenario(run.config, run.overrides).portfolio.benchmarks)) for run in batch.runs]
    assert references == ["sp500_only", "mix"]
    from mcalloc.batch import runner

    assert len({runner.run_key(load_scenario(run.config, run.overrides)) for run in batch.runs}) == 2
    with pytest.raises(ConfigError, match="lists the same value twice"):
        read_sweep(_sweep(tmp_path, {"portfolio.benchmarks": [first, dict(first)]}))


def test_a_grid_may_offer_a_name_with_and_without_it(tmp_path: Path) -> None:
    # null in a grid is "this run has no such benchmark", not a --set's misspelt drop, which is refused
    path = tmp_path / "sweep.yaml"
    grid = {"portfolio.benchmarks.gold_tilt": [None, {"sp500": 0.9, "intl": 0.1}]}
    sweep = {"name": "tilts", "base": str(DEFAULT_CONFIG), "set": {"optimize.objectives": []}, "grid": grid}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
    batch = read_sweep(path)
    held = [
        "gold_tilt" in load_scenario(run.config, run.overrides, run.origins).portfolio.benchmarks for run in batch.runs
    ]
    assert held == [False, True]
    with pytest.raises(ConfigError, match="has no 'gold_tilt'"):
        load_scenario(DEFAULT_CONFIG, ["portfolio.benchmarks.gold_tilt="])
    # a sweep's set: applies to every run, so a null naming nothing there is a misspelling, as in a --set
    sweep["set"] = {"optimize.objectives": [], "portfolio.benchmarks.eqaul": None}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
    run = read_sweep(path).runs[0]
    with pytest.raises(ConfigError, match=r"sweep\.yaml:\d+: portfolio\.benchmarks\.eqaul: .* has no 'eqaul'"):
        load_scenario(run.config, run.overrides, run.origins)


def test_a_damaged_run_folder_in_a_batch_is_run_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]})
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    first = (out / "runs" / "horizon_years=1" / "metrics.csv").read_bytes()
    (out / "runs" / "horizon_years=1" / "metrics.csv").write_text("portfolio\n")
    (out / "runs" / "horizon_years=2" / "manifest.json").write_text("{broken")
    assert main(["batch", str(sweep), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("to run") == 2
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    assert list(mcalloc.load_batch(out)["status"]) == ["complete", "complete"]
    assert (out / "runs" / "horizon_years=1" / "metrics.csv").read_bytes() == first


def test_a_sweep_file_among_scenario_files_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]})
    for inputs in ([str(tmp_path)], [str(DEFAULT_CONFIG), str(sweep)]):
        assert main(["batch", *inputs, "--dry-run"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and f"{sweep}: a sweep file (it has base:) runs alone" in error


def test_a_scenario_given_twice_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same file (also through a folder that holds it): two runs of the same seed give the same numbers
    copy = tmp_path / "mine.yaml"
    copy.write_text(f"extends: {DEFAULT_CONFIG}\n", encoding="utf-8")
    for inputs in ([str(DEFAULT_CONFIG), str(DEFAULT_CONFIG)], [str(tmp_path), str(copy)]):
        assert main(["batch", *inputs, "--dry-run", "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and "given twice" in error and "give each scenario once" in error
    assert not (tmp_path / "out").exists()


def test_a_bad_value_in_a_sweep_is_blamed_on_its_line_in_the_sweep_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(
        f"name: bad\nbase: {DEFAULT_CONFIG}\nset: {{simulation.n_paths: 200}}\n"
        "grid:\n  simulation.horizon_years: [2, -1]\n"
        "runs:\n  - {name: cheap, set: {assets.0.ter: -3}}\n  - {name: fine}\n",
        encoding="utf-8",
    )
    assert main(["batch", str(sweep), "--dry-run", "--out", str(tmp_path / "out")]) == 2  # like the batch would
    captured = capsys.readouterr()
    listed = captured.out
    # the table shows every run; stderr says why it exits 2 (it said nothing)
    assert captured.err.splitlines() == [
        f"mcalloc: error: 3 of 4 runs would fail; the first, cheap-horizon_years=2: invalid: {sweep}:7: "
        "assets.0.ter: Input should be greater than or equal to 0 (got -3)"
    ]
    assert f"invalid: {sweep}:7: assets.0.ter: Input should be greater than or equal to 0" in listed
    assert f"invalid: {sweep}:5: simulation.horizon_years: Input should be greater than 0" in listed
    assert "--set" not in listed and listed.count("to run") == 1
    # a base that is a folder, or a sweep itself, is named as such, at its line
    for base, what in ((tmp_path, "is a folder"), (sweep, "is a sweep file itself")):
        nested = tmp_path / "nested.yaml"
        nested.write_text(f"name: n\nbase: {base}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(nested))}:2: base: .* {what}"):
            read_sweep(nested)
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(f"name: m\nbase: {DEFAULT_CONFIG}\ngird: {{simulation.horizon_years: [1]}}\n", "utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(misspelt))}:3: gird: unknown key; check the spelling"):
        read_sweep(misspelt)
    # an option of the command line is named as the option, once, before any run (it would fail them all)
    assert main(["batch", str(sweep), "--dry-run", "--out", str(tmp_path / "out"), "--n-jobs", "0"]) == 2
    one_error_line(capsys.readouterr(), ("--n-jobs: simulation.n_jobs:",))
    # and refused by the batch itself, it leaves no log file (nor the folders made for it) behind
    log = tmp_path / "logs" / "deep" / "batch.log"
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--n-jobs", "0", "--log-file", str(log)]) == 2
    one_error_line(capsys.readouterr(), ("--n-jobs: simulation.n_jobs:",))
    assert not (tmp_path / "logs").exists() and not (tmp_path / "out").exists()
    # a log file that was there is appended to, so it stays, as does a link to one not made yet
    kept, link = tmp_path / "kept.log", tmp_path / "link.log"
    kept.write_text("earlier\n", encoding="utf-8")
    link.symlink_to(tmp_path / "real.log")
    for there in (kept, link):
        assert (
            main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--n-jobs", "0", "--log-file", str(there)]) == 2
        )
        one_error_line(capsys.readouterr(), ("--n-jobs: simulation.n_jobs:",))
    assert (
        kept.read_text(encoding="utf-8") == "earlier\n" and link.is_symlink() and not (tmp_path / "real.log").exists()
    )
    # a --set given on the command line is still named as one
    run = read_sweep(sweep).runs[1]  # fine-horizon_years=2, a valid run
    with pytest.raises(ConfigError, match=r"^--set simulation.n_jobs: Input should be greater"):
        load_scenario(run.config, [*run.overrides, "simulation.n_jobs=-5"], run.origins)


def test_a_2x2_sweep_gives_an_index_of_four_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2], "portfolio.rebalance": ["monthly", "annual"]})
    assert main(["batch", str(sweep), "--dry-run", "--out", str(tmp_path / "out")]) == 0
    listed = capsys.readouterr().out
    assert "4 runs" in listed and listed.count("to run") == 4 and not (tmp_path / "out").exists()
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 0
    index = mcalloc.load_batch(tmp_path / "out")
    assert len(index) == 4 and set(index["status"]) == {"complete"}
    assert sorted(zip(index["simulation.horizon_years"], index["portfolio.rebalance"], strict=True)) == [
        (1, "annual"), (1, "monthly"), (2, "annual"), (2, "monthly"),
    ]  # fmt: skip
    from_csv = pd.read_csv(tmp_path / "out" / "index.csv", dtype={"error": str}).fillna({"error": ""})
    # the files name each run's folder inside the batch's; load_batch joins it to where the batch is
    assert list(from_csv["folder"]) == [f"runs/{name}" for name in index["run"]]
    assert list(index["folder"]) == [str(tmp_path / "out" / "runs" / name) for name in index["run"]]
    pd.testing.assert_frame_equal(index.drop(columns="folder"), from_csv.drop(columns="folder"), check_dtype=False)
    monkeypatch.chdir(tmp_path.parent)  # loads from anywhere
    assert list(index["run"]) == [
        "horizon_years=1-rebalance=monthly", "horizon_years=1-rebalance=annual",
        "horizon_years=2-rebalance=monthly", "horizon_years=2-rebalance=annual",
    ]  # fmt: skip
    # each row's numbers are its run's
    for _, row in index.iterrows():
        run = mcalloc.load(row["folder"])
        metrics = run.metrics.set_index("portfolio")
        assert row["cagr_median:mix_60_20_20"] == pytest.approx(metrics.loc["mix_60_20_20", "cagr_median"], rel=1e-9)
        assert run.config["simulation"]["horizon_years"] == row["simulation.horizon_years"]
    assert "benefit_maxdd_p95:mix_60_20_20" in index
    assert "taxes_mean:mix_60_20_20" not in index  # no run saves or is taxed: no money columns
    # the batch's report: each portfolio's key metrics against the swept horizon
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "batch.html").read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'out' / 'batch.html'}"
    assert page.count("<figure") == 1 and "horizon_years=2-rebalance=annual" in page
    assert (tmp_path / "out" / "figures" / "batch.svg").is_file()
    # a page that cannot be written leaves the figures as they were (new ones were put in place first)
    (tmp_path / "out" / "figures" / "batch.svg").write_text("earlier", encoding="utf-8")
    (tmp_path / "out" / "batch.html").rename(tmp_path / "batch.html")
    (tmp_path / "out" / "batch.html").mkdir()
    assert main(["report", str(tmp_path / "out")]) == 2
    one_error_line(capsys.readouterr(), ("batch.html: cannot be written (a folder of that name is in the way)",))
    assert (tmp_path / "out" / "figures" / "batch.svg").read_text(encoding="utf-8") == "earlier"
    (tmp_path / "out" / "batch.html").rmdir()
    (tmp_path / "batch.html").rename(tmp_path / "out" / "batch.html")
    # without its index.parquet the batch is named as one, with what to do (it was called "not a run")
    (tmp_path / "out" / "index.parquet").rename(tmp_path / "index.parquet")
    assert main(["report", str(tmp_path / "out")]) == 2
    one_error_line(capsys.readouterr(), ("index.parquet: missing beside index.csv", "run the batch again"))
    (tmp_path / "index.parquet").rename(tmp_path / "out" / "index.parquet")
    # once no run is complete the page has no figure, and the earlier one goes with it (it stayed, showing
    # numbers the index no longer held)
    failed = pd.read_parquet(tmp_path / "out" / "index.parquet").assign(status="failed")
    failed.to_parquet(tmp_path / "out" / "failed.parquet")
    (tmp_path / "out" / "index.parquet").rename(tmp_path / "index.parquet")
    (tmp_path / "out" / "failed.parquet").rename(tmp_path / "out" / "index.parquet")
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "<figure" not in (tmp_path / "out" / "batch.html").read_text(encoding="utf-8")
    assert not (tmp_path / "out" / "figures").exists()
    (tmp_path / "index.parquet").replace(tmp_path / "out" / "index.parquet")
    # the batch folder is not a run: compare and load say what it is and what to give instead
    first_run = str(index["folder"].iloc[0])
    assert main(["compare", str(tmp_path / "out"), first_run]) == 2
    one_error_line(capsys.readouterr(), (f"{tmp_path / 'out'}: a batch folder, not a run", "runs/<name>", "load_batch"))


def test_the_index_shows_the_value_a_run_had_for_a_key_only_other_entries_set(tmp_path: Path) -> None:
    # one entry sets portfolio.rebalance, the other leaves the base's: its cell was blank, not "monthly"
    runs = [{"name": "yearly", "set": {"portfolio.rebalance": "annual"}}, {"name": "as_is"}]
    sweep = _sweep(tmp_path, {}, runs=runs)
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 0
    index = mcalloc.load_batch(tmp_path / "out").set_index("run")
    base = yaml.safe_load(DEFAULT_CONFIG.read_text())["portfolio"]["rebalance"]
    assert index.loc["yearly", "portfolio.rebalance"] == "annual"
    assert index.loc["as_is", "portfolio.rebalance"] == base == "monthly"


def test_a_broken_run_fails_alone_and_is_retried(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = []
    for index, horizon in enumerate([1, 2, 3]):
        data = yaml.safe_load(DEFAULT_CONFIG.read_text())
        data["model"]["dependence"]["residuals"] = str(DEFAULT_CONFIG.parent / "default.residuals.csv")
        data["simulation"]["horizon_years"] = horizon
        path = tmp_path / f"good{index}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        configs.append(path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_CONFIG.read_text().replace("n_paths: 10000", "n_pathz: 10000"), encoding="utf-8")
    argv = ["batch", *map(str, configs), str(broken), "--out", str(tmp_path / "out")]
    argv += [
        arg
        for key, value in TINY.items()
        if key != "simulation.horizon_years"
        for arg in ("--set", f"{key}={json.dumps(value)}")
    ]
    assert main(argv) == 2
    printed = capsys.readouterr()
    assert "3 of 4 runs complete" in printed.out
    # the failed run's reason is one line of the log naming the file and the key, with no traceback
    assert "Traceback" not in printed.err
    reasons = [line for line in printed.err.splitlines() if "n_pathz" in line]
    assert len(reasons) == 2 and "broken.yaml" in reasons[0] and "unknown key" in reasons[0], printed.err
    # and the last line says it as every command's failure is said (it was only in the log and the index)
    assert printed.err.splitlines()[-1].startswith("mcalloc: error: 1 of 4 runs failed; the first, broken: ")
    assert reasons[1] == printed.err.splitlines()[-1]
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert list(index["status"]) == ["complete", "complete", "complete", "failed"]
    assert "n_pathz" in index["error"].iloc[3]
    assert pd.isna(index["folder"].iloc[3])  # refused before a folder was made: nothing that looks like a result
    # again: the three are skipped, the broken one is tried (and fails) again
    assert main(argv) == 2
    assert "already complete, skipped" in capsys.readouterr().err
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert list(index["status"]) == ["skipped", "skipped", "skipped", "failed"]
    # mended (as the first run, but over four years: the same run twice under two names is refused)
    mended = configs[0].read_text(encoding="utf-8").replace("horizon_years: 1\n", "horizon_years: 4\n")
    assert mended != configs[0].read_text(encoding="utf-8")
    broken.write_text(mended, encoding="utf-8")
    assert main(argv) == 0
    assert list(pd.read_csv(tmp_path / "out" / "index.csv")["status"]) == ["skipped"] * 3 + ["complete"]


def _batch_process(sweep: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mcalloc", "batch", str(sweep), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _results(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted((out / "runs").glob("*/*.csv"))}


def _terminated_in_run(sweep: Path, out: Path, run: str) -> int:
    """Start the batch, send it SIGTERM once ``run`` (a 100-year one: a few seconds) has begun; its exit code."""
    stopped = _batch_process(sweep, out)
    # the run has begun once its folder under construction exists
    working = out / "runs" / f".{run}.partial"
    deadline = time.monotonic() + 300
    while not working.is_dir() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    stopped.send_signal(signal.SIGTERM)
    return stopped.wait(timeout=60)


def test_a_batch_stopped_by_sigterm_marks_the_run_it_was_in_as_interrupted(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 100, 2]})
    assert _terminated_in_run(sweep, tmp_path / "out", "horizon_years=100") == 143
    index = pd.read_csv(tmp_path / "out" / "index.csv", dtype={"error": str})
    assert list(index["status"]) == ["complete", "failed", "pending"]
    # the index says what the run's manifest says (it said "interrupted", the manifest "stopped (SIGTERM)")
    assert index["error"].iloc[1] == "stopped (SIGTERM)" and index["folder"].iloc[1] == "runs/horizon_years=100.failed"
    manifest = json.loads((tmp_path / "out" / "runs" / "horizon_years=100.failed" / "manifest.json").read_text())
    assert manifest["error"] == "Terminated: stopped (SIGTERM)"


def test_an_interrupted_resumed_batch_keeps_the_runs_finished_before(tmp_path: Path) -> None:
    # the runs an earlier invocation finished stay complete, with their numbers, in the index an
    # interruption leaves (they were written as pending, their folders blank, so load() found nothing)
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [100, 1, 2]})
    out = tmp_path / "out"
    assert _batch_process(sweep, out).wait(timeout=600) == 0
    finished = pd.read_csv(out / "index.csv")
    shutil.rmtree(out / "runs" / "horizon_years=100")
    assert _terminated_in_run(sweep, out, "horizon_years=100") == 143
    index = mcalloc.load_batch(out)
    assert list(index["status"]) == ["failed", "skipped", "skipped"]
    numbers = [column for column in finished.columns if ":" in column]
    assert numbers and index[numbers].iloc[1:].to_numpy().tolist() == finished[numbers].iloc[1:].to_numpy().tolist()
    assert mcalloc.load(index["folder"].iloc[1]).metrics.shape[0] > 0
    # only under the key the runs have now: with other settings they would run again, so they are pending
    from mcalloc.batch.runner import _earlier

    batch = read_sweep(sweep)
    assert set(_earlier(batch, out, [])) == {"horizon_years=1", "horizon_years=2"}
    assert _earlier(batch, out, ["seed=7"]) == {}


def test_a_second_batch_in_a_folder_in_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    sweep = _sweep(tmp_path, {"seed": [1]}, name="locked")
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".batch.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("process 12345 on elsewhere")
        held.flush()
        assert main(["batch", str(sweep), "--out", str(out)]) == 2
        one_error_line(capsys.readouterr(), (f"{out}: another mcalloc batch (process 12345 on elsewhere)", "--out"))
        assert not (out / "runs").exists() and not (out / "index.csv").exists()
        # a dry run refuses it as the batch would, rather than listing the other batch's runs as to run
        assert main(["batch", str(sweep), "--out", str(out), "--dry-run"]) == 2
        one_error_line(capsys.readouterr(), (f"{out}: another mcalloc batch (process 12345 on elsewhere)",))
    # released (as when that batch ends or dies), the folder is free
    assert main(["batch", str(sweep), "--out", str(out)]) == 0


def test_a_batch_where_locks_fail_runs_unlocked_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # NFS without its lock daemon answers ENOLCK: no other batch holds the folder, so it is no reason to refuse
    import errno
    import fcntl

    def no_locks(handle: object, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    sweep = _sweep(tmp_path, {"seed": [1]}, name="nolocks")
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert "cannot lock it (No locks available): running unlocked" in capsys.readouterr().err
    # a system without fcntl (Windows) says so too
    monkeypatch.setitem(sys.modules, "fcntl", None)
    assert main(["batch", str(sweep), "--out", str(tmp_path / "windows")]) == 0
    assert "this system has no file locks: running unlocked" in capsys.readouterr().err


def test_a_completed_run_with_a_damaged_config_does_not_stop_the_batch(tmp_path: Path) -> None:
    # reading the runs done before (for an interrupted batch's index) must not make one broken folder fatal:
    # the batch reruns it, as it reruns any damaged run
    sweep = _sweep(tmp_path, {"seed": [1, 2]}, name="damaged")
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    (out / "runs" / "seed=1" / "config.yaml").write_text("a: [unclosed\n", encoding="utf-8")
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    assert list(mcalloc.load_batch(out)["status"]) == ["complete", "skipped"]


def test_a_batch_killed_mid_run_resumes_to_the_same_results(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2, 3, 4]}, **{})
    reference = _batch_process(sweep, tmp_path / "whole")
    assert reference.wait(timeout=600) == 0, reference.stderr.read() if reference.stderr else ""
    killed = _batch_process(sweep, tmp_path / "killed")
    first = tmp_path / "killed" / "runs" / "horizon_years=1" / "manifest.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second run
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    done = [p.parent.name for p in (tmp_path / "killed" / "runs").glob("*/manifest.json")]
    assert 0 < len(done) < 4, done
    resumed = _batch_process(sweep, tmp_path / "killed")
    assert resumed.wait(timeout=600) == 0
    assert "already complete, skipped" in (resumed.stderr.read() if resumed.stderr else "")
    assert not list((tmp_path / "killed" / "runs").glob(".*partial"))
    assert _results(tmp_path / "killed") == _results(tmp_path / "whole")
    assert len(_results(tmp_path / "whole")) >= 4 * 5


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_numbers(tmp_path: Path) -> None:
    settings = [f"{key}={json.dumps(value)}" for key, value in TINY.items()]
    settings += ["simulation.n_paths=600", "simulation.chunk_size=100"]
    local = run_scenario(load_scenario(DEFAULT_CONFIG, [*settings, "simulation.n_jobs=2"]), out=tmp_path / "loky")
    on_dask = run_scenario(
        load_scenario(DEFAULT_CONFIG, [*settings, "simulation.n_jobs=2", "simulation.backend=dask"]),
        out=tmp_path / "dask",
    )
    for name in ("metrics.csv", "diversification.csv", "fan.csv", "drawdowns.csv", "horizons.csv"):
        assert (on_dask.folder / name).read_bytes() == (local.folder / name).read_bytes(), name
    manifest = json.loads((on_dask.folder / "manifest.json").read_text())
    assert manifest["backend"] == "dask" and "connect to dask" in manifest["timings_s"]


def test_a_run_too_big_for_memory_fails_before_it_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _sweep(tmp_path, {"simulation.n_paths": [100, 100_000_000]}, name="sizes")
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 2
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert list(index["status"]) == ["complete", "failed"]
    assert "GB is available; lower simulation.n_paths" in index["error"].iloc[1]
    assert index["error"].iloc[1].endswith(", or pass --force to mcalloc batch to run anyway")
    # its settings were read, so its row names its run key, as its manifest would
    keys = pd.read_csv(tmp_path / "out" / "index.csv", dtype={"key": str})["key"]
    assert all(re.fullmatch("[0-9a-f]{16}", key) for key in keys) and keys.nunique() == 2
    assert not (tmp_path / "out" / "runs" / "n_paths=100000000").exists()
    capsys.readouterr()
    # the dry run refuses it too (it used to list it "to run" and exit 0), and the complete run stays complete
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    listed = capsys.readouterr().out
    assert "memory_gb" in listed and "minutes" in listed and "complete" in listed
    assert "to run" not in listed.replace("to run anyway", "")
    assert "too large: simulation.n_paths: the run needs about" in listed
    assert "sizes: 2 runs into" in listed and "NaN" not in listed
    # --force runs it (there was no way to), so its dry run lists it to run and exits 0
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--dry-run", "--force"]) == 0
    listed = capsys.readouterr().out
    assert "to run (--force: more memory than is free)" in listed and "too large" not in listed
    # an --out the batch cannot make is refused by its dry run too (it listed every run "to run", exit 0)
    blocked = tmp_path / "afile"
    blocked.write_text("x", encoding="utf-8")
    assert main(["batch", str(sweep), "--out", str(blocked / "b"), "--dry-run"]) == 2
    one_error_line(capsys.readouterr(), (f"{blocked / 'b'}: the batch folder cannot be made", "afile is a file"))


def test_force_runs_a_run_the_memory_check_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a machine with (as the check reads it) next to no free memory: refused without --force, run with it
    from mcalloc.simulation import resources

    monkeypatch.setattr(resources, "available_gb", lambda: 1e-6)
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1]}, name="forced")
    assert main(["batch", str(sweep), "--out", str(tmp_path / "refused")]) == 2
    assert list(pd.read_csv(tmp_path / "refused" / "index.csv")["status"]) == ["failed"]
    capsys.readouterr()
    assert main(["batch", str(sweep), "--out", str(tmp_path / "forced"), "--force"]) == 0
    assert list(pd.read_csv(tmp_path / "forced" / "index.csv")["status"]) == ["complete"]


def test_a_batch_refuses_a_folder_that_is_not_a_batch_and_takes_a_scenarios_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run's folder: a later mcalloc run --out there would replace it, and the batch with it
    run = tmp_path / "run"
    sets = [part for key, value in TINY.items() for part in ("--set", override_text(key, value))]
    assert main(["run", str(DEFAULT_CONFIG), "--out", str(run), "-q", *sets]) == 0
    before = sorted(path.name for path in run.iterdir())
    capsys.readouterr()
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1]})
    for refused, named in ((run, "an mcalloc results folder"), (tmp_path / "mine", "holds notes.txt")):
        refused.mkdir(exist_ok=True)
        if named.endswith("notes.txt"):
            (refused / "notes.txt").write_text("mine", encoding="utf-8")
        for dry in ([], ["--dry-run"]):
            assert main(["batch", str(sweep), "--out", str(refused), *dry]) == 2
            one_error_line(capsys.readouterr(), (f"{refused}: exists and is not a batch folder ({named})", "--out"))
    assert sorted(path.name for path in run.iterdir()) == before
    # a log file the batch is asked to write inside its own new folder is no reason to refuse it, and an
    # earlier batch is resumed whatever was put beside it since
    logged = tmp_path / "logged"
    assert main(["batch", str(sweep), "--out", str(logged), "--log-file", str(logged / "batch.log")]) == 0
    (logged / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["batch", str(sweep), "--out", str(logged)]) == 0
    assert "already complete, skipped" in capsys.readouterr().err
    # a scenario's results folder, holding its runs' folders (the default for a batch named after it), is taken
    results = tmp_path / "results" / "default"
    shutil.copytree(run, results / "20261203T000000Z-abc")
    assert main(["batch", str(sweep), "--out", str(results)]) == 0
    assert (results / "index.csv").is_file() and (results / "20261203T000000Z-abc" / "manifest.json").is_file()
    capsys.readouterr()


@pytest.mark.slow
def test_a_batch_on_a_running_dask_scheduler_gives_the_local_numbers(tmp_path: Path) -> None:
    """`--backend dask --scheduler tcp://...`: a scheduler and two worker processes on loopback, as on a cluster."""
    from distributed import LocalCluster

    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]}, name="remote")
    local = ["batch", str(sweep), "--out", str(tmp_path / "local"), "--n-jobs", "2"]
    assert main(local) == 0
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = ["batch", str(sweep), "--out", str(tmp_path / "remote"), "--scheduler", cluster.scheduler_address]
        assert main(remote) == 0
    assert _results(tmp_path / "remote") == _results(tmp_path / "local")
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "remote" / "runs").glob("*/manifest.json")]
    assert len(manifests) == 2 and all(m["backend"] == "dask" for m in manifests)


def test_an_unreachable_scheduler_fails_each_run_in_one_line_and_is_asked_once(tmp_path: Path) -> None:
    # an unreachable scheduler is one line, and the run is recorded as failed; the runs after it are not kept
    # waiting for it again (each waited its own timeout: 10 s a run, 17 minutes for a batch of 100)
    two = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]}, name="two")
    assert main(["batch", str(two), "--out", str(tmp_path / "none"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    errors = pd.read_csv(tmp_path / "none" / "index.csv")["error"].tolist()
    assert all("cannot reach the dask scheduler at tcp://127.0.0.1:9" in error for error in errors)
    assert "earlier run" not in errors[0] and errors[1].endswith("(as for an earlier run of this batch)")


def test_a_changed_residual_file_or_mixed_values_are_handled(tmp_path: Path) -> None:
    """The run key covers every file the scenario names; a sweep of only `set` is one run; mixed types index as text."""
    residuals = tmp_path / "residuals.csv"
    residuals.write_text((DEFAULT_CONFIG.parent / "default.residuals.csv").read_text(), encoding="utf-8")
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["model"]["dependence"]["residuals"] = str(residuals)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(data), encoding="utf-8")
    sweep = tmp_path / "single.yaml"
    sweep.write_text(yaml.safe_dump({"name": "single", "base": str(base), "set": TINY}), encoding="utf-8")
    argv = ["batch", str(sweep), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["run"]) == ["run"]
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["status"]) == ["skipped"]
    lines = residuals.read_text().splitlines()
    residuals.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # one historical day fewer
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["status"]) == ["complete"]
    # the same bytes elsewhere (the batch and its files copied to another checkout) are the same run: the key
    # once held the files' absolute paths, and a moved batch ran everything again
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(residuals, moved / "residuals.csv")
    data["model"]["dependence"]["residuals"] = str(moved / "residuals.csv")
    (moved / "base.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (moved / "single.yaml").write_text(
        yaml.safe_dump({"name": "single", "base": str(moved / "base.yaml"), "set": TINY}), encoding="utf-8"
    )
    shutil.copytree(tmp_path / "out", moved / "out")
    assert main(["batch", str(moved / "single.yaml"), "--out", str(moved / "out")]) == 0
    assert list(mcalloc.load_batch(moved / "out")["status"]) == ["skipped"]
    mixed = _sweep(tmp_path, {"seed": [1, "2"]}, name="mixed")
    assert main(["batch", str(mixed), "--out", str(tmp_path / "mixed")]) == 0
    assert list(mcalloc.load_batch(tmp_path / "mixed")["seed"]) == ["1", "2"]


def test_a_changed_file_named_by_a_relative_path_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a sweep's `set` may name a file relative to where the batch runs: its bytes are in the run key too
    monkeypatch.chdir(tmp_path)
    Path("residuals.csv").write_text((DEFAULT_CONFIG.parent / "default.residuals.csv").read_text(), encoding="utf-8")
    sweep = _sweep(tmp_path, {"seed": [1]}, name="relative")
    data = yaml.safe_load(sweep.read_text())
    data["set"]["model.dependence.residuals"] = "residuals.csv"
    sweep.write_text(yaml.safe_dump(data), encoding="utf-8")
    argv = ["batch", str(sweep), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["status"]) == ["skipped"]
    # a file named as a setting's value (rebalance: monthly) is not one the run reads: the key stays
    Path("monthly").write_text("not a scenario's file\n", encoding="utf-8")
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["status"]) == ["skipped"]
    lines = Path("residuals.csv").read_text().splitlines()
    Path("residuals.csv").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    assert main(argv) == 0
    assert list(mcalloc.load_batch(tmp_path / "out")["status"]) == ["complete"]


def test_the_batch_page_draws_entries_that_set_a_key_the_others_do_not(tmp_path: Path) -> None:
    entries = [{"name": "base"}, {"name": "cheap", "set": {"assets.0.ter": 0.0003}}]
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]}, name="entries", runs=entries)
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    page = (out / "batch.html").read_text(encoding="utf-8")
    index = mcalloc.load_batch(out)
    assert all(run in page for run in index["run"])
    # each portfolio has a line per entry in every panel, its points at the two horizons, from the index
    from mcalloc.report.figures import batch_figure

    figure = batch_figure(index, ["simulation.horizon_years", "entry", "assets.0.ter"])
    assert figure is not None
    portfolios = [str(c).split(":", 1)[1] for c in index.columns if str(c).startswith("cagr_median:")]
    lines = {line.get_label(): line for line in figure.axes[0].lines}  # median CAGR
    expected = {f"{p} ({entry}, {ter})" for p in portfolios for entry, ter in (("base", 0.0009), ("cheap", 0.0003))}
    assert set(lines) == expected
    for entry in ("base", "cheap"):
        rows = index[index["entry"] == entry].sort_values("simulation.horizon_years")
        drawn = lines[f"{portfolios[0]} ({entry}, {rows['assets.0.ter'].iloc[0]})"]
        assert list(drawn.get_xdata()) == [1, 2]
        np.testing.assert_allclose(drawn.get_ydata(), rows[f"cagr_median:{portfolios[0]}"])  # the first panel


@pytest.mark.parametrize(
    ("grid", "runs", "expected"),
    [
        pytest.param(
            {"simulation.horizon_years": [1, 2]},
            [{"name": "long", "set": {"simulation.horizon_years": 3}}, {"name": "base"}],
            "runs: entry 'long' sets simulation.horizon_years, which the grid sweeps",
            id="grid-key-in-an-entry",
        ),
        pytest.param(
            {"simulation.horizon_years": [1, 1.0]},
            None,
            "grid: simulation.horizon_years lists the same value twice",
            id="same-value-twice",
        ),
        pytest.param(
            {"optimize.constraints.long_only": [True, True]},
            None,
            "grid: optimize.constraints.long_only lists the same value twice",
            id="same-boolean-twice",
        ),
        pytest.param(
            {"simulation.horizon_years": [1, 2]},
            [{"set": {"simulation.horizon_years": 3}}],
            "runs: runs.0 sets simulation.horizon_years",
            id="unnamed-entry",
        ),
        pytest.param(
            {"simulation.horizon_years": [1, 2]},
            [{"name": "e", "set": {"simulation": {"n_paths": 300, "horizon_years": 6}}}],
            "runs: entry 'e' sets simulation (a whole section, simulation.horizon_years included), which the grid",
            id="a-mapping-holding-a-grid-key",
        ),
        pytest.param(
            # a section set whole replaces it: the swept rebalance went back to monthly in every run, while the
            # names and the index said never
            {"portfolio.rebalance": ["monthly", "never"]},
            [{"name": "two", "set": {"portfolio": {"benchmarks": {"all_in": {"sp500": 1.0}}}}}],
            "runs: entry 'two' sets portfolio (a whole section, portfolio.rebalance included), which the grid sweeps",
            id="a-mapping-without-the-grid-key",
        ),
        pytest.param(
            # the section, swept after the key, replaced it: both runs rebalanced monthly, and the index and the
            # names said never and annual (exit 0)
            {"portfolio.rebalance": ["never", "annual"], "portfolio": [{"benchmarks": {"half": {"sp500": 1.0}}}]},
            None,
            "grid: portfolio (a whole section) and portfolio.rebalance, inside it, are both swept",
            id="a-grid-section-after-a-grid-key-inside-it",
        ),
        pytest.param(
            {"portfolio": [{"benchmarks": {"half": {"sp500": 1.0}}}], "portfolio.rebalance": ["never", "annual"]},
            None,
            "grid: portfolio (a whole section) and portfolio.rebalance, inside it, are both swept",
            id="a-grid-section-before-a-grid-key-inside-it",
        ),
        pytest.param(
            {"simulation.start": [{"kind": "unconditional"}, {"kind": "last"}]},
            [{"name": "e", "set": {"simulation.start.kind": "stressed"}}],
            "runs: entry 'e' sets simulation.start.kind (part of simulation.start), which the grid sweeps",
            id="a-key-inside-a-swept-mapping",
        ),
    ],
)
def test_sweeps_that_would_run_one_setting_under_two_names_are_refused(
    tmp_path: Path, grid: dict[str, list[object]], runs: list[dict[str, object]] | None, expected: str
) -> None:
    extra = {"runs": runs} if runs is not None else {}
    sweep = _sweep(tmp_path, grid, name="twice", **extra)
    with pytest.raises(ConfigError, match=re.escape(expected)) as refused:
        read_sweep(sweep)
    assert "\n" not in str(refused.value)


def test_a_set_key_the_grid_replaces_is_refused(tmp_path: Path) -> None:
    # set: portfolio.rebalance under a grid of whole portfolio sections: every run rebalanced monthly (exit 0)
    sections = [{"benchmarks": {"a": {"sp500": 1.0}}}, {"benchmarks": {"b": {"intl": 1.0}}}]
    sweep = _sweep(tmp_path, {"portfolio": sections}, name="lost", set={**TINY, "portfolio.rebalance": "never"})
    with pytest.raises(ConfigError, match=r"set: portfolio\.rebalance is inside portfolio, a section the grid sweeps"):
        read_sweep(sweep)
    # a set: section holding a swept key is applied first, and the grid's key inside it after: allowed
    sweep = _sweep(
        tmp_path, {"portfolio.rebalance": ["annual", "monthly"]}, name="kept", set={**TINY, "portfolio": sections[0]}
    )
    runs = read_sweep(sweep).runs
    rebalances = [load_scenario(run.config, run.overrides).portfolio.rebalance for run in runs]
    assert rebalances == ["annual", "monthly"]


@pytest.mark.parametrize(
    "override",
    [
        "simulation.horizon_years=5",
        "simulation={n_paths: 300, horizon_years: 5}",
        " simulation.horizon_years =5",
        "simulation={n_paths: 300}",  # replaces the section: every run at the default 10 years
    ],
)
def test_a_set_on_a_swept_key_is_refused_as_the_same_in_every_run(
    tmp_path: Path, override: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # applied after each run's own settings it ran every run at 5 years while names and index said 1 and 2
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]}, name="overridden")
    for dry in ([], ["--dry-run"]):
        assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--set", override, *dry]) == 2
        one_error_line(capsys.readouterr(), (f"--set {override}:", "varies simulation.horizon_years", "drop the"))
    assert not (tmp_path / "out").exists()
    # a setting the sweep does not vary is applied to every run, as before
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), "--set", "seed=3", "--dry-run"]) == 0


def test_settings_for_every_run_on_what_entries_or_the_grid_set_apart_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # entries that differ by a mapping (no index column of their own), a grid on a list's item, and an option
    entries = [{"name": "mon", "set": {"portfolio": {"rebalance": "monthly"}}}, {"name": "ann", "set": {}}]
    entries[1]["set"] = {"portfolio": {"rebalance": "annual"}}
    by_entry = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]}, name="entries", runs=entries)
    by_item = _sweep(tmp_path, {"assets.0.ter": [0.001, 0.002]}, name="items")
    by_jobs = _sweep(tmp_path, {"simulation.n_jobs": [1, 2]}, name="jobs")
    cases = [
        (
            by_entry,
            ["--set", "portfolio.rebalance=never"],
            "--set portfolio.rebalance=never: the batch varies portfolio",
        ),
        (by_entry, ["--set", "portfolio={rebalance: never}"], "the batch varies portfolio from run to run"),
        (by_item, ["--set", "assets=[{name: sp500, ter: 0.003}]"], "the batch varies assets.0.ter"),
        (by_jobs, ["--n-jobs", "2"], "--n-jobs: the batch varies simulation.n_jobs"),
    ]
    for sweep, arguments, fragment in cases:
        assert main(["batch", str(sweep), "--out", str(tmp_path / "out"), *arguments, "--dry-run"]) == 2
        one_error_line(capsys.readouterr(), (fragment,))
    assert not (tmp_path / "out").exists()


def test_long_grid_values_that_differ_late_still_name_their_runs_apart(tmp_path: Path) -> None:
    # run names keep 60 characters of each part: two descriptions alike for 70 were one name, refused
    values = ["x" * 70 + "1", "x" * 70 + "2"]
    runs = read_sweep(_sweep(tmp_path, {"description": values}, name="long")).runs
    assert len({run.name for run in runs}) == 2
    assert all(len(run.name.split("-", 1)[0]) <= 60 for run in runs)
    assert [run.swept["description"] for run in runs] == values


def test_a_run_name_too_long_for_a_folder_is_cut_and_the_batch_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an entry's 100-character name and three 60-character parts made a 285-character folder name: the
    # first run's failure handling raised ENAMETOOLONG, the batch stopped with "unexpected error" and no index
    entry = "e" * 100
    grid = {"description": ["d" * 70], "assets.0.label": ["s" * 70], "assets.1.label": ["r" * 70]}
    sweep = _sweep(tmp_path, grid, name="long", runs=[{"name": entry}])
    (run,) = read_sweep(sweep).runs
    assert len(run.name.encode()) == 200 and run.name.startswith(entry + "-description=ddd")
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert index["status"].tolist() == ["complete"] and (tmp_path / "out" / "runs" / run.name / "metrics.csv").is_file()


def test_a_scheduler_that_accepts_but_never_answers_is_one_line(tmp_path: Path) -> None:
    # e.g. the dashboard's port given for the scheduler's: distributed's handshake would wait for ever
    from mcalloc.simulation.distributed import dask_client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    try:
        refusal = pytest.raises(ConfigError, match=r"^simulation\.scheduler: .* did not answer")
        with refusal as refused, dask_client(address, connect_timeout=1.0):
            pass
        assert "\n" not in str(refused.value)
    finally:
        listener.close()


def test_a_scheduler_check_from_inside_a_running_event_loop_is_still_one_line() -> None:
    # mcalloc.run in a notebook: the caller's thread already runs an asyncio loop
    import asyncio

    from mcalloc.simulation.distributed import dask_client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"

    async def in_a_notebook() -> None:
        with dask_client(address, connect_timeout=1.0):
            pass

    try:
        with pytest.raises(ConfigError, match=r"^simulation\.scheduler: .* did not answer"):
            asyncio.run(in_a_notebook())
    finally:
        listener.close()


@pytest.mark.parametrize("scheduler", ["inproc://foo", "ucx://127.0.0.1:1", "tls://127.0.0.1:9"])
def test_scheduler_addresses_mcalloc_cannot_use_are_refused_by_the_schema(scheduler: str) -> None:
    with pytest.raises(ConfigError, match=r"simulation\.scheduler"):
        load_scenario(DEFAULT_CONFIG, ["simulation.backend=dask", f"simulation.scheduler={scheduler}"])


def test_an_account_sweeps_index_shows_each_runs_money(tmp_path: Path) -> None:
    # the question of configs/sweeps/sek_account_x_rebalance.yaml: what each account keeps and pays
    data = {
        "name": "accounts",
        "base": str(ROOT / "configs" / "examples" / "isk_vs_depot.yaml"),
        "set": {**TINY, "simulation.horizon_years": 2},
        "grid": {"tax.kind": ["isk", "depot"]},
    }
    sweep = tmp_path / "accounts.yaml"
    sweep.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert main(["batch", str(sweep), "--out", str(tmp_path / "out")]) == 0
    index = mcalloc.load_batch(tmp_path / "out")
    for _, row in index.iterrows():
        metrics = mcalloc.load(row["folder"]).metrics.set_index("portfolio")
        for portfolio in metrics.index:
            for column in ("invested_mean", "taxes_mean", "mwr_median"):
                assert row[f"{column}:{portfolio}"] == pytest.approx(metrics.loc[portfolio, column], rel=1e-9)
    assert main(["report", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "batch.html").read_text(encoding="utf-8")
    shown = f"{index['taxes_mean:mix_60_20_20'].iloc[1]:,.0f}"  # money, as the wealth is
    assert shown in page


def test_a_cluster_without_workers_fails_the_run_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a real scheduler with no worker: joblib gives up after 10 s; the run said "unexpected error", cut short
    from distributed import LocalCluster

    settings = [f"{key}={json.dumps(value)}" for key, value in TINY.items()]
    # the scheduler's HTTP server on a free port, as the engine's own cluster: 8787 may be held by another test
    with LocalCluster(
        n_workers=0, host="127.0.0.1", dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
    ) as cluster:
        argv = ["run", str(DEFAULT_CONFIG), "-q", "--out", str(tmp_path / "run")]
        argv += [arg for setting in settings for arg in ("--set", setting)]
        argv += ["--set", "simulation.backend=dask", "--set", f"simulation.scheduler={cluster.scheduler_address}"]
        assert main(argv) == 1
    where = f"simulation.scheduler: the dask cluster at {cluster.scheduler_address} failed during the run"
    one_error_line(
        capsys.readouterr(), (where, "(TimeoutError: DaskDistributedBackend has no worker after 10 seconds)")
    )
    assert not (tmp_path / "run").exists() and (tmp_path / "run.failed").is_dir()


def test_a_run_finished_under_another_results_schema_is_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # the package version stays 0.1.0 while numbers change from one schema to the next: keyed by it alone, a
    # resumed batch skipped a run of schema 1.9 and kept its month-end drawdowns computed the old way
    from mcalloc.batch import runner

    scenario = load_scenario(DEFAULT_CONFIG)
    key = runner.run_key(scenario)
    assert runner.run_key(load_scenario(DEFAULT_CONFIG)) == key
    monkeypatch.setattr(runner, "SCHEMA_VERSION", "1.9")
    assert runner.run_key(scenario) != key


@pytest.mark.parametrize("workers_code", ["changed", "missing"])
def test_workers_running_other_mcalloc_code_are_refused_in_one_line(
    workers_code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a worker started from another checkout gave "unexpected error: IndexError" (or, worse, other numbers
    # without a word); one that cannot import mcalloc at all left the run waiting for ever
    from distributed import Client, LocalCluster

    copy = tmp_path / "checkout"
    if workers_code == "changed":
        shutil.copytree(ROOT / "engine" / "mcalloc", copy / "mcalloc", ignore=shutil.ignore_patterns("__pycache__"))
        with (copy / "mcalloc" / "metrics" / "__init__.py").open("a", encoding="utf-8") as module:
            module.write("# a change of a worker's own\n")
    else:
        (copy / "mcalloc").mkdir(parents=True)
        (copy / "mcalloc" / "__init__.py").write_text("", encoding="utf-8")
    settings = [f"{key}={json.dumps(value)}" for key, value in TINY.items()]
    # the scheduler's HTTP server on a free port, as the engine's own cluster: 8787 may be held by another test
    with LocalCluster(
        n_workers=0, host="127.0.0.1", dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
    ) as cluster:
        environment = {**os.environ, "PYTHONPATH": str(copy)}
        command = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address]
        command += ["--nthreads", "1", "--no-dashboard", "--name", "other-code"]
        worker = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with Client(cluster.scheduler_address) as client:
                client.wait_for_workers(1, timeout=60)
            argv = ["run", str(DEFAULT_CONFIG), "-q", "--out", str(tmp_path / "run")]
            argv += [arg for setting in settings for arg in ("--set", setting)]
            argv += ["--set", "simulation.backend=dask", "--set", f"simulation.scheduler={cluster.scheduler_address}"]
            assert main(argv) == 2
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)
    expected = "run mcalloc" if workers_code == "changed" else "cannot run mcalloc"
    one_error_line(
        capsys.readouterr(), (f"simulation.scheduler: the workers of {cluster.scheduler_address} ", expected)
    )
    assert not (tmp_path / "run").exists()


def test_a_bad_command_line_setting_is_refused_once_and_leaves_a_finished_index_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --n-jobs -5 on a finished batch failed every run alike and rewrote its index: every run failed, every
    # number gone, though the run folders were complete; and --dry-run called a run with contradictory
    # constraints "to run" (a stop-53 hunt)
    sweep = _sweep(tmp_path, {"simulation.horizon_years": [1, 2]})
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "--out", str(out)]) == 0
    capsys.readouterr()
    index = {name: (out / name).read_bytes() for name in ("index.csv", "index.parquet")}
    for option, fragments in (
        (["--n-jobs", "-5"], ("--n-jobs: simulation.n_jobs", "-1")),
        (["--set", "simulation.n_paths=abc"], ("--set simulation.n_paths",)),
    ):
        assert main(["batch", str(sweep), "--out", str(out), *option]) == 2
        one_error_line(capsys.readouterr(), fragments)
        assert {name: (out / name).read_bytes() for name in index} == index
    groups = {"g1": {"assets": ["sp500"], "min": 0.6}, "g2": {"assets": ["intl"], "min": 0.6}}
    contradictory = _sweep(
        tmp_path,
        {"optimize.constraints.groups": [groups, {"g1": {"assets": ["sp500"], "min": 0.1}}]},
        name="groups",
        **{"set": {**TINY, "optimize.objectives": [{"kind": "min_variance"}]}},
    )
    assert main(["batch", str(contradictory), "--out", str(tmp_path / "groups"), "--dry-run"]) == 2
    printed = capsys.readouterr()
    assert "invalid: " in printed.out and "no weights that sum to 1 meet them all" in printed.err.splitlines()[-1]


def test_swept_numbers_are_written_as_the_runs_used_them(tmp_path: Path) -> None:
    # seeds 123456789012345 and ...399 were both 1.23456789e+14 in index.csv once a failed run made the column
    # floats, and 0.3 and 0.30000000000000004 were one value at 10 digits (a stop-53 hunt)
    sweep = _sweep(
        tmp_path,
        {"portfolio.risk_free": [0.1 + 0.2, 0.3]},
        runs=[
            {"name": "x", "set": {"seed": 123456789012345}},
            {"name": "y", "set": {"seed": 123456789012399}},
            {"name": "z", "set": {"portfolio.rebalance": "foo"}},
        ],
    )
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "--out", str(out)]) == 2
    index = pd.read_csv(out / "index.csv", dtype=str)
    seeds = index.set_index("run")["seed"].dropna()
    assert set(seeds) == {"123456789012345", "123456789012399"}
    assert set(index["portfolio.risk_free"]) == {"0.30000000000000004", "0.3"}
    loaded = mcalloc.load_batch(out)
    assert sorted(set(loaded["seed"].dropna().tolist())) == [123456789012345, 123456789012399]


def test_the_batch_figure_draws_runs_swept_to_null_and_tells_many_lines_apart() -> None:
    # runs with min_return null were dropped from the figure without a note (NaN on a number line), and the
    # eleventh line took the first one's colour and style (a stop-53 hunt)
    from mcalloc.report.figures import batch_figure

    key = "optimize.objectives.0.min_return"
    index = pd.DataFrame(
        {
            "run": ["a", "b", "c"],
            "status": ["complete"] * 3,
            key: [None, 0.13, 0.11],
            **{f"cagr_median:p{i}": [0.05, 0.06, 0.07] for i in range(11)},
        }
    )
    figure = batch_figure(index, [key])
    assert figure is not None
    panel = figure.axes[0]
    assert all(len(line.get_xdata()) == 3 for line in panel.get_lines())
    assert [tick.get_text() for tick in panel.get_xticklabels()] == ["null", "0.13", "0.11"]
    looks = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in panel.get_lines()}
    assert len(looks) == 11


def test_the_batch_figure_draws_a_portfolio_the_other_keys_leave_alone_once_and_benefits_in_points() -> None:
    # the reference, the same whatever weight the sweep gave the mix, was drawn once per weight over itself in
    # as many colours; and a benefit of 0.003 (0.3 percentage points) read "0.300%"
    from mcalloc.report.figures import batch_figure

    index = pd.DataFrame(
        {
            "run": ["a", "b", "c", "d"],
            "status": ["complete"] * 4,
            "simulation.horizon_years": [5, 10, 5, 10],
            "mix.weight": [0.2, 0.2, 0.4, 0.4],
            "cagr_median:ref": [0.08, 0.085, 0.08, 0.085],
            "cagr_median:mix": [0.081, 0.086, 0.083, 0.087],
            "benefit_cagr_median:mix": [0.001, 0.001, 0.003, 0.002],
        }
    )
    figure = batch_figure(index, ["simulation.horizon_years", "mix.weight"])
    assert figure is not None
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["ref (the same at every mix.weight)", "mix (0.2)", "mix (0.4)"]
    benefit = figure.axes[1]
    assert benefit.get_ylabel() == "percentage points"
    figure.canvas.draw()
    ticks = [tick.get_text() for tick in benefit.get_yticklabels() if tick.get_text()]
    assert ticks and all("%" not in tick for tick in ticks) and any(tick in ("+0.2", "+0.3") for tick in ticks)


def test_two_runs_that_are_one_are_refused_before_either_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two entries with the same settings, or one scenario under two paths, ran twice under two names, although
    # a file given twice was refused (a stop-53 hunt)
    same = _sweep(tmp_path, {"simulation.horizon_years": [1]}, runs=[{"name": "x"}, {"name": "y"}])
    for dry in ([], ["--dry-run"]):
        assert main(["batch", str(same), "--out", str(tmp_path / "same"), *dry]) == 2
        one_error_line(capsys.readouterr(), ("runs x-horizon_years=1 and y-horizon_years=1 are one run", "drop one"))
    assert not (tmp_path / "same" / "index.csv").exists()
    (tmp_path / "other").mkdir()
    copy = tmp_path / "other" / "default.yaml"
    copy.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
            "residuals: default.residuals.csv", f"residuals: {DEFAULT_CONFIG.parent / 'default.residuals.csv'}"
        ),
        encoding="utf-8",
    )
    tiny = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    assert main(["batch", str(DEFAULT_CONFIG), str(copy), "--out", str(tmp_path / "two"), *tiny]) == 2
    one_error_line(capsys.readouterr(), ("are one run (the same scenario and seed",))


def test_the_memory_estimate_counts_the_optimisers_copies_and_only_the_workers_that_run_chunks() -> None:
    from mcalloc.simulation.resources import OPTIMISER_BYTES, memory_parts

    # a stop-55 hunt measured the optimiser's paths at about 25 bytes per path, month and asset (4 were counted,
    # so 1,000,000 of them over 40 years dry-ran as 6.5 GB where about 36 GB were needed), and idle workers at
    # 0.04 GB where 0.35 GB were counted (--n-jobs 72 on 2,000 paths, two chunks, was refused at 25 GB)
    big = load_scenario(
        DEFAULT_CONFIG, ["optimize.n_paths=1000000", "simulation.horizon_years=40", "simulation.n_paths=2000"]
    )
    assert memory_parts(big)["optimize.n_paths"] == 1_000_000 * 40 * 12 * 3 * OPTIMISER_BYTES
    assert OPTIMISER_BYTES >= 25.0
    wide = load_scenario(DEFAULT_CONFIG, ["simulation.n_jobs=72", "simulation.n_paths=2000"])
    assert memory_parts(wide)["simulation.n_jobs"] == pytest.approx((2 * 0.35 + 70 * 0.05) * 1e9)
    one_chunk = load_scenario(DEFAULT_CONFIG, ["simulation.n_jobs=2", "simulation.n_paths=1000"])
    assert memory_parts(one_chunk)["simulation.n_jobs"] == 0.0  # a single chunk runs in the main process
