"""Unattended runs: signals and orphaned workers, stale folders, numerical hazards, non-finite results.

The process tests start ``mcalloc run`` as a real subprocess with two loky
workers, wait until the workers exist, then send SIGTERM or SIGKILL to the
parent only, and check with psutil that no child process survives it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mcalloc
import numpy as np
import pandas as pd
import psutil
import pytest
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.errors import ModelError, stop_requested
from mcalloc.pipeline import build_model
from mcalloc.results.writer import check_finite

from .conftest import DEFAULT_CONFIG, one_error_line

BIG_RUN = ["simulation.n_paths=400000", "output.report=false", "simulation.n_jobs=2"]


def _start_run(out: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """A long run in a subprocess, once its worker processes are up."""
    command = [sys.executable, "-m", "mcalloc", "run", str(DEFAULT_CONFIG), "--out", str(out), "-q"]
    for override in BIG_RUN:
        command += ["--set", override]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [c for c in parent.children(recursive=True) if "LokyProcess" in _command_line(c)]
        if len(workers) >= 2:
            break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the run never started its two workers")
    time.sleep(0.5)
    return process, parent.children(recursive=True)


def _command_line(process: psutil.Process) -> str:
    """Its command line; empty for a short-lived child that has ended (or is a zombie) by the time it is read."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def _survivors(children: list[psutil.Process], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = children
    while time.monotonic() < deadline:
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.1)
    return [c.pid for c in alive]


REFUSED = (
    "mcalloc refuses to read the files named in their detail (a changed paths.parquet only where it is read); "
    "run their scenarios again"
)


