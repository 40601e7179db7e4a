"""Risk metrics against closed forms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from mcalloc.metrics import annualised_growth, cvar, value_at_risk
from mcalloc.metrics.risk import ResampledCvar, tail_risk
from mcalloc.portfolio.book_summary import BookSummary
from scipy import stats


def test_cvar_of_normal_scenarios_approaches_closed_form() -> None:
    # Closed form for L ~ N(m, s^2): CVaR_a = m + s * phi(Phi^-1(a)) / (1 - a)
    # (e.g. McNeil, Frey & Embrechts, Quantitative Risk Management, ex. 2.14).
    alpha, mean, sd, n = 0.95, 0.01, 0.2, 400_000
    losses = np.random.default_rng(11).normal(mean, sd, n)
    exact = mean + sd * stats.norm.pdf(stats.norm.ppf(alpha)) / (1 - alpha)
    # asymptotic standard error of the sample CVaR: sd((L - VaR)^+) / ((1 - a) sqrt(n))
    var = value_at_risk(losses, alpha)
    standard_error = np.std(np.maximum(losses - var, 0.0)) / ((1 - alpha) * np.sqrt(n))
    assert cvar(losses, alpha) == pytest.approx(exact, abs=4 * standard_error)


def test_cvar_is_mean_of_worst_tail_when_tail_is_whole_scenarios() -> None:
    losses = np.arange(1.0, 101.0)  # 100 scenarios; the worst 5 are 96..100
    assert cvar(losses, 0.95) == pytest.approx(98.0)
    assert value_at_risk(losses, 0.95) == 95.0


def test_cvar_is_the_rockafellar_uryasev_minimum() -> None:
    losses = np.random.default_rng(3).standard_t(4, 997)
    alpha = 0.9
    grid = np.linspace(losses.min(), losses.max(), 20001)
    objective = grid + np.maximum(losses[None, :] - grid[:, None], 0).mean(axis=1) / (1 - alpha)
    assert cvar(losses, alpha) == pytest.approx(objective.min(), abs=1e-3)
    assert cvar(losses, alpha) <= objective.min() + 1e-12


def test_tail_risk_from_one_partition_is_value_at_risk_and_cvar_level_by_level() -> None:
    # heavy tails, ties, and both levels on the same order statistic (a short sample)
    rng = np.random.default_rng(9)
    for losses in (rng.standard_t(3, (5000, 10)), np.round(rng.normal(size=20_001), 2), rng.normal(size=30)):
        levels = (0.95, 0.99, 0.9)
        found = tail_risk(losses, levels)
        assert found == [(value_at_risk(losses, a), cvar(losses, a)) for a in levels]
    assert tail_risk(np.arange(1.0, 101.0), (0.95,)) == [(95.0, 98.0)]


def test_resampled_cvar_is_cvar_of_the_gathered_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcalloc.metrics import risk

    # every resample's CVaR against cvar() of its rows copied out: heavy tails, many ties (losses
    # rounded to 0.1, with the tail's edge inside a run of equal losses), a single column, and slices
    rng = np.random.default_rng(21)
    for losses in (rng.standard_t(3, (4000, 25)), np.round(rng.normal(size=(300, 4)), 1), rng.normal(size=(9, 1))):
        tail = ResampledCvar(losses, 0.95)
        n_rows = losses.shape[0]
        for _ in range(100):
            rows = rng.integers(0, n_rows, rng.integers(1, 2 * n_rows))
            assert tail(rows) == pytest.approx(cvar(np.take(losses, rows, axis=0), 0.95), rel=1e-12)
        for rows in (slice(None), slice(0, n_rows // 2 + 1), slice(n_rows // 3, None)):
            assert tail(rows) == pytest.approx(cvar(losses[rows], 0.95), rel=1e-12)
    # a resample of only the calmest paths has its tail below the kept losses: gathered instead (when it
    # is counted against every row at all: forced here, since so small a resample is computed directly)
    monkeypatch.setattr(risk, "DIRECT_FRACTION", 0)
    losses = np.add.outer(np.arange(1000.0), np.arange(10.0) / 10)
    assert ResampledCvar(losses, 0.95)(np.array([0, 1, 1, 2])) == cvar(losses[[0, 1, 1, 2]], 0.95)
    assert ResampledCvar(losses, 0.95)(np.array([999])) == pytest.approx(999.9)
    with pytest.raises(ValueError, match="no rows"):
        ResampledCvar(losses, 0.95)(np.array([], dtype=np.intp))


def test_a_small_resample_of_many_rows_is_the_same_cvar_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # 500 of 40,000 paths (a bootstrap's 20,000 of 1,000,000, scaled down) are computed from their own losses;
    # counted against every row, as larger resamples are, they give the same CVaR to rounding
    from mcalloc.metrics import risk

    rng = np.random.default_rng(8)
    losses = rng.standard_t(4, (40_000, 10))
    samples = [rng.integers(0, losses.shape[0], 500) for _ in range(20)]
    direct = [ResampledCvar(losses, 0.95)(rows) for rows in samples]
    assert direct == [cvar(np.take(losses, rows, axis=0), 0.95) for rows in samples]
    monkeypatch.setattr(risk, "DIRECT_FRACTION", 0)
    counted = [ResampledCvar(losses, 0.95)(rows) for rows in samples]
    assert counted == pytest.approx(direct, rel=1e-12)
    # a row with a NaN loss (a depleted portfolio's 0 / 0) makes every resample that draws it NaN, either way
    losses[7, 3] = np.nan
    for fraction in (0, 8):
        monkeypatch.setattr(risk, "DIRECT_FRACTION", fraction)
        tail = ResampledCvar(losses, 0.95)
        assert math.isnan(tail(np.array([7, 9, 11]))) and math.isnan(cvar(losses[[7, 9, 11]], 0.95))
        clean = samples[0][samples[0] != 7]
        assert math.isfinite(tail(clean))
        assert tail(clean) == pytest.approx(cvar(np.take(losses, clean, axis=0), 0.95), rel=1e-12)


def test_largest_first_are_the_largest_values_in_order_whichever_way_they_are_found() -> None:
    # the sampled threshold (long arrays), the partition (short ones, NaN, and a sample unlike the
    # rest: every 64th value large, so the guessed threshold lets too few through) and ties
    from mcalloc.metrics.risk import SUBSAMPLE_STRIDE, _largest_first

    rng = np.random.default_rng(4)
    patterned = rng.normal(size=100_000)
    patterned[::SUBSAMPLE_STRIDE] += 50.0
    with_nan = rng.normal(size=50_000)
    with_nan[[3, 999]] = np.nan
    for flat in (rng.standard_t(3, 200_000), np.round(rng.normal(size=100_000), 1), rng.normal(size=500), patterned):
        for kept in (1, min(1000, flat.size), flat.size // 10, flat.size):
            order = _largest_first(flat, kept)
            assert order.size == kept and np.unique(order).size == kept
            np.testing.assert_array_equal(flat[order], np.sort(flat)[::-1][:kept])
    order = _largest_first(with_nan, 5000)
    np.testing.assert_array_equal(np.sort(order), np.sort(np.argsort(with_nan)[-5000:]))


def test_annualised_growth() -> None:
    assert annualised_growth(np.array([2.0]), 10)[0] == pytest.approx(2**0.1 - 1)


def test_metrics_table_matches_a_direct_computation_per_portfolio() -> None:
    # the table works one portfolio at a time to save memory; the numbers are the plain formulas
    from mcalloc.metrics import metrics_table
    from mcalloc.portfolio.book_summary import BookSummary

    rng = np.random.default_rng(4)
    n_paths, n_years, months = 500, 3, 36
    monthly = rng.normal(0.006, 0.045, (n_paths, months, 2))
    values = np.exp(np.cumsum(monthly, axis=1))
    year_end = values[:, 11::12, :]
    book = BookSummary(
        terminal_value=values[:, -1, :],
        max_drawdown=1.0 - (values / np.maximum.accumulate(values, axis=1)).min(axis=1),
        year_end_values=year_end,
        log_return_sum=monthly.sum(axis=1),
        log_return_sumsq=(monthly**2).sum(axis=1),
        n_steps=months * 21,
        n_blocks=months,
        period_return_sum=np.expm1(monthly).sum(axis=1),
        period_return_sumsq=(np.expm1(monthly) ** 2).sum(axis=1),
        # counts, kept in float32: their mean was taken in float32 and printed as 0.08270000219 for 0.0827
        rebalances=rng.integers(0, 40, (n_paths, 2)).astype(np.float32),
    )
    table = metrics_table(book, ["a", "b"], 100.0, n_years, inflation=0.02).set_index("portfolio")
    exact = book.rebalances.astype(np.int64).sum(axis=0) / (n_paths * n_years)
    assert table["rebalances_per_year"].tolist() == pytest.approx(exact.tolist(), rel=1e-15)
    for column, name in enumerate(["a", "b"]):
        yearly = np.diff(np.concatenate([np.ones((n_paths, 1)), year_end[:, :, column]], axis=1), axis=1)
        yearly /= np.concatenate([np.ones((n_paths, 1)), year_end[:, :-1, column]], axis=1)
        assert table.loc[name, "cvar_95_annual"] == pytest.approx(cvar(-yearly, 0.95), rel=1e-12)
        volatility = monthly[:, :, column].std(axis=1, ddof=1) * np.sqrt(12)
        assert table.loc[name, "vol_path_median"] == pytest.approx(np.median(volatility), rel=1e-9)
        # the one volatility: monthly simple returns pooled over paths and months
        pooled = np.expm1(monthly[:, :, column]).std(ddof=1) * np.sqrt(12)
        assert table.loc[name, "vol_ann"] == pytest.approx(pooled, rel=1e-9)
        cagr = values[:, -1, column] ** (1 / n_years) - 1
        assert table.loc[name, "cagr_p05"] == pytest.approx(np.percentile(cagr, 5), rel=1e-12)
        assert table.loc[name, "prob_loss"] == np.mean(values[:, -1, column] < 1.0)
        real = np.percentile(100.0 * values[:, -1, column], 50) / 1.02**n_years
        assert table.loc[name, "terminal_wealth_real_p50"] == pytest.approx(real, rel=1e-12)


def test_expected_wealth_of_a_daily_rebalanced_lognormal_mix_matches_its_closed_form() -> None:
    # i.i.d. lognormal assets, rebalanced to fixed weights every day and without fees:
    # E[V_T] = (sum_i w_i exp(mu_i + sigma_i^2 / 2)) ** T, since days are independent
    from mcalloc.models import GaussianCopula, JointModel
    from mcalloc.models.bootstrap import IidReturns
    from mcalloc.portfolio import FeeModel, Schedule
    from mcalloc.simulation import SimulationPlan, run_simulation

    mean = np.array([0.0003, 0.0004])
    covariance = np.array([[1.0e-4, 0.6e-4], [0.6e-4, 2.25e-4]])
    baseline = IidReturns(mean, covariance)
    model = JointModel((), GaussianCopula(np.eye(2)), baseline=baseline)
    weights = np.array([0.6, 0.4])
    plan = SimulationPlan(
        model=model, fees=FeeModel(np.zeros(2), 252), schedule=Schedule(1, 252, "daily"), weights=weights[None, :]
    )
    result = run_simulation(plan, 40_000, 5000, seed=3)
    terminal = result.book.terminal_value[:, 0]
    exact = float(weights @ np.exp(mean + np.diag(covariance) / 2)) ** 252
    # four standard errors of the mean over 40,000 paths
    assert terminal.mean() == pytest.approx(exact, abs=4 * terminal.std() / np.sqrt(terminal.size))


def test_drawdown_and_tail_metrics_against_slow_references() -> None:
    from mcalloc.metrics import metrics_table
    from mcalloc.portfolio.book_summary import BookSummary

    rng = np.random.default_rng(9)
    n_paths, months = 3000, 60
    monthly = rng.normal(0.005, 0.05, (n_paths, months, 1))
    values = np.exp(np.cumsum(monthly, axis=1))
    running_peak = np.maximum.accumulate(np.maximum(values, 1.0), axis=1)
    drawdown = (1.0 - values / running_peak).max(axis=1)
    book = BookSummary(
        terminal_value=values[:, -1, :],
        max_drawdown=drawdown,
        year_end_values=values[:, 11::12, :],
        log_return_sum=monthly.sum(axis=1),
        log_return_sumsq=(monthly**2).sum(axis=1),
        n_steps=months * 21,
        n_blocks=months,
    )
    row = metrics_table(book, ["a"], 1.0, 5, risk_free=0.02).iloc[0]
    ordered = np.sort(drawdown[:, 0])
    # CVaR95 of the maximum drawdown: the mean of the worst 5% (150 of 3,000 paths, whole scenarios)
    assert row["maxdd_cvar95"] == pytest.approx(ordered[-150:].mean(), rel=1e-12)
    assert row["prob_drawdown_30"] == np.mean(drawdown > 0.30)
    yearly = np.log(values[:, 11::12, 0] / np.concatenate([np.ones((n_paths, 1)), values[:, 11:-1:12, 0]], axis=1))
    excess = (yearly - np.log(1.02)).ravel()
    assert row["sharpe"] == pytest.approx(excess.mean() / excess.std(ddof=1), rel=1e-10)
    downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))
    assert row["sortino"] == pytest.approx(excess.mean() / downside, rel=1e-10)
    losses = np.sort(-np.expm1(yearly).ravel())
    assert row["cvar_99_annual"] == pytest.approx(losses[-150:].mean(), rel=1e-10)  # 1% of 15,000 years


def _year_end_book(year_end: np.ndarray) -> BookSummary:
    """A book of yearly steps (252 days, 12 months) holding only year-end values, (n_paths, n_years, n_portfolios)."""
    n_paths, n_years, n_portfolios = year_end.shape
    zeros = np.zeros((n_paths, n_portfolios))
    return BookSummary(
        terminal_value=year_end[:, -1, :].astype(np.float64),
        max_drawdown=zeros,
        year_end_values=year_end,
        log_return_sum=zeros,
        log_return_sumsq=zeros,
        n_steps=252 * n_years,
        n_blocks=12 * n_years,
    )


def test_horizons_table_reads_each_year_end() -> None:
    from mcalloc.metrics.horizons import horizons_table, paths_table

    rng = np.random.default_rng(2)
    year_end = np.exp(np.cumsum(rng.normal(0.06, 0.18, (4000, 5, 2)), axis=1))
    book = _year_end_book(year_end)
    table = horizons_table(book, ["ref", "mix"], "ref").set_index(["portfolio", "years"])
    # the same table on two threads, row for row
    pd.testing.assert_frame_equal(
        horizons_table(book, ["ref", "mix"], "ref", n_jobs=2).set_index(["portfolio", "years"]), table
    )
    assert len(table) == 10
    assert list(table.index[:3]) == [("ref", 1), ("ref", 2), ("ref", 3)]
    three = table.loc[("mix", 3)]
    assert three["prob_loss"] == np.mean(year_end[:, 2, 1] < 1.0)
    assert three["prob_below_reference"] == np.mean(year_end[:, 2, 1] < year_end[:, 2, 0] * (1 - 1e-6))
    assert three["cagr_p05"] == pytest.approx(np.percentile(year_end[:, 2, 1] ** (1 / 3) - 1, 5), rel=1e-12)
    assert table.loc[("ref", 4), "prob_below_reference"] == 0.0
    # losing over one year is likelier than over five when the drift is positive
    assert table.loc[("mix", 1), "prob_loss"] > table.loc[("mix", 5), "prob_loss"]
    parts = list(paths_table(book, ["ref", "mix"], 1000.0, 5))
    assert [len(part) for part in parts] == [4000, 4000]
    assert set(parts[1].portfolio) == {"mix"} and list(parts[1].portfolio.cat.categories) == ["ref", "mix"]
    assert parts[1].terminal_wealth.iloc[1] == pytest.approx(1000.0 * year_end[1, -1, 1])


def test_year_end_values_kept_in_float32_are_measured_in_float64() -> None:
    # books keep year-end values in float32 (seven digits); the horizons' growth rates and the yearly
    # losses are computed from the stored values in float64, so they match a float64 computation to
    # rounding (1e-12), where float32 arithmetic would be about 1e-6 off a CAGR of 5%
    from mcalloc.metrics.horizons import horizons_table
    from mcalloc.metrics.summary import annual_losses

    rng = np.random.default_rng(5)
    stored = np.exp(np.cumsum(rng.normal(0.05, 0.18, (3000, 4, 2)), axis=1)).astype(np.float32)
    exact = stored.astype(np.float64)
    book = _year_end_book(stored)
    table = horizons_table(book, ["ref", "mix"], "ref").set_index(["portfolio", "years"])
    growth = exact[:, 3, 1] ** (1 / 4) - 1
    assert table.loc[("mix", 4), "cagr_median"] == pytest.approx(np.median(growth), rel=1e-12)
    assert table.loc[("mix", 4), "cagr_p05"] == pytest.approx(np.percentile(growth, 5), rel=1e-12)
    losses = annual_losses(book, 1)
    assert losses.dtype == np.float64
    np.testing.assert_allclose(losses[:, 1:], 1.0 - exact[:, 1:, 1] / exact[:, :-1, 1], rtol=0.0, atol=1e-15)


def test_the_horizons_last_year_reads_the_horizon_at_full_precision_as_metrics_does() -> None:
    # a path a hair under its start: its float32 year end rounds to 1.0 (no loss), its float64 terminal value
    # is a loss, as metrics.csv's prob_loss counts it; the last year's row read the float32 value and so
    # disagreed with metrics.csv by that path
    from mcalloc.metrics import metrics_table
    from mcalloc.metrics.horizons import horizons_table

    rng = np.random.default_rng(8)
    exact = np.exp(np.cumsum(rng.normal(0.04, 0.15, (2000, 3, 1)), axis=1))
    exact[:7, -1, 0] = 1.0 - 1e-9
    book = _year_end_book(exact.astype(np.float32))
    book = dataclasses.replace(book, terminal_value=exact[:, -1, :].copy())
    assert np.float32(exact[0, -1, 0]) == 1.0
    table = horizons_table(book, ["mix"], None).set_index("years")
    metrics = metrics_table(book, ["mix"], 1.0, 3).iloc[0]
    assert table.loc[3, "prob_loss"] == metrics["prob_loss"] == np.mean(exact[:, -1, 0] < 1.0)
    assert table.loc[3, "cagr_median"] == metrics["cagr_median"]
    assert table.loc[3, "cagr_p05"] == metrics["cagr_p05"]
    # the years before the horizon read the stored values
    assert table.loc[2, "prob_loss"] == np.mean(exact.astype(np.float32)[:, 1, 0] < 1.0)


def test_cdar_from_the_histogram_matches_the_pooled_month_end_drawdowns() -> None:
    # one asset, 2,000 paths, 60 months of 21 days: CDaR95 = mean of the worst 5% of all
    # month-end drawdowns, computed directly from the daily values; the histogram's error is
    # at most one bin (1e-4)
    from mcalloc.metrics import metrics_table
    from mcalloc.portfolio import FixedMixBook

    rng = np.random.default_rng(12)
    growth = np.exp(rng.normal(0.0003, 0.012, (2000, 60 * 21, 1)))
    book = FixedMixBook(np.array([[1.0]]), 2000)
    for month in range(60):
        book.advance(growth[:, month * 21 : (month + 1) * 21])
        if month % 12 == 11:
            book.mark_year_end()
    values = np.cumprod(growth[:, :, 0], axis=1)
    peaks = np.maximum.accumulate(np.maximum(values, 1.0), axis=1)
    month_end = (1.0 - values / peaks)[:, 20::21].ravel()
    worst = np.sort(month_end)[-int(0.05 * month_end.size) :]
    row = metrics_table(book.summary(5), ["a"], 1.0, 5).iloc[0]
    assert row["cdar_95"] == pytest.approx(worst.mean(), abs=1.5e-4)
    assert row["cdar_95"] < row["maxdd_cvar95"]


def test_cdar_of_a_portfolio_that_never_draws_down_is_zero() -> None:
    # values that only rise: every month end is at a peak, and CDaR is 0, not half a histogram bin
    from mcalloc.metrics import metrics_table
    from mcalloc.portfolio import FixedMixBook

    book = FixedMixBook(np.array([[1.0]]), 50)
    for month in range(24):
        book.advance(np.full((50, 21, 1), 1.0001))
        if month % 12 == 11:
            book.mark_year_end()
    row = metrics_table(book.summary(2), ["a"], 1.0, 2).iloc[0]
    assert row["cdar_95"] == 0.0 and row["maxdd_p95"] == 0.0


@pytest.mark.parametrize(("losses", "n_paths"), [(0, 2), (2, 2), (30, 200), (4_321, 40_000)])
def test_prob_loss_standard_error_is_agresti_coulls_and_never_zero(losses: int, n_paths: int) -> None:
    # reference: statsmodels' Agresti-Coull interval (Agresti and Coull 1998) is q +- 1.96 se; where it
    # is clipped at 0 or 1, its other end still is. With many paths it is the plain binomial error.
    from mcalloc.metrics.summary import with_standard_errors
    from statsmodels.stats.proportion import proportion_confint

    metrics = pd.DataFrame({"portfolio": ["a"], "n_paths": [n_paths], "prob_loss": [losses / n_paths]})
    se = with_standard_errors(metrics, pd.DataFrame({"portfolio": ["a"]}))["prob_loss_se"].iloc[0]
    low, high = proportion_confint(losses, n_paths, alpha=0.05, method="agresti_coull")
    centre = (losses + 1.959963984540054**2 / 2) / (n_paths + 1.959963984540054**2)
    end = high if losses < n_paths else low
    assert se == pytest.approx(abs(end - centre) / 1.959963984540054, rel=1e-9)
    assert (
        se > 0.1
        if n_paths == 2
        else se == pytest.approx(np.sqrt(losses / n_paths * (1 - losses / n_paths) / n_paths), rel=0.02)
    )
