"""Fuzzing the parsers: whatever a script or a user feeds them, only domain errors (one line, exit 2) escape.

Hypothesis draws arbitrary text for scenario files, ``--set`` overrides and
CSV files, and mutations of valid ones; the only exceptions allowed out are
:class:`~mcalloc.errors.ConfigError` (scenarios, overrides) and
:class:`~mcalloc.errors.DataError` (data files). 1,000 examples each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcalloc.config import load_scenario
from mcalloc.config.loader import apply_override, load_raw, validate
from mcalloc.data import read_series, read_table
from mcalloc.errors import ConfigError, DataError

from .conftest import DEFAULT_CONFIG

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

Result = TypeVar("Result")


def _one_line_or(expected: type[Exception], call: Callable[[], Result]) -> Result | None:
    """``call()``'s result, or None if it raised ``expected`` with a message the CLI prints as one line."""
    try:
        return call()
    except expected as error:
        message = str(error)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
        return None


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    [
        "seed", "name", "simulation.n_paths", "simulation.horizon_years", "simulation.steps_per_year",
        "simulation.start", "portfolio.initial_wealth", "portfolio.rebalance", "portfolio.benchmarks",
        "portfolio.flows", "assets.0.ter", "assets", "model.marginals.params.sp500.omega",
        "model.marginals.params.intl.nu", "model.dependence", "model.dependence.correlation", "model.factor",
        "optimize.objectives", "optimize.constraints.bounds", "currency", "tax", "data", "output",
    ]
)  # fmt: skip


def _scenario(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _one_line_or(ConfigError, lambda: load_scenario(path))


@FUZZ
@given(st.text(max_size=400))
def test_any_text_as_a_scenario_file_is_a_config_error_or_valid(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be written as UTF-8 at all
    _scenario(text)


RAW, LOCATIONS = load_raw(DEFAULT_CONFIG)


def _validated(overrides: list[str]) -> None:
    """The default scenario with ``overrides`` applied and validated, as load_scenario does (file read once)."""

    def apply() -> None:
        data = RAW
        for override in overrides:
            data = apply_override(data, override)
        validate(data, LOCATIONS, DEFAULT_CONFIG)

    _one_line_or(ConfigError, apply)


@FUZZ
@given(_KEYS, _VALUES)
def test_any_value_at_any_key_of_the_default_is_a_config_error_or_valid(key: str, value: object) -> None:
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    _validated([f"{key}={text}"])


@FUZZ
@given(st.text(max_size=120))
def test_any_override_string_is_a_config_error_or_valid(override: str) -> None:
    _validated([override])


_CSV_LINES = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda d, v: f"{d},{v}",
            st.one_of(st.dates().map(str), st.text(max_size=10)),
            st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=6)),
        ),
    ),
    max_size=12,
)


@FUZZ
@given(st.one_of(st.binary(max_size=300), _CSV_LINES.map(lambda lines: "\n".join(["Date,Close", *lines]).encode())))
def test_any_bytes_as_a_price_file_are_a_data_error_or_a_series(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prices.csv"
        path.write_bytes(content)
        series = _one_line_or(DataError, lambda: read_series(read_table(path)))
    if series is not None:
        # what is read is usable as it stands: dates in order, once each, and finite positive prices
        values = series.values
        assert isinstance(values.index, pd.DatetimeIndex)
        assert values.index.is_monotonic_increasing and values.index.is_unique
        assert np.isfinite(values.to_numpy()).all() and (values.to_numpy() > 0).all()
