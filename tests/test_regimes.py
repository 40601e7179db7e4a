"""Regime-switching factor loadings: recovery on simulated data, the simulated chain, and the Swedish fit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mcalloc.config import load_scenario
from mcalloc.models.factor import FactorStructure, fit_regime_loadings
from mcalloc.pipeline import build_model, calibration_report
from mcalloc.simulation import run_simulation

from .conftest import ROOT

TRANSITION = np.array([[0.998, 0.002], [0.005, 0.995]])
LOADINGS = np.array([[0.0, -0.05], [-0.3, -0.2]])


def simulate_switching(n_obs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y_t = b(s_t)' (x_t, x_t-1) + e_t with a two-state chain, GARCH-free; returns y, regressors, regimes."""
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_obs + 1) * 0.012
    regimes = np.empty(n_obs, dtype=int)
    state = 0
    for t in range(n_obs):
        state = state if rng.random() < TRANSITION[state, state] else 1 - state
        regimes[t] = state
    regressors = np.column_stack([market[1:], market[:-1]])
    y = np.einsum("tl,tl->t", LOADINGS[regimes], regressors) + rng.standard_normal(n_obs) * 0.006
    return y, regressors, regimes


def test_switching_loadings_are_recovered_from_simulated_data() -> None:
    y, regressors, regimes = simulate_switching(6000, seed=3)
    fitted = fit_regime_loadings(y, regressors, 2, "fx")
    # each loading's standard error is about sigma_e / (sigma_x sqrt(n_regime)) = 0.5 / sqrt(n_regime), with
    # n_regime the days spent in that regime (4,519 and 1,481 here): tolerance four of them, per regime
    days_in = np.bincount(regimes, minlength=2)
    assert days_in.min() > 1000
    tolerance = 4 * 0.5 / np.sqrt(days_in)[:, None]
    assert (np.abs(fitted.loadings - LOADINGS) < tolerance).all(), (fitted.loadings, tolerance)
    # the regimes are found where they were: most days classified right
    assert np.mean((fitted.smoothed[:, 1] > 0.5) == (regimes == 1)) > 0.95
    # stays: the chain switches only a dozen times in 6000 days, so durations are known to
    # about a third; the estimate must be within a factor of 2 of 1 / (1 - p)
    for regime in range(2):
        expected = 1.0 / (1.0 - TRANSITION[regime, regime])
        estimated = 1.0 / (1.0 - fitted.transition[regime, regime])
        assert expected / 2 < estimated < expected * 2
    assert fitted.bic < fitted.constant_bic - 100


def test_constant_loadings_are_not_split_into_regimes_by_the_bic() -> None:
    rng = np.random.default_rng(4)
    market = rng.standard_normal(4001) * 0.012
    regressors = np.column_stack([market[1:], market[:-1]])
    y = regressors @ np.array([-0.1, -0.1]) + rng.standard_normal(4000) * 0.006
    fitted = fit_regime_loadings(y, regressors, 2, "fx")
    assert fitted.bic > fitted.constant_bic


def test_simulated_chain_has_the_stationary_shares_and_durations() -> None:
    structure = FactorStructure(
        market=0,
        loadings=np.zeros((2, 2)),
        switching=1,
        regime_loadings=np.array([[0.0, 0.0], [1.0, 0.0]]),
        transition=TRANSITION,
    )
    # closed forms: stationary share of regime 1 = p01 / (p01 + p10); mean stay 1 / (1 - p_ii)
    share = 0.002 / (0.002 + 0.005)
    np.testing.assert_allclose(structure.stationary(), [1 - share, share], rtol=1e-12)
    rng = np.random.default_rng(5)
    n_paths, n_days = 2000, 3000
    current = structure.initial_regime(n_paths)
    assert current is not None
    blocks = [structure.regime_path(rng.random((size + 1, n_paths)), current) for size in [1000] * 3]
    path = np.concatenate(blocks)
    assert path.shape == (n_days, n_paths)
    # the first day is drawn from the stationary shares: binomial standard error of 2000 paths
    assert path[0].mean() == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / n_paths))
    # paths are independent: the standard error of the pooled share is the spread of the paths' own shares
    per_path = path.mean(axis=0)
    assert path.mean() == pytest.approx(share, abs=4 * per_path.std(ddof=1) / math.sqrt(n_paths))
    changes = np.diff(path, axis=0) != 0
    stays_in_one = (path[:-1] == 1) & ~changes
    leaves_one = (path[:-1] == 1) & changes
    assert stays_in_one.sum() / (stays_in_one.sum() + leaves_one.sum()) == pytest.approx(0.995, abs=0.0005)


