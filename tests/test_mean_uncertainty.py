"""Uncertain means (``model.mean_uncertainty``): each path lives with its own draw of the series' means.

References: the sampling variance of a mean of ``N`` serially uncorrelated
returns is ``sigma^2 / N`` (so its annualised standard error is the
annualised volatility over the square root of the years of data); the
sample variance of ``n`` normal draws has standard error
``sigma^2 sqrt(2 / (n - 1))``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.errors import ModelError
from mcalloc.models.joint import JointModel
from mcalloc.models.validation import CalibrationSettings, calibration_table
from mcalloc.pipeline import build_model, run_scenario

from .conftest import DEFAULT_CONFIG, ROOT
from .test_dependence_models import simulated_market

YEARS = 18.3
"""About the span of the default's calibration data, 2001-09 to 2019-12."""

SMALL = ["simulation.n_paths=400", "simulation.chunk_size=100", "simulation.horizon_years=2", "output.report=false"]
UNCERTAIN = [f"model.mean_uncertainty={{years: {YEARS}}}"]
FIT_ETFS = ROOT / "configs" / "examples" / "fit_etfs.yaml"


def _model(*overrides: str) -> JointModel:
    """The default model, its means known unless ``overrides`` say otherwise."""
    model, _ = build_model(load_scenario(DEFAULT_CONFIG, ["model.mean_uncertainty=null", *overrides]))
    return model


def test_standard_error_of_a_mean_is_volatility_over_root_years() -> None:
    model = _model(*UNCERTAIN)
    steps = model.steps_per_year
    covariance = model.drift_covariance()
    volatility = np.sqrt(np.diag(model.long_run_covariance()) * steps) / 100.0
    # sigma_ann / sqrt(years), exactly (to rounding): N = years x steps returns, each of variance sigma_ann^2 / steps
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)) * steps, volatility / math.sqrt(YEARS), rtol=1e-12)
    # the offsets co-move as the returns do: their correlation is the returns' long-run correlation
    scale = np.sqrt(np.diag(covariance))
    long_run = model.long_run_covariance()
    np.testing.assert_allclose(
        covariance / np.outer(scale, scale), long_run / np.outer(*[np.sqrt(np.diag(long_run))] * 2), atol=1e-12
    )


def test_drawn_offsets_have_the_sampling_covariance() -> None:
    model = _model(*UNCERTAIN)
    n = 200_000
    drift = model.draw_drift(np.random.default_rng(5), n)
    expected = model.drift_covariance()
    sample = np.cov(drift, rowvar=False)
    # each variance within 5 standard errors, sigma^2 sqrt(2 / (n - 1)); the means within 5 of theirs
    np.testing.assert_array_less(np.abs(np.diag(sample) - np.diag(expected)), 5 * np.diag(expected) * math.sqrt(2 / n))
    np.testing.assert_array_less(np.abs(drift.mean(axis=0)), 5 * np.sqrt(np.diag(expected) / n))
    # correlations within 0.01 (their standard error is below 0.002 at this n)
    scale = np.sqrt(np.diag(sample))
    reference = np.sqrt(np.diag(expected))
    np.testing.assert_allclose(sample / np.outer(scale, scale), expected / np.outer(reference, reference), atol=0.01)


