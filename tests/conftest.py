"""Shared fixtures: paths to the project and to the shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


@pytest.fixture
def shared_data() -> Path:
    """The real ETF data beside the project; tests needing it skip without it."""
    if not (SHARED_DATA / "SPY.csv").is_file():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