def test_regime_model_runs_identically_on_one_and_two_workers(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "configs" / "examples" / "sweden.yaml", ["simulation.horizon_years=2"])
    model, _ = build_model(scenario)
    assert model.factor is not None and model.factor.switching is not None
    from mcalloc.portfolio import FeeModel, Schedule
    from mcalloc.simulation import SimulationPlan
    from mcalloc.simulation.currency import CurrencyOverlay

    plan = SimulationPlan(
        model=model,
        fees=FeeModel(np.zeros(3), 252),
        schedule=Schedule(2, 252, "monthly"),
        weights=np.eye(3),
        currency=CurrencyOverlay.from_scenario(scenario),
    )
    one = run_simulation(plan, 400, 100, seed=3, n_jobs=1)
    two = run_simulation(plan, 400, 100, seed=3, n_jobs=2)
    np.testing.assert_array_equal(one.book.terminal_value, two.book.terminal_value)
    np.testing.assert_array_equal(one.book.max_drawdown, two.book.max_drawdown)


def test_sweden_regimes_beat_a_constant_loading_on_the_data(shared_data: Path) -> None:
    # the fitted haven regime is strongly negative, the other near zero; the BIC prefers regimes
    # by far; and the calibration report puts fewer FX statistics outside the 5..95 band
    config = ROOT / "configs" / "examples" / "sweden_fit.yaml"
    small = ["output.calibration.n_paths=400"]
    scenario = load_scenario(config, small)
    model, data = build_model(scenario)
    assert data is not None and model.factor is not None and model.factor.regime_loadings is not None
    sums = model.factor.regime_loadings.sum(axis=1)
    assert sums[0] > -0.15 and sums[1] < -0.35
    assert model.regime_statistics["regime_bic"] < model.regime_statistics["constant_loading_bic"] - 50
    # mean: sample holds for the switching series too: simulated, its mean log return is the data's
    # (USD/SEK fell 0.77% a year over 2001-2019; before the shift its simulated drift was +0.06%),
    # as for the stocks; simulated paths agree within their standard error
    names = list(model.asset_names)
    sample = data.returns.loc[model.fit_index, names].mean().to_numpy()
    np.testing.assert_allclose(model.mean_log_returns(), sample, rtol=0, atol=1e-8)  # 7e-10: lag windows a day apart
    fx = names.index("fx_usd")
    assert sample[fx] * 252 == pytest.approx(-0.0077, abs=0.0005)
    drift = model.simulate(np.random.default_rng(5), 2000, 2520)[:, :, fx].sum(axis=1) / 10
    assert abs(drift.mean() - sample[fx] * 252) < 3 * drift.std() / math.sqrt(drift.size)
    constant_scenario = load_scenario(config, [*small, "model.factor.regimes=null"])
    constant_model, _ = build_model(constant_scenario)

    def outside(scenario: object, model: object) -> int:
        report = calibration_report(scenario, model, data)  # type: ignore[arg-type]
        rows = report[report.series.str.contains("fx_usd") & report.statistic.str.startswith(("corr", "vol_ratio"))]
        return int((~rows.inside_90.astype(bool)).sum())

    assert outside(scenario, model) < outside(constant_scenario, constant_model)


def test_own_currency_view_differs_from_the_base_view_by_the_exchange_rate_alone() -> None:
    # all three funds are in USD, so on every path a SEK investor's wealth is the USD investor's
    # times the same SEK/USD change, whatever the mix and its rebalancing (trading is currency
    # neutral without costs): the ratio of the two views must be one number per path
    scenario = load_scenario(ROOT / "configs" / "examples" / "sweden.yaml", ["simulation.horizon_years=2"])
    assert scenario.currency.compare_in == "USD"
    model, _ = build_model(scenario)
    from mcalloc.portfolio import FeeModel, Schedule
    from mcalloc.simulation import SimulationPlan
    from mcalloc.simulation.currency import CurrencyOverlay

    weights = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.2, 0.2], [0.2, 0.5, 0.3]])

    def run(overlay: CurrencyOverlay | None) -> np.ndarray:
        plan = SimulationPlan(
            model=model,
            fees=FeeModel(np.array([0.001, 0.002, 0.003]), 252),
            schedule=Schedule(2, 252, "monthly"),
            weights=weights,
            currency=overlay,
        )
        return run_simulation(plan, 300, 100, seed=4, n_jobs=1).book.terminal_value

    sek = run(CurrencyOverlay.from_scenario(scenario))
    usd = run(CurrencyOverlay((None, None, None)))
    ratio = sek / usd
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 4)), rtol=1e-10)
    assert ratio.std() > 0.01  # the exchange rate does move