@pytest.mark.parametrize("compiled", [True, False])
def test_offsets_are_added_to_the_same_shocks(compiled: bool) -> None:
    known = _model()
    uncertain = _model(*UNCERTAIN)
    n_paths, n_steps = 300, 42
    state = uncertain.initial_state(n_paths, np.random.default_rng(1))
    known_state = known.initial_state(n_paths)
    assert state.drift is not None and known_state.drift is None
    drift = state.drift.copy()
    # two blocks: the offsets stay with their paths from one block to the next
    for seed in (2, 3):
        moved = uncertain.simulate_block(np.random.default_rng(seed), state, n_steps, compiled=compiled).copy()
        plain = known.simulate_block(np.random.default_rng(seed), known_state, n_steps, compiled=compiled)
        np.testing.assert_allclose(moved - drift[:, None, :], plain, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(state.drift, drift)


def test_known_means_draw_nothing() -> None:
    model = _model()
    rng = np.random.default_rng(9)
    assert model.initial_state(10, rng).drift is None
    assert rng.random() == np.random.default_rng(9).random()


def test_uncertain_means_need_a_stream() -> None:
    with pytest.raises(ValueError, match="generator"):
        _model(*UNCERTAIN).initial_state(10)


def test_infinite_long_run_variance_is_refused() -> None:
    model = _model()
    market = model.marginals[0]
    explosive = replace(market, params={**market.params, "beta": 0.99, "alpha": 0.05})
    marginals = (explosive, *model.marginals[1:])
    with pytest.raises(ModelError, match=r"model\.mean_uncertainty: sp500's long-run variance is infinite"):
        JointModel(marginals, model.dependence, factor=model.factor, mean_years=YEARS)


def test_the_calibration_report_draws_the_same_shocks_with_the_means_uncertain() -> None:
    known, returns = simulated_market(4)
    uncertain = replace(known, mean_years=6.0)
    settings = CalibrationSettings(n_paths=200, window_years=6, seed=4)
    tables = [
        calibration_table(m, returns, settings).set_index(["window", "statistic", "series"]) for m in (known, uncertain)
    ]
    columns = ["sim_p05", "sim_p50", "sim_p95"]
    # a constant offset per path leaves every window's volatility and correlations as they were, to rounding
    for statistic in ("vol_ann", "corr_daily", "corr_high_vol"):
        rows = tables[0].xs(statistic, level="statistic").index
        first = tables[0].xs(statistic, level="statistic").loc[rows, columns].to_numpy(dtype=float)
        second = tables[1].xs(statistic, level="statistic").loc[rows, columns].to_numpy(dtype=float)
        np.testing.assert_allclose(second, first, rtol=1e-9)
    # and spreads the windows' cumulative returns
    spread = [
        t.xs("cum_return", level="statistic")["sim_p95"] - t.xs("cum_return", level="statistic")["sim_p05"]
        for t in tables
    ]
    assert (spread[1] > spread[0]).all()


def test_run_is_the_same_on_one_and_two_workers_and_only_spreads_the_paths(tmp_path: Path) -> None:
    outputs = {}
    for label, extra in (("known", ["model.mean_uncertainty=null"]), ("jobs1", UNCERTAIN), ("jobs2", UNCERTAIN)):
        jobs = 2 if label == "jobs2" else 1
        scenario = load_scenario(DEFAULT_CONFIG, [*SMALL, *extra, f"simulation.n_jobs={jobs}"])
        outputs[label] = run_scenario(scenario, out=tmp_path / label).folder
    assert (outputs["jobs1"] / "metrics.csv").read_bytes() == (outputs["jobs2"] / "metrics.csv").read_bytes()
    known = pd.read_csv(outputs["known"] / "metrics.csv").set_index("portfolio")
    uncertain = pd.read_csv(outputs["jobs1"] / "metrics.csv").set_index("portfolio")
    # the same shocks, each path's means moved: the CAGRs spread, the volatility barely moves
    spread = uncertain["cagr_p95"] - uncertain["cagr_p05"]
    assert (spread > known["cagr_p95"] - known["cagr_p05"]).all()
    np.testing.assert_allclose(uncertain["vol_ann"], known["vol_ann"], rtol=0.02)
    models = pd.read_csv(outputs["jobs1"] / "models.csv")
    # sigma_ann / sqrt(years), to the CSV's precision
    np.testing.assert_allclose(models["mean_se_ann"], models["vol_ann_total"] / math.sqrt(YEARS), rtol=1e-9)
    assert pd.read_csv(outputs["known"] / "models.csv")["mean_se_ann"].isna().all()
    written = yaml.safe_load((outputs["jobs1"] / "config.yaml").read_text(encoding="utf-8"))
    assert written["model"]["mean_uncertainty"] == {"years": YEARS}


def test_calibrate_writes_the_fitted_span(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "calibrated.yaml"
    overrides = ["--set", "model.mean_uncertainty={years: data}", "--set", "data.start=2015-01-01"]
    assert main(["calibrate", str(FIT_ETFS), *overrides, "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    years = written["model"]["mean_uncertainty"]["years"]
    # the returns run from the first trading day of 2015 to 2019-12-31: five years of evidence, to a few days
    assert years == pytest.approx(5.0, abs=0.02)
    manifest_free = load_scenario(out, [])
    assert manifest_free.model.mean_uncertainty is not None
    assert manifest_free.model.mean_uncertainty.years == years
    assert json.dumps(written["model"]["mean_uncertainty"]) == json.dumps({"years": years})
