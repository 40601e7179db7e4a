"""The installed package: `import mcalloc`, `python -m mcalloc`, and no top-level `engine` module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_a_built_install_holds_mcalloc_and_no_engine_module(tmp_path: Path) -> None:
    # what `pip install .` puts into site-packages: built from this tree, dependencies left out
    target = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--target", str(target), str(ROOT)], check=True, capture_output=True)
    top_level = {path.name for path in target.iterdir() if not path.name.endswith((".dist-info", ".egg-info"))}
    assert "mcalloc" in top_level and "engine" not in top_level, top_level
    assert (target / "mcalloc" / "cli" / "main.py").is_file()
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