def test_sigterm_marks_the_run_failed_exits_143_and_leaves_no_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process, children = _start_run(out)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert err.strip().splitlines() == ["mcalloc: terminated (SIGTERM); unfinished results were marked failed"]
    assert _survivors(children) == []
    manifest = json.loads((tmp_path / "run.failed" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and manifest["error"] == "Terminated: stopped (SIGTERM)"
    assert not out.exists()


def _start_in_a_group_of_its_own(out: Path, settings: list[str]) -> tuple[subprocess.Popen[str], psutil.Process]:
    """``mcalloc run`` of the default scenario in a process group of its own, with SIGINT's default action."""
    import os

    command = [sys.executable, "-m", "mcalloc", "run", str(DEFAULT_CONFIG), "--out", str(out), "-q"]
    for override in settings:
        command += ["--set", override]

    def own_group_with_default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setpgid(0, 0)

    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=own_group_with_default_sigint
    )
    return process, psutil.Process(process.pid)


def _interrupt_and_check_one_line(process: subprocess.Popen[str], parent: psutil.Process, tmp_path: Path) -> None:
    """A terminal's Ctrl-C to the run's whole group: one line from the run, none from a worker, none left alive."""
    import os

    children = parent.children(recursive=True)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["mcalloc: interrupted; unfinished results were marked failed"], err
    assert _survivors(children) == []
    manifest = json.loads((tmp_path / "run.failed" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["error"] == "KeyboardInterrupt: interrupted (SIGINT, Ctrl-C)"


def test_ctrl_c_while_the_workers_start_is_one_line_from_the_run_and_none_from_a_worker(tmp_path: Path) -> None:
    # a terminal's Ctrl-C goes to the whole foreground process group: the run and its workers. A worker
    # caught while it still imported printed a KeyboardInterrupt traceback of its own. The run is started
    # in a group of its own with SIGINT's default action (as from a shell), and the group is interrupted
    # a moment after its first worker process exists, well before that worker has finished importing.
    process, parent = _start_in_a_group_of_its_own(tmp_path / "run", BIG_RUN)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any("LokyProcess" in _command_line(c) for c in parent.children(recursive=True)):
            break
        time.sleep(0.005)
    else:
        process.kill()
        pytest.fail("the run never started a worker")
    time.sleep(0.1)  # past Python's start, when SIGINT would end the worker quietly, into its imports
    _interrupt_and_check_one_line(process, parent, tmp_path)


def test_ctrl_c_on_a_local_dask_cluster_is_one_line_from_the_run_and_none_from_a_worker(tmp_path: Path) -> None:
    # the nanny starts each worker from a thread where the standard library's resource tracker had lifted the
    # hold on SIGINT, so a terminal's Ctrl-C reached the workers: two tracebacks ending in KeyboardInterrupt,
    # the workers' "task cancelled" warnings and the nannies' "still alive after 4.0 seconds, killing" (a
    # stop-54 hunt). Interrupted while both workers compute, the run is one line, as on joblib's workers.
    # Port 8787 held meanwhile (another cluster's dashboard, Jupyter's): the scheduler's HTTP server, started even
    # without a dashboard, warned in four lines that it was in use (CI at stop 55, beside another test's cluster)
    settings = [*BIG_RUN, "simulation.backend=dask", "optimize.objectives=[]"]
    with socket.socket() as holder:
        with contextlib.suppress(OSError):  # already held by someone else: as good
            holder.bind(("", 8787))
            holder.listen()
        process, parent = _start_in_a_group_of_its_own(tmp_path / "run", settings)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = [c for c in parent.children() if "spawn_main" in _command_line(c)]
            try:
                busy = len(workers) == 2 and all(sum(w.cpu_times()[:2]) > 2.0 for w in workers)
            except psutil.NoSuchProcess:
                busy = False
            if busy:
                break
            time.sleep(0.1)
        else:
            process.kill()
            pytest.fail("the run's two dask workers never got to work")
        _interrupt_and_check_one_line(process, parent, tmp_path)


def test_a_sigterm_whose_exception_a_stage_swallowed_still_leaves_nothing_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the handler's exception can be lost (raised inside a weakref callback, or caught by a library while it
    # draws, leaving its state broken): seen with SIGTERM in the report stage. The handler also sets a flag,
    # which the last steps check. Here the report stage "receives" the signal and carries on, as then.
    import mcalloc.report as report
    from mcalloc.errors import request_stop

    drawn = report.write_report

    def interrupted(*args: object, **kwargs: object) -> object:
        request_stop()  # what the handler does before its exception goes astray
        return drawn(*args, **kwargs)

    monkeypatch.setattr(report, "write_report", interrupted)
    out = tmp_path / "run"
    small = [
        "--set",
        "simulation.n_paths=200",
        "--set",
        "simulation.horizon_years=1",
        "--set",
        "optimize.objectives=[]",
    ]
    assert main(["run", str(DEFAULT_CONFIG), "--out", str(out), "-q", *small]) == 143
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "run.failed" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and "Terminated" in manifest["error"] and not out.exists()
    # the flag is cleared once handled: the next command, or a run from the API in the same process, starts afresh
    assert not stop_requested()
    assert main(["validate", str(DEFAULT_CONFIG)]) == 0
    monkeypatch.setattr(report, "write_report", drawn)
    assert mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "after", overrides=small[1::2]).manifest["status"] == "complete"


def test_after_a_sigterm_a_batch_starts_no_further_run_and_compare_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stage that turns the signal's exception into an error of its own: the batch records the interruption,
    # not that error, and starts no further run; a comparison being drawn is not moved into place
    import mcalloc.report as report
    from mcalloc.batch import BatchRun, run_batch
    from mcalloc.batch.sweep import Batch
    from mcalloc.errors import McallocError, Terminated, request_stop
    from mcalloc.results.writer import move_into_place

    started = []

    def broken(*args: object, **kwargs: object) -> object:
        # the real run's last stage receives the signal and fails with an error of its own
        started.append(args)
        request_stop()
        raise McallocError("a stage broke on its way out of the signal")

    monkeypatch.setattr(report, "write_report", broken)
    small = ("simulation.n_paths=200", "simulation.chunk_size=100", "simulation.horizon_years=1")
    small += ("optimize.objectives=[]", "output.report=true")
    runs = tuple(
        BatchRun(name, DEFAULT_CONFIG, (*small, f"seed={seed}")) for seed, name in enumerate(("first", "second"))
    )
    try:
        with pytest.raises(Terminated):
            run_batch(Batch("stopped", runs), tmp_path / "batch")
        assert len(started) == 1
        index = pd.read_csv(tmp_path / "batch" / "index.csv", keep_default_na=False)
        assert list(index["status"]) == ["failed", "pending"] and index["error"].iloc[0] == "stopped (SIGTERM)"
        # the real run's folder was marked failed, and the run never reached has none
        assert list(index["folder"]) == ["runs/first.failed", ""]
        manifest = json.loads((tmp_path / "batch" / "runs" / "first.failed" / "manifest.json").read_text())
        assert manifest["status"] == "failed"
        assert sorted(p.name for p in (tmp_path / "batch" / "runs").iterdir()) == ["first.failed"]
        # what compare, report and every run folder make final goes through move_into_place
        working = tmp_path / ".compared.partial"
        working.mkdir()
        with pytest.raises(Terminated):
            move_into_place(working, tmp_path / "compared")
        assert not (tmp_path / "compared").exists()
    finally:
        request_stop(False)


def test_sigkill_leaves_no_process_and_nothing_complete_and_clean_removes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "run"
    out.parent.mkdir()
    process, children = _start_run(out)
    process.kill()
    process.communicate(timeout=60)  # returns: no orphan holds the output pipes open
    assert _survivors(children) == []
    assert not out.exists()
    partial = out.parent / ".run.partial"
    assert json.loads((partial / "manifest.json").read_text(encoding="utf-8"))["status"] == "running"
    assert main(["runs", str(out.parent)]) == 0
    listed = capsys.readouterr().out
    assert "stale" in listed and ".run.partial" in listed
    # reading it says the run stopped, not that it is running (a user would wait for it forever)
    with pytest.raises(mcalloc.RunFolderError, match=r"the run stopped before it finished .*run its scenario again"):
        mcalloc.load(partial)
    assert main(["report", str(partial)]) == 2
    assert "the run stopped before it finished" in capsys.readouterr().err
    assert main(["clean", str(out.parent)]) == 0
    assert not partial.exists()
    assert "removed" in capsys.readouterr().out


def test_clean_keeps_a_complete_run_whatever_its_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # only mcalloc's own hidden .<name>.partial and .<name>.replaced folders are unfinished by their name: a
    # run a user sent to --out pilot.partial is complete, and clean once removed it as stale
    small = ["--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=1", "--set", "output.report=false"]
    for name in ("pilot.partial", "pilot.replaced"):
        assert main(["run", "-q", str(DEFAULT_CONFIG), *small, "--out", str(tmp_path / name)]) == 0
    assert main(["runs", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "stale" not in listed and listed.count("complete") >= 2
    assert main(["clean", str(tmp_path)]) == 0
    assert (tmp_path / "pilot.partial").is_dir() and (tmp_path / "pilot.replaced").is_dir()
    # a run read without its paths leaves the per-path table unread: even a damaged one does not stop it
    (tmp_path / "pilot.partial" / "paths.parquet").write_bytes(b"not parquet")
    assert mcalloc.load(tmp_path / "pilot.partial", with_paths=False).metrics.shape[0] > 0
    with pytest.raises(mcalloc.RunFolderError, match=r"paths.parquet: changed since the run wrote it"):
        mcalloc.load(tmp_path / "pilot.partial")
    # runs lists it complete unless asked to read every file; a file gone is seen without reading any
    assert main(["runs", str(tmp_path)]) == 0
    assert "damaged" not in capsys.readouterr().out
    assert main(["runs", "--verify", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert " damaged " in rows[1] and "paths.parquet: changed since the run wrote it" in rows[1]
    assert "pilot.replaced" in rows[2] and " complete " in rows[2]
    assert rows[-1] == f"1 damaged folder(s): {REFUSED}"
    (tmp_path / "pilot.replaced" / "metrics.csv").unlink()
    assert main(["runs", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert " damaged " in rows[2] and "metrics.csv missing; run its scenario again" in rows[2]
    assert main(["clean", str(tmp_path)]) == 0  # damaged is not stale: a user decides
    assert (tmp_path / "pilot.partial").is_dir() and (tmp_path / "pilot.replaced").is_dir()
    capsys.readouterr()
    # a hand-edited value of the wrong kind, as load finds it (runs listed it complete while load refused it)
    manifest = json.loads((tmp_path / "pilot.partial" / "manifest.json").read_text())
    (tmp_path / "pilot.partial" / "manifest.json").write_text(json.dumps({**manifest, "n_paths": "x"}))
    assert main(["runs", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert " damaged " in rows[1] and 'manifest.json: n_paths is "x", not a whole number; run its scenario' in rows[1]
    # a manifest that is not JSON (or not an object) is damaged too, as load and report call it, not unknown
    (tmp_path / "pilot.partial" / "manifest.json").write_text("[1, 2")
    assert main(["runs", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert " damaged " in rows[1] and "manifest.json is unreadable; run its scenario again" in rows[1]
    assert rows[-1] == f"2 damaged folder(s): {REFUSED}"


def test_clean_removes_only_mcalloc_s_own_replaced_folders_and_says_when_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a user's .thesis.replaced was listed stale and deleted ("removed", exit 0): data lost (a stop-53 hunt)
    theirs = tmp_path / "proj" / ".thesis.replaced"
    theirs.mkdir(parents=True)
    (theirs / "chapter1.tex").write_text("my only copy", encoding="utf-8")
    (theirs / "manifest.json").write_text('{"name": "My App"}', encoding="utf-8")  # another tool's manifest
    ours = tmp_path / ".run.replaced"
    small = ["--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=1", "--set", "output.report=false"]
    assert main(["run", "-q", str(DEFAULT_CONFIG), *small, "--out", str(tmp_path / "run")]) == 0
    (tmp_path / "run").rename(ours)  # as a run killed while replacing an earlier one leaves it
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert " unknown " in rows[str(theirs)] and "not an mcalloc folder" in rows[str(theirs)]
    assert " stale " in rows[str(ours)]
    # a removal that fails (a file it may not delete) was reported "removed", exit 0, and left half a folder
    import shutil

    real_rmtree = shutil.rmtree

    def refused(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Operation not permitted", str(path))

    monkeypatch.setattr(shutil, "rmtree", refused)
    assert main(["clean", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr(), (str(ours), "could not be removed (Operation not permitted)", "clean again"))
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert main(["clean", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"removed {ours}"
    assert not ours.exists() and (theirs / "chapter1.tex").read_text(encoding="utf-8") == "my only copy"


def test_clean_keeps_a_folder_whose_writer_is_alive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partial = tmp_path / ".busy.partial"
    partial.mkdir()
    manifest = {"status": "running", "pid": psutil.Process().pid, "host": __import__("socket").gethostname()}
    (partial / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main(["clean", str(tmp_path)]) == 0
    assert partial.exists()
    assert main(["runs", str(tmp_path)]) == 0
    assert "running" in capsys.readouterr().out


def test_a_run_never_takes_over_a_folder_another_run_is_writing(tmp_path: Path) -> None:
    from mcalloc.errors import OutputError
    from mcalloc.results.writer import RunFolder

    final, partial = tmp_path / "run", tmp_path / ".run.partial"
    host = __import__("socket").gethostname()
    other = psutil.Process().ppid()  # alive, and not this process: stands for another mcalloc run
    writers = [
        ({"pid": other, "host": host}, f"mcalloc process {other} is writing"),
        ({"pid": 1, "host": "another-host.invalid"}, "another-host.invalid"),
        (None, "starting"),  # just created, its manifest not yet written
    ]
    for manifest, fragment in writers:
        partial.mkdir()
        if manifest is not None:
            (partial / "manifest.json").write_text(json.dumps({"status": "running", **manifest}), encoding="utf-8")
        (partial / "theirs.csv").write_text("a\n1\n", encoding="utf-8")
        with pytest.raises(OutputError, match=fragment):
            RunFolder.create(final, {"kind": "run"})
        assert (partial / "theirs.csv").is_file()
        __import__("shutil").rmtree(partial)
    # a writer that is gone: what it left is replaced. Gone is: no such process; a process that took the pid
    # over after the run started; another machine's folder untouched for half a day (a container's host name
    # changes with every run)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    long_ago = "2000-01-01T00:00:00+00:00"
    left = [
        {"pid": gone.pid, "host": host},
        {"pid": other, "host": host, "started_at": long_ago},
        {"pid": 1, "host": "another-host.invalid", "started_at": long_ago},
    ]
    for manifest in left:
        partial.mkdir()
        (partial / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        (partial / "theirs.csv").write_text("a\n1\n", encoding="utf-8")
        if manifest["host"] != host:
            hours_ago = time.time() - 13 * 3600
            for path in (partial / "manifest.json", partial / "theirs.csv", partial):
                __import__("os").utime(path, (hours_ago, hours_ago))
        folder = RunFolder.create(final, {"kind": "run"})
        assert folder.working == partial and not (partial / "theirs.csv").exists(), manifest
        assert sorted(p.name for p in tmp_path.iterdir()) == [".run.partial"]
        __import__("shutil").rmtree(partial)


def test_a_run_killed_before_its_manifest_leaves_a_folder_the_next_run_takes_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the writer claims the folder (pid, host, time) as it creates it, before gathering its manifest: killed in
    # between, it left a folder that blocked every rerun for a minute as "starting"
    from mcalloc.results.writer import CLAIM, RunFolder

    final, partial = tmp_path / "run", tmp_path / ".run.partial"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    partial.mkdir()
    claim = {"pid": gone.pid, "host": __import__("socket").gethostname(), "started_at": "2026-12-01T00:00:00+00:00"}
    (partial / CLAIM).write_text(json.dumps(claim), encoding="utf-8")
    assert main(["runs", str(tmp_path)]) == 0
    assert "its writing process is gone" in capsys.readouterr().out
    folder = RunFolder.create(final, {"kind": "run"})
    # the new writer's manifest names it; its claim is not left among the results
    assert folder.working == partial and sorted(p.name for p in partial.iterdir()) == ["manifest.json"]


def test_a_run_that_finds_a_stale_folder_never_deletes_one_claimed_since_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the interleaving of two runs clearing one stale .partial: this run looked (stale), the other cleared it and
    # claimed a fresh one, then this run moves "the stale folder" aside: it must hand the fresh one back
    from mcalloc.errors import OutputError
    from mcalloc.results import writer

    final, partial = tmp_path / "run", tmp_path / ".run.partial"
    partial.mkdir()
    other = psutil.Process().ppid()  # alive, and not this process: the run that claimed the folder first
    claim = {"pid": other, "host": __import__("socket").gethostname(), "started_at": writer._now()}
    (partial / writer.CLAIM).write_text(json.dumps(claim), encoding="utf-8")
    (partial / "theirs.csv").write_text("a\n1\n", encoding="utf-8")
    real = writer._current_writer
    looks: list[Path] = []

    def look(folder: Path) -> str | None:
        looks.append(folder)
        # the first look saw the stale folder the other run has since replaced; later looks see what is there
        return None if len(looks) == 1 else real(folder)

    monkeypatch.setattr(writer, "_current_writer", look)
    with pytest.raises(OutputError, match="another run has just started writing"):
        writer.RunFolder.create(final, {"kind": "run"})
    assert (partial / "theirs.csv").is_file() and (partial / writer.CLAIM).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.partial"]
    assert len(looks) == 2 and looks[1].name.startswith(".run.partial.gone-")


def test_clean_keeps_a_folder_another_machine_writes_even_after_a_later_run_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a shared results folder: a run on another host is still writing while one here has finished
    elsewhere = tmp_path / ".remote.partial"
    elsewhere.mkdir()
    running = {"status": "running", "pid": 1, "host": "another-host.invalid", "started_at": "2026-01-01T00:00:00+00:00"}
    (elsewhere / "manifest.json").write_text(json.dumps(running), encoding="utf-8")
    # and one left by an mcalloc that recorded no writer: stale once a later run has finished here
    old = tmp_path / ".old.partial"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({**running, "pid": None, "host": None}), encoding="utf-8")
    done = tmp_path / "done"
    done.mkdir()
    finished = {
        "status": "complete",
        "started_at": "2026-01-02T00:00:00+00:00",
        "finished_at": "2026-01-02T01:00:00+00:00",
    }
    (done / "manifest.json").write_text(json.dumps(finished), encoding="utf-8")
    assert main(["clean", str(tmp_path)]) == 0
    assert elsewhere.exists() and not old.exists()
    assert main(["runs", str(tmp_path)]) == 0
    assert "another-host.invalid" in capsys.readouterr().out


def test_heavy_tails_and_near_unit_persistence_warn() -> None:
    model, _ = build_model(
        load_scenario(
            DEFAULT_CONFIG,
            [
                "model.marginals.dist=t",
                "model.dependence.kind=gaussian",
                "model.dependence.residuals=null",
                "model.dependence.correlation=[[1,0.5,0.4],[0.5,1,0.3],[0.4,0.3,1]]",
                "model.marginals.params.sp500.nu=3.5",
                "model.marginals.params.russell2000.nu=8",
                "model.marginals.params.intl.nu=8",
                # intl: alpha + gamma/2 + beta = 0.9995
                "model.marginals.params.intl.beta=0.9214",
                "model.marginals.params.intl.omega=0.0001",
            ],
        )
    )
    warnings = " | ".join(model.warnings)
    assert "sp500" in warnings and "nu = 3.5 <= 4" in warnings
    assert "intl" in warnings and "persistence 0.99950" in warnings


def test_the_writer_refuses_infinite_numbers_and_missing_key_numbers() -> None:
    check_finite("calibration.csv", pd.DataFrame({"statistic": ["a"], "p_value": [np.nan]}))  # not applicable
    with pytest.raises(ModelError, match=r"metrics.csv: column cagr_p05 is -inf for sp500_only"):
        check_finite("metrics.csv", pd.DataFrame({"portfolio": ["sp500_only"], "cagr_p05": [-np.inf]}))
    with pytest.raises(ModelError, match=r"metrics.csv: column prob_loss is nan for mix"):
        check_finite("metrics.csv", pd.DataFrame({"portfolio": ["mix"], "prob_loss": [np.nan]}))
    with pytest.raises(ModelError, match=r"frontier.csv: column volatility is inf"):
        check_finite("frontier.csv", pd.DataFrame({"portfolio": ["x"], "volatility": [np.inf]}))


def test_force_runs_what_the_memory_guard_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a machine with no free memory (fault injection): the estimate of any run exceeds it
    monkeypatch.setattr("mcalloc.simulation.resources.available_gb", lambda: 0.0)
    argv = ["run", str(DEFAULT_CONFIG), "-q", "--set", "simulation.n_paths=200", "--set", "output.report=false"]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    one_error_line(capsys.readouterr(), ("0.0 GB is available", "lower simulation.n_paths"))
    assert not (tmp_path / "refused").exists()
    assert main([*argv, "--out", str(tmp_path / "forced"), "--force", "--set", "optimize.objectives=[]"]) == 0
    assert json.loads((tmp_path / "forced" / "manifest.json").read_text(encoding="utf-8"))["status"] == "complete"


def test_plain_aliases_still_work_and_errors_point_into_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"extends: {DEFAULT_CONFIG}\n"
        "portfolio:\n"
        "  benchmarks:\n"
        "    first: &mix {sp500: 0.5, russell2000: 0.5}\n"
        "    second: *mix\n"
        "simulation: {n_paths: -1}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(scenario)]) == 2
    one_error_line(capsys.readouterr(), (f"{scenario}:6: simulation.n_paths",))
    scenario.write_text(scenario.read_text(encoding="utf-8").replace("n_paths: -1", "n_paths: 100"), encoding="utf-8")
    assert main(["validate", str(scenario)]) == 0


def test_a_run_stopped_after_its_report_was_drawn_leaves_no_page_in_its_failed_folder(tmp_path: Path) -> None:
    # the report is drawn in the working folder before the run is marked complete, and a SIGTERM swallowed until
    # then stops it there: the failed folder kept a finished-looking report.html that said nothing of the failure
    from mcalloc.errors import Terminated, request_stop
    from mcalloc.results.writer import RunFolder

    folder = RunFolder.create(tmp_path / "run", {"kind": "run"})
    folder.write_csv("metrics.csv", __import__("pandas").DataFrame({"portfolio": ["a"], "cagr_median": [0.05]}))
    (folder.working / "report.html").write_text("<html>finished</html>", encoding="utf-8")
    (folder.working / "figures").mkdir()
    (folder.working / "figures" / "fan.png").write_bytes(b"\x89PNG")
    request_stop()
    try:
        with pytest.raises(Terminated):
            folder.complete()
        failed = folder.fail(Terminated())
    finally:
        request_stop(False)
    assert failed == tmp_path / "run.failed" and not (tmp_path / "run").exists()
    assert sorted(path.name for path in failed.iterdir()) == ["manifest.json", "metrics.csv"]
    assert json.loads((failed / "manifest.json").read_text(encoding="utf-8"))["status"] == "failed"


def test_replacing_a_folder_never_deletes_a_folder_of_the_name_it_moves_aside_that_is_not_mcallocs(
    tmp_path: Path,
) -> None:
    from mcalloc.results.writer import move_into_place

    # a run replacing NAME moves it aside as .NAME.replaced, deleting whatever had that name first: a user's
    # folder of that name too (left open at stops 53 and 54)
    def folder(name: str, files: dict[str, str]) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file, text in files.items():
            (path / file).write_text(text, encoding="utf-8")
        return path

    manifest = json.dumps({"schema_version": "1.17", "status": "complete"})
    folder("run", {"manifest.json": manifest, "metrics.csv": "old"})
    folder(".run.replaced", {"notes.txt": "mine"})
    move_into_place(folder("work", {"manifest.json": manifest, "metrics.csv": "new"}), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_text(encoding="utf-8") == "new"
    assert (tmp_path / ".run.replaced" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.replaced", "run"]
    # one mcalloc left there (a run killed while replacing) is deleted, as before
    (tmp_path / ".run.replaced" / "notes.txt").unlink()
    (tmp_path / ".run.replaced" / "manifest.json").write_text(manifest, encoding="utf-8")
    move_into_place(folder("work", {"manifest.json": manifest, "metrics.csv": "newer"}), tmp_path / "run")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
