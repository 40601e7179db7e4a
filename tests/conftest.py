"""Shared fixtures: paths to the project and to the shared real data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


@pytest.fixture
def shared_data() -> Path:
    """The real ETF data beside the project; tests needing it skip without it."""
    if not (SHARED_DATA / "SPY.csv").is_file():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def default_scenario_data() -> dict[str, Any]:
    """configs/default.yaml as plain data, its residual file made absolute so a copy written elsewhere finds it."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["model"]["dependence"]["residuals"] = str(DEFAULT_CONFIG.parent / data["model"]["dependence"]["residuals"])
    return data


def write_default_variant(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """The default scenario changed by ``mutate`` and written to ``tmp_path/scenario.yaml`` (results under tmp_path).

    No report.html (drawing it takes seconds): tests/test_report.py checks the report.
    """
    data = default_scenario_data()
    data["output"] = {"dir": str(tmp_path / "results"), "report": False}
    mutate(data)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def one_error_line(captured: pytest.CaptureResult[str], expected: tuple[str, ...]) -> str:
    """The single ``mcalloc: error:`` line of a failed command, checked to contain every fragment; no traceback."""
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("mcalloc: error:"), line
    for fragment in expected:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line
