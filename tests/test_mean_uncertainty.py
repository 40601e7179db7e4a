"""Uncertain means (``model.mean_uncertainty``): each path lives with its own draw of the series' means.

References: the sampling variance of a mean of ``N`` returns is the long-run
variance (the spectral density at frequency 0) over ``N``; for an AR(1) with
coefficient ``phi`` and unit innovations it is ``1 / (1 - phi)^2`` (Hamilton
1994, eq. 7.2.x). Newey and West (1987) estimate it with Bartlett weights
``1 - l / (L + 1)``, ``L = floor(4 (n / 100)^(2/9))`` (Newey and West 1994).
The sample variance of ``n`` normal draws has standard error
``sigma^2 sqrt(2 / (n - 1))``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from mcalloc.backtest.filtering import filter_states
from mcalloc.backtest.forecasts import _predict
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.config.schema import ModelConfig
from mcalloc.errors import ModelError
from mcalloc.models.joint import JointModel
from mcalloc.models.joint_fit import fit_joint_model, newey_west_covariance
from mcalloc.models.validation import CalibrationSettings, calibration_table
from mcalloc.pipeline import build_model, run_scenario
from mcalloc.portfolio.costs import FeeModel
from mcalloc.portfolio.schedule import Schedule
from mcalloc.simulation.paths import SimulationPlan, drift_generator, simulate_chunk

from .conftest import DEFAULT_CONFIG, ROOT, write_default_variant
from .test_dependence_models import FACTOR_FHS, market_data, simulated_market

SMALL = ["simulation.n_paths=400", "simulation.chunk_size=100", "simulation.horizon_years=2", "output.report=false"]
KNOWN = ["model.mean_uncertainty=null"]
NO_DATA = ["model.mean_uncertainty.series=null", "model.mean_uncertainty.covariance=null"]  # the model's own stands in
FIT_ETFS = ROOT / "configs" / "examples" / "fit_etfs.yaml"


def _model(*overrides: str) -> JointModel:
    """The default model (its means uncertain, as configured) with ``overrides``."""
    model, _ = build_model(load_scenario(DEFAULT_CONFIG, list(overrides)))
    return model


def _default_uncertainty() -> tuple[float, np.ndarray]:
    section = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["model"]["mean_uncertainty"]
    return float(section["years"]), np.array(section["covariance"], dtype=float)


# --- the long-run covariance the sampling error is measured with ------------------------------------------


def test_newey_west_recovers_an_ar1_long_run_variance() -> None:
    phi, n = 0.3, 200_000
    rng = np.random.default_rng(3)
    shocks = rng.standard_normal(n + 100)
    series = np.empty_like(shocks)
    series[0] = shocks[0]
    for t in range(1, shocks.size):
        series[t] = phi * series[t - 1] + shocks[t]
    kept = series[100:]
    estimate = newey_west_covariance(kept[:, None])[0, 0]
    # the same estimator in statsmodels: the HAC variance of a mean (Bartlett weights, L = 21 lags by
    # Newey and West's 1994 rule) times n; they agree to rounding
    lags = int(4.0 * (n / 100.0) ** (2.0 / 9.0))
    hac = sm.OLS(kept, np.ones(n)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    assert estimate == pytest.approx(float(hac.cov_params()[0, 0]) * n, rel=1e-10)
    # what it converges to: gamma_0 + 2 sum_l (1 - l / 22) gamma_l with gamma_l = phi^l / (1 - phi^2),
    # 1.980, short of the long-run variance 1 / (1 - phi)^2 = 2.041 by Bartlett's truncation (the plain
    # variance, 1 / (1 - phi^2) = 1.10, is what ignoring the correlation gives); its sampling error is
    # about sqrt(4 L / 3 n) = 1.2%, the estimate 0.6% off: 4% tolerance (over three standard errors)
    expected = (1.0 + 2.0 * sum((1.0 - lag / (lags + 1.0)) * phi**lag for lag in range(1, lags + 1))) / (1 - phi**2)
    assert expected == pytest.approx(1.97965, rel=1e-5)
    assert estimate == pytest.approx(expected, rel=0.04)


def test_newey_west_counts_a_lead_lag_pair() -> None:
    # y follows x by a day (a market that closes before the news reaches it): no same-day covariance,
    # but their sums over long spans move together one for one
    n = 200_000
    rng = np.random.default_rng(4)
    x = rng.standard_normal(n + 1)
    y = x[:-1] + rng.standard_normal(n)
    covariance = newey_west_covariance(np.column_stack([x[1:], y]))
    lags = int(4 * (n / 100) ** (2 / 9))
    # the lag-1 cross-covariance (1) with its Bartlett weight; sampling error about 0.003
    assert covariance[0, 1] == pytest.approx(1.0 - 1.0 / (lags + 1), abs=0.015)
    assert abs(np.cov(x[1:], y)[0, 1]) < 0.015


def test_standard_error_of_a_mean_is_volatility_over_root_years() -> None:
    years, covariance = _default_uncertainty()
    model = _model()
    steps = model.steps_per_year
    # sigma_ann / sqrt(years) with sigma_ann^2 = the long-run variance per day (percent squared) x 252 / 1e4
    expected = np.sqrt(np.diag(covariance) * steps / 1e4) / math.sqrt(years)
    np.testing.assert_allclose(np.sqrt(np.diag(model.drift_covariance())) * steps, expected, rtol=1e-12)
    assert expected == pytest.approx([0.038, 0.049, 0.043], abs=0.001)  # as docs/models.md quotes them


def test_the_model_stands_in_with_its_lags_summed() -> None:
    # no covariance given: the model's own covariance of long sums. With lagged loadings a market day
    # counts once in a sum, with its loadings summed: (b0 + b1)^2, not b0^2 + b1^2 as for a single day
    # GARCH(1,1) with a finite fourth moment (beta^2 + 2 alpha beta + kurtosis alpha^2 about 0.92 with the
    # residuals' kurtosis near 6), so that sample variances of sums settle; the default's S&P 500 GJR has none
    garch = "{mu: 0.0, omega: 0.05, alpha: 0.05, gamma: 0.0, beta: 0.9}"
    overrides = [
        *(f"model.marginals.params.{name}={garch}" for name in ("sp500", "russell2000", "intl")),
        "model.factor.loadings={russell2000: [1.1, 0.4], intl: [1.0, 0.3]}",
        *NO_DATA,
        "simulation.start.kind=unconditional",
    ]
    uncertain = _model(*overrides)
    known = replace(uncertain, mean_years=None)
    n_paths, n_days = 1500, 1000
    returns = known.simulate(np.random.default_rng(8), n_paths, n_days) * 100
    sums = returns.sum(axis=1) / math.sqrt(n_days)
    simulated = np.cov(sums, rowvar=False)
    expected = uncertain.mean_sampling_covariance()
    one_day = uncertain.long_run_covariance()
    # each variance within 15% (its standard error is about 4% at 1,500 paths; GARCH's fat tails add some);
    # a single day's covariance is 25-30% lower for the lagged series and fails that
    np.testing.assert_allclose(np.diag(simulated), np.diag(expected), rtol=0.15)
    assert np.all(np.abs(np.diag(simulated)[1:] / np.diag(one_day)[1:] - 1) > 0.2)


# --- the offsets -------------------------------------------------------------------------------------------


def test_drawn_offsets_have_the_sampling_covariance() -> None:
    model = _model()
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
    uncertain = _model()
    known = replace(uncertain, mean_years=None)
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


def test_a_chunk_grows_by_its_offsets_and_nothing_else() -> None:
    # the offsets have a stream of their own: each asset's growth over the chunk differs from the known-means
    # run by exp(offset x steps) exactly (to rounding), so the shocks are the same numbers
    uncertain = _model()
    scenario = load_scenario(DEFAULT_CONFIG, ["simulation.horizon_years=2"])
    plan = SimulationPlan(
        model=uncertain,
        fees=FeeModel.of(scenario.assets, 252),
        schedule=Schedule(2, 252, "monthly"),
        weights=np.eye(3),
    )
    seed = np.random.SeedSequence(11).spawn(3)[2]
    n_paths = 200
    moved = simulate_chunk(plan, n_paths, seed).asset_growth
    plain = simulate_chunk(replace(plan, model=replace(uncertain, mean_years=None)), n_paths, seed).asset_growth
    drift = uncertain.draw_drift(drift_generator(seed), n_paths)
    np.testing.assert_allclose(np.log(moved / plain), drift * plan.schedule.n_steps, rtol=1e-9, atol=1e-12)


def test_backtest_forecasts_draw_the_same_shocks() -> None:
    fitted, returns = simulated_market(6)
    uncertain = replace(fitted, mean_years=10.0)
    values = returns.to_numpy(dtype=float)
    states = filter_states(fitted, values, 1, 40)
    days, n_draws, n_steps = np.arange(0, 30, 3), 50, 21
    plain = _predict(fitted, states, days, n_steps, n_draws, np.random.default_rng(12))
    moved = _predict(uncertain, states, days, n_steps, n_draws, np.random.default_rng(12))
    drift = uncertain.draw_drift(np.random.default_rng(12).spawn(1)[0], days.size * n_draws)
    np.testing.assert_allclose(
        moved - plain, np.broadcast_to(drift.reshape(days.size, n_draws, 1, 3), moved.shape), atol=1e-14
    )


def test_the_calibration_report_takes_the_means_as_known() -> None:
    # its windows are cut from the sample the means were averaged over: drawing the means would loosen it
    known, returns = simulated_market(4)
    settings = CalibrationSettings(n_paths=200, window_years=6, seed=4)
    first = calibration_table(known, returns, settings)
    second = calibration_table(replace(known, mean_years=6.0), returns, settings)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(("years", "warned"), [("data", False), (17.0, False), (10.0, True)])
def test_a_fit_told_a_span_far_from_its_datas_warns(years: object, warned: bool) -> None:
    _, returns = simulated_market(7)  # 4,536 business days from 2001-01-02: 17.4 years
    config = ModelConfig.model_validate({**FACTOR_FHS, "mean_uncertainty": {"years": years}})
    model = fit_joint_model(config, market_data(returns))
    assert model.mean_years == pytest.approx(17.4 if years == "data" else years, abs=0.05)
    notes = [note for note in model.warnings if "mean_uncertainty.years" in note]
    assert bool(notes) == warned, notes
    # the covariance is the data's, whatever the years
    np.testing.assert_allclose(model.mean_sampling_covariance(), newey_west_covariance(returns.to_numpy()) * 1e4)


def test_known_means_draw_nothing() -> None:
    model = _model(*KNOWN)
    rng = np.random.default_rng(9)
    assert model.initial_state(10, rng).drift is None
    assert rng.random() == np.random.default_rng(9).random()


def test_uncertain_means_need_a_stream() -> None:
    with pytest.raises(ValueError, match="generator"):
        _model().initial_state(10)


def test_an_infinite_long_run_variance_is_refused_without_the_datas_covariance() -> None:
    model = _model(*NO_DATA)
    market = model.marginals[0]
    explosive = replace(market, params={**market.params, "beta": 0.99, "alpha": 0.05})
    marginals = (explosive, *model.marginals[1:])
    with pytest.raises(ModelError, match=r"model\.mean_uncertainty: sp500's long-run variance is infinite"):
        JointModel(marginals, model.dependence, factor=model.factor, mean_years=18.0)
    # with the data's covariance the sampling error is known whatever the model's variance
    given = JointModel(
        marginals, model.dependence, factor=model.factor, mean_years=18.0, mean_covariance=_default_uncertainty()[1]
    )
    assert np.isfinite(given.drift_covariance()).all()


# --- whole runs --------------------------------------------------------------------------------------------


def test_run_is_the_same_on_one_and_two_workers_and_only_spreads_the_paths(tmp_path: Path) -> None:
    outputs = {}
    for label, extra in (("known", KNOWN), ("jobs1", []), ("jobs2", [])):
        jobs = 2 if label == "jobs2" else 1
        # ten years: the offsets' share of a CAGR's spread grows with the horizon (3.8% against 19% / sqrt(10))
        scenario = load_scenario(
            DEFAULT_CONFIG, [*SMALL, "simulation.horizon_years=10", *extra, f"simulation.n_jobs={jobs}"]
        )
        outputs[label] = run_scenario(scenario, out=tmp_path / label).folder
    for name in ("metrics.csv", "fan.csv", "diversification.csv"):
        assert (outputs["jobs1"] / name).read_bytes() == (outputs["jobs2"] / name).read_bytes(), name
    known = pd.read_csv(outputs["known"] / "metrics.csv").set_index("portfolio")
    uncertain = pd.read_csv(outputs["jobs1"] / "metrics.csv").set_index("portfolio")
    # the same shocks, each path's means moved: the CAGRs spread, the volatility barely moves
    spread = uncertain["cagr_p95"] - uncertain["cagr_p05"]
    assert (spread > known["cagr_p95"] - known["cagr_p05"]).all()
    np.testing.assert_allclose(uncertain["vol_ann"], known["vol_ann"], rtol=0.02)
    years, covariance = _default_uncertainty()
    models = pd.read_csv(outputs["jobs1"] / "models.csv")
    # sigma_ann / sqrt(years), to the CSV's precision
    expected = np.sqrt(np.diag(covariance) * 252 / 1e4) / math.sqrt(years)
    np.testing.assert_allclose(models["mean_se_ann"], expected, rtol=1e-9)
    assert pd.read_csv(outputs["known"] / "models.csv")["mean_se_ann"].isna().all()
    written = yaml.safe_load((outputs["jobs1"] / "config.yaml").read_text(encoding="utf-8"))
    assert written["model"]["mean_uncertainty"] == {
        "years": years,
        "series": ["sp500", "russell2000", "intl"],
        "covariance": covariance.tolist(),
    }


def test_the_covariance_follows_its_series_by_name(tmp_path: Path) -> None:
    # the assets listed in another order: each keeps its own sampling error, not its position's
    def reorder(data: dict[str, Any]) -> None:
        data["assets"] = data["assets"][::-1]

    config = write_default_variant(tmp_path, reorder)
    model, _ = build_model(load_scenario(config, []))
    reference = _model()
    assert model.asset_names == reference.asset_names[::-1]
    np.testing.assert_array_equal(model.drift_covariance(), reference.drift_covariance()[::-1, ::-1])


def test_calibrate_writes_the_fitted_span_and_the_datas_covariance(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "calibrated.yaml"
    overrides = ["--set", "data.start=2015-01-01"]
    assert main(["calibrate", str(FIT_ETFS), *overrides, "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text(encoding="utf-8"))["model"]["mean_uncertainty"]
    assert written["series"] == ["sp500", "russell2000", "intl"]
    # the returns run from the first trading day of 2015 to 2019-12-31: five years of evidence, to a few days
    assert written["years"] == pytest.approx(5.0, abs=0.02)
    scenario = load_scenario(FIT_ETFS, ["data.start=2015-01-01"])
    fitted, data = build_model(scenario)
    assert data is not None
    np.testing.assert_array_equal(np.array(written["covariance"]), fitted.mean_sampling_covariance())
    # the data's long-run variances: within a quarter of the plain sample variances (percent squared)
    plain = np.var(data.returns.to_numpy(), axis=0) * 1e4
    np.testing.assert_allclose(np.diag(np.array(written["covariance"])), plain, rtol=0.25)
    calibrated, _ = build_model(load_scenario(out, []))
    assert calibrated.mean_years == written["years"]
    np.testing.assert_array_equal(calibrated.drift_covariance(), fitted.drift_covariance())
