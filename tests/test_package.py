"""The installed package: `import mcalloc`, `python -m mcalloc`, and no top-level `engine` module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def test_a_built_install_holds_mcalloc_and_no_engine_module(tmp_path: Path) -> None:
    # what `pip install .` puts into site-packages: built from this tree, dependencies left out
    target = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--target", str(target), str(ROOT)], check=True, capture_output=True)
    top_level = {path.name for path in target.iterdir() if not path.name.endswith((".dist-info", ".egg-info"))}
    assert "mcalloc" in top_level and "engine" not in top_level, top_level
    assert (target / "mcalloc" / "cli" / "main.py").is_file()
    # typed for a user's mypy (py.typed), and the licence's text beside the metadata, as MIT asks
    assert (target / "mcalloc" / "py.typed").is_file()
    licences = [path.read_text(encoding="utf-8") for path in target.glob("mcalloc-*.dist-info/licenses/LICENSE")]
    assert len(licences) == 1 and licences[0].startswith("MIT License"), licences
    # the packages' name lists, without which their imports fail (lazy_loader reads them at import)
    source_stubs = {path.relative_to(ROOT / "engine") for path in (ROOT / "engine" / "mcalloc").rglob("*.pyi")}
    assert len(source_stubs) > 10
    assert {path.relative_to(target) for path in (target / "mcalloc").rglob("*.pyi")} == source_stubs
    # imported from there (not from the source tree), from a directory without the sources
    code = "import mcalloc, mcalloc.pipeline; print(mcalloc.__file__)"
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.stdout.strip().startswith(str(target))


def test_python_dash_m_mcalloc_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "mcalloc", "--help"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage: mcalloc")
    # the version, as the package's metadata has it (it was "the following arguments are required: COMMAND")
    from importlib import metadata

    done = subprocess.run([sys.executable, "-m", "mcalloc", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"mcalloc {metadata.version('mcalloc')}"


def test_a_run_logging_to_a_file_reports_progress_with_time_left(tmp_path: Path) -> None:
    # a batch job: stderr redirected to a file, no terminal
    from .conftest import DEFAULT_CONFIG

    log = tmp_path / "stderr.log"
    command = [sys.executable, "-m", "mcalloc", "run", str(DEFAULT_CONFIG), "--out", str(tmp_path / "run")]
    command += ["--set", "simulation.n_paths=3000", "--set", "simulation.chunk_size=100"]
    command += ["--set", "simulation.horizon_years=2", "--set", "optimize.objectives=[]", "--progress-every", "0"]
    command += ["--log-file", str(tmp_path / "run.log")]
    with log.open("w") as stderr:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=stderr, check=True)
    lines = [line for line in log.read_text().splitlines() if "paths (" in line]
    done = [int(line.split(": ")[1].split("/")[0].replace(",", "")) for line in lines]
    assert len(lines) >= 3 and done == sorted(done) and done[-1] == 3000, lines
    assert all("paths/s" in line and "s left" in line for line in lines)
    assert "done in" in log.read_text()
    # the log file has the same lines, timestamped
    assert sum("paths (" in line for line in (tmp_path / "run.log").read_text().splitlines()) == len(lines)


def test_progress_counts_a_pass_from_its_start_not_from_its_first_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the clock used to start at the first finished chunk, so a pass of 1.2 s logged 4,013,179 paths/s
    from mcalloc.cli import progress
    from mcalloc.config import load_scenario
    from mcalloc.pipeline import run_scenario

    from .conftest import DEFAULT_CONFIG

    calls: list[tuple[str, int, int]] = []
    overrides = ["simulation.n_paths=300", "simulation.chunk_size=100", "simulation.horizon_years=1"]
    overrides += ["simulation.n_jobs=1", "optimize.objectives=[]", "output.report=false"]
    run_scenario(
        load_scenario(DEFAULT_CONFIG, overrides),
        out=tmp_path / "run",
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages and all(calls[[c[0] for c in calls].index(stage)][1] == 0 for stage in stages), calls
    assert all(done <= total for _, done, total in calls)
    # a reporter given the start: 50 of 100 paths 4 s after it, then the rest 4 s later, read by its own clock
    ticks = iter([100.0, 104.0, 108.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(ticks))
    reporter = progress.ProgressReporter("log", interval=0.0)
    with caplog.at_level("INFO", logger=progress.LOGGER.name):
        for done in (0, 50, 100):
            reporter("simulate", done, 100)
    assert [record.getMessage() for record in caplog.records] == [
        "simulate: 50/100 paths (50%), 12 paths/s, 4 s left",
        "simulate: 100/100 paths (100%), 12 paths/s, 0 s left",
    ]


def test_every_command_help_shows_examples_that_name_real_files(capsys: pytest.CaptureFixture[str]) -> None:
    from mcalloc.cli.common import EXAMPLES
    from mcalloc.cli.main import main

    for command in (
        "run",
        "validate",
        "show-config",
        "fit",
        "calibrate",
        "data",
        "compare",
        "report",
        "batch",
        "backtest",
    ):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "examples:" in out and f"mcalloc {command}" in out, command
        assert "``" not in out, command  # the docstring's literals read as the docs write them
    for lines in EXAMPLES.values():
        for line in lines:
            configs = [word for word in line.split() if word.startswith("configs/") and "my" not in word]
            assert all((ROOT / path).is_file() for path in configs), line


def test_every_package_name_is_importable_from_a_fresh_interpreter() -> None:
    # the packages import their names and modules on first use, from the lists in their __init__.pyi:
    # a name listed there but missing from its module would only fail when someone first used it, and
    # `import mcalloc` alone must still reach `mcalloc.models.joint.JointModel` as it did
    code = """
import importlib, pathlib, mcalloc
assert mcalloc.models.joint.JointModel and mcalloc.pipeline.run_scenario and mcalloc.metrics.cvar
folders = pathlib.Path(mcalloc.__file__).parent.glob("*/__init__.py")
names = ["mcalloc", *(f"mcalloc.{path.parent.name}" for path in folders)]
count = 0
for name in names:
    package = importlib.import_module(name)
    assert package.__all__, name
    for attribute in package.__all__:
        assert getattr(package, attribute) is not None, f"{name}.{attribute}"
        count += 1
print(len(names), count)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n_packages, n_names = map(int, done.stdout.split())
    assert n_packages > 10 and n_names > 200


def test_the_source_distribution_holds_what_its_tests_and_scenarios_need(tmp_path: Path) -> None:
    # it held tests/test_*.py without conftest.py or the bad-input cases (two collection errors), and no scenario
    import shutil
    import tarfile

    # from a copy without build leftovers: an earlier build's egg-info lists files setuptools would add again
    leftovers = shutil.ignore_patterns(".*", "*.egg-info", "build", "dist", "results", "__pycache__")
    tree = shutil.copytree(ROOT, tmp_path / "tree", ignore=leftovers)
    shutil.copytree(ROOT / "results", tree / "results", ignore=lambda folder, names: set(names) - {"README.md"})
    done = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"],
        cwd=tree, check=True, capture_output=True, text=True,
    )  # fmt: skip
    archive = tmp_path / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wanted = {"LICENSE", "Makefile", "requirements.lock", "tests/conftest.py", "tests/__init__.py"}
    wanted |= {"tests/bad_inputs/cases.yaml", "configs/default.yaml", "configs/default.residuals.csv", "docs/config.md"}
    assert wanted <= names, sorted(wanted - names)
    assert not [name for name in names if "__pycache__" in name or name.startswith(("results/2", ".venv"))]
