"""Calibration statistics against loops, pandas, hand computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mcalloc.metrics.calibration import (
    CalibrationRow,
    christoffersen_independence,
    compare_window,
    kupiec_test,
    nonoverlapping_windows,
    percentile_of,
    summarise_rows,
    var_exceedances,
    window_statistics,
)

NAMES = ["spx", "rut", "agg"]


def _chi2_1_sf(statistic: float) -> float:
    # survival function of chi-squared with 1 df in closed form: P(Z^2 > s) = erfc(sqrt(s / 2))
    return math.erfc(math.sqrt(statistic / 2.0))


def _loop_statistics(
    returns: np.ndarray, names: list[str], per_year: int, per_month: int, per_quarter: int
) -> dict[str, np.ndarray]:
    """The definitions written out one path and one series at a time with pandas and np.corrcoef."""
    n_paths, n_steps, n_series = returns.shape
    pairs = [(i, j) for i in range(n_series) for j in range(i + 1, n_series)]
    n_months, n_quarters = n_steps // per_month, n_steps // per_quarter
    n_selected = max(math.ceil(n_quarters / 4), 1)
    out: dict[str, list[float]] = {}

    def put(key: str, value: float) -> None:
        out.setdefault(key, []).append(float(value))

    for path in range(n_paths):
        frame = pd.DataFrame(returns[path], columns=names)
        # every run of per_month days, less per_month times the daily mean (Lo and MacKinlay 1988)
        monthly = frame.rolling(per_month).sum().dropna() - per_month * frame.mean()
        divisor = (n_steps - per_month + 1) * (1.0 - per_month / n_steps)
        quarters = [frame.iloc[q * per_quarter : (q + 1) * per_quarter] for q in range(n_quarters)]
        quarter_vol = [float(block.std(ddof=1).mean()) for block in quarters]
        order = np.argsort(quarter_vol, kind="stable")
        high = pd.concat([quarters[q] for q in order[-n_selected:]])
        low = pd.concat([quarters[q] for q in order[:n_selected]])
        for name in names:
            put(f"vol_ann:{name}", frame[name].std(ddof=1) * math.sqrt(per_year))
        for name in names:
            variance = float((monthly[name] ** 2).sum()) / divisor if n_months >= 2 else math.nan
            put(f"vol_ann_monthly:{name}", math.sqrt(variance * per_year / per_month))
        for i, j in pairs:
            put(f"corr_daily:{names[i]}|{names[j]}", np.corrcoef(frame.iloc[:, i], frame.iloc[:, j])[0, 1])
        for i, j in pairs:
            a, b = monthly.iloc[:, i], monthly.iloc[:, j]
            put(f"corr_monthly:{names[i]}|{names[j]}", float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum())))
        for i, j in pairs:
            put(f"corr_high_vol:{names[i]}|{names[j]}", np.corrcoef(high.iloc[:, i], high.iloc[:, j])[0, 1])
        for i, j in pairs:
            put(f"corr_low_vol:{names[i]}|{names[j]}", np.corrcoef(low.iloc[:, i], low.iloc[:, j])[0, 1])
        for name in names:
            wealth = pd.concat([pd.Series([1.0]), np.exp(frame[name].cumsum())], ignore_index=True)
            put(f"max_drawdown:{name}", (1.0 - wealth / wealth.cummax()).max())
        for name in names:
            put(f"cum_return:{name}", math.exp(frame[name].sum()) - 1.0)
    return {key: np.array(values) for key, values in out.items()}


def test_window_statistics_match_explicit_loops() -> None:
    # partial trailing month (137 = 13 * 10 + 7) and quarter (137 = 8 * 16 + 9); 8 quarters -> 2 per regime
    returns = np.random.default_rng(5).normal(0.0005, 0.01, size=(4, 137, 3))
    returns[:, 40:80, :] *= 3.0  # a calm/turbulent contrast so the regimes differ
    fast = window_statistics(returns, NAMES, steps_per_year=250, steps_per_month=10, steps_per_quarter=16)
    slow = _loop_statistics(returns, NAMES, 250, 10, 16)
    assert list(fast) == list(slow)
    for key, expected in slow.items():
        assert fast[key].shape == (4,)
        # same definitions, different summation order: float64 rounding only
        np.testing.assert_allclose(fast[key], expected, rtol=1e-10, atol=1e-12, err_msg=key)


def test_window_statistics_default_lengths_and_key_order() -> None:
    returns = np.random.default_rng(6).normal(0.0, 0.01, size=(2, 1512, 2))
    stats = window_statistics(returns, ["a", "b"])
    assert list(stats) == [
        "vol_ann:a",
        "vol_ann:b",
        "vol_ann_monthly:a",
        "vol_ann_monthly:b",
        "corr_daily:a|b",
        "corr_monthly:a|b",
        "corr_high_vol:a|b",
        "corr_low_vol:a|b",
        "max_drawdown:a",
        "max_drawdown:b",
        "cum_return:a",
        "cum_return:b",
    ]
    slow = _loop_statistics(returns, ["a", "b"], 252, 21, 63)
    for key, expected in slow.items():
        np.testing.assert_allclose(stats[key], expected, rtol=1e-10, atol=1e-12, err_msg=key)


def test_monthly_data_have_no_repeated_monthly_statistics() -> None:
    # with a month of one step the overlapping monthly sums are the returns themselves: vol_ann_monthly and
    # corr_monthly would repeat vol_ann and corr_daily, and the joint test would count each miss twice
    returns = np.random.default_rng(8).normal(0.0, 0.04, size=(3, 72, 2))
    stats = window_statistics(returns, ["a", "b"], steps_per_year=12, steps_per_month=1, steps_per_quarter=3)
    assert not any(key.startswith(("vol_ann_monthly", "corr_monthly")) for key in stats)
    # what is left still agrees with the loops: the standard deviation of monthly returns times sqrt(12)
    np.testing.assert_allclose(stats["vol_ann:a"], returns[:, :, 0].std(axis=1, ddof=1) * math.sqrt(12), rtol=1e-12)
    slow = _loop_statistics(returns, ["a", "b"], 12, 1, 3)
    for key, values in stats.items():
        np.testing.assert_allclose(values, slow[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_one_path_equals_identical_repeated_paths() -> None:
    window = np.random.default_rng(7).standard_t(5, size=(1, 300, 3)) * 0.01
    single = window_statistics(window, NAMES)
    repeated = window_statistics(np.repeat(window, 5, axis=0), NAMES)
    for key, value in single.items():
        np.testing.assert_allclose(repeated[key], np.full(5, value[0]), rtol=1e-12, atol=0.0, err_msg=key)


def test_daily_correlation_recovers_true_value() -> None:
    rho, n_paths, n_steps = 0.6, 400, 252
    covariance = 1e-4 * np.array([[1.0, rho], [rho, 1.0]])
    returns = np.random.default_rng(8).multivariate_normal([0.0, 0.0], covariance, size=(n_paths, n_steps))
    correlation = window_statistics(returns, ["x", "y"])["corr_daily:x|y"]
    standard_error = correlation.std(ddof=1) / math.sqrt(n_paths)
    # the sample correlation's bias, about rho (1 - rho^2) / (2 n) = 0.0008, is well inside 3 standard errors (~0.006)
    assert correlation.mean() == pytest.approx(rho, abs=3 * standard_error)


def test_regime_correlations_separate_high_and_low_volatility_quarters() -> None:
    rng = np.random.default_rng(9)
    n_paths, per_quarter, n_quarters = 200, 63, 8
    regimes = {True: (0.02, 0.9), False: (0.005, 0.3)}  # high vol: sd 2%, corr 0.9; low vol: sd 0.5%, corr 0.3
    returns = np.empty((n_paths, n_quarters * per_quarter, 2))
    for path in range(n_paths):
        # whole quarters are either high or low vol: two high, six low, in random order
        for quarter, is_high in enumerate(rng.permutation([True] * 2 + [False] * 6)):
            sd, rho = regimes[bool(is_high)]
            covariance = sd**2 * np.array([[1.0, rho], [rho, 1.0]])
            returns[path, quarter * per_quarter : (quarter + 1) * per_quarter] = rng.multivariate_normal(
                [0.0, 0.0], covariance, size=per_quarter
            )
    stats = window_statistics(returns, ["x", "y"])
    high, low = stats["corr_high_vol:x|y"], stats["corr_low_vol:x|y"]
    assert np.all(high > low + 0.2)
    # the top quartile (2 of 8 quarters) is exactly the two high-vol quarters, so it estimates 0.9 without
    # selection; the sample-correlation bias at 126 days, rho (1 - rho^2) / (2 n) = 0.0007, is below one
    # standard error (~0.0012)
    assert high.mean() == pytest.approx(0.9, abs=3 * high.std(ddof=1) / math.sqrt(n_paths))
    # the bottom quartile picks the 2 calmest of 6 low-vol quarters; calm quarters tend to be those where the
    # common factor was small, so this selection pulls the estimate below 0.3 rather than above it
    assert 0.15 < low.mean() < 0.3 + 3 * low.std(ddof=1) / math.sqrt(n_paths)


def test_max_drawdown_and_cum_return_of_hand_sequences() -> None:
    # wealth 1 -> 1.2 -> 0.9 -> 1.5 -> 1.05 -> 1.2: falls 1.2 -> 0.9 (25%) and 1.5 -> 1.05 (30%); ends 20% up
    wealth = np.array([1.0, 1.2, 0.9, 1.5, 1.05, 1.2])
    # wealth 1 -> 0.8 -> 0.9: the starting 1 is the peak, so the drawdown is 20%; ends 10% down
    other = np.array([1.0, 0.8, 0.9, 0.9, 0.9, 0.9])
    returns = np.stack([np.diff(np.log(wealth)), np.diff(np.log(other))], axis=1)[None]
    stats = window_statistics(returns, ["up", "down"], steps_per_month=2, steps_per_quarter=2)
    assert stats["max_drawdown:up"][0] == pytest.approx(0.30, abs=1e-12)
    assert stats["max_drawdown:down"][0] == pytest.approx(0.20, abs=1e-12)
    assert stats["cum_return:up"][0] == pytest.approx(0.20, abs=1e-12)
    assert stats["cum_return:down"][0] == pytest.approx(-0.10, abs=1e-12)


def test_rising_wealth_has_no_drawdown() -> None:
    stats = window_statistics(np.full((1, 30, 1), 0.001), ["flat"])
    assert stats["max_drawdown:flat"][0] == 0.0


def test_too_short_windows_give_nan_not_warnings() -> None:
    # 30 days: one month (no monthly std), no full quarter; constant series: zero variance
    returns = np.random.default_rng(10).normal(0.0, 0.01, size=(3, 30, 2))
    returns[:, :, 1] = 0.001  # not exactly representable: the mean carries rounding noise
    stats = window_statistics(returns, ["a", "b"])
    for key in ("vol_ann_monthly:a", "corr_monthly:a|b", "corr_high_vol:a|b", "corr_low_vol:a|b", "corr_daily:a|b"):
        assert np.isnan(stats[key]).all(), key
    assert np.isfinite(stats["vol_ann:a"]).all()
    assert (stats["vol_ann:b"] == 0.0).all()


def test_window_statistics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unique names"):
        window_statistics(np.zeros((1, 10, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="n_paths, n_steps, n_series"):
        window_statistics(np.zeros((10, 2)), ["a", "b"])


def test_percentile_of_hand_cases() -> None:
    sample = np.array([1.0, 2.0, 3.0, 4.0])
    assert percentile_of(2.5, sample) == 50.0  # 2 of 4 below
    assert percentile_of(2.0, sample) == 37.5  # (1 below + 0.5 * 1 tie) / 4
    assert percentile_of(2.0, np.array([1.0, 2.0, 2.0, 3.0])) == 50.0  # (1 + 0.5 * 2) / 4
    assert percentile_of(0.0, sample) == 0.0
    assert percentile_of(9.0, sample) == 100.0
    assert percentile_of(2.0, np.array([1.0, np.nan, 3.0])) == 50.0  # NaN ignored: 1 of 2 below
    assert math.isnan(percentile_of(math.nan, sample))
    assert math.isnan(percentile_of(1.0, np.array([np.nan])))


def test_kupiec_against_hand_computation() -> None:
    # n = 250, x = 5, p = 0.01, with math.log:
    #   ln L0 = 245 ln 0.99 + 5 ln 0.01 = -25.48818;  ln L1 = 245 ln 0.98 + 5 ln 0.02 = -24.50978
    #   LR = -2 ln L0 + 2 ln L1 = 1.95681;  p = erfc(sqrt(LR / 2)) = 0.16185
    assert kupiec_test(5, 250, 0.01) == pytest.approx(0.16185, abs=5e-5)
    assert kupiec_test(5, 250, 0.01) == pytest.approx(_chi2_1_sf(1.956809788), rel=1e-8)
    # x = 0: LR = -2 * 250 * ln 0.99 = 5.02517, p = 0.02498 (0 ln 0 = 0)
    assert kupiec_test(0, 250, 0.01) == pytest.approx(0.02498, abs=5e-5)
    assert kupiec_test(0, 250, 0.01) == pytest.approx(_chi2_1_sf(-2 * 250 * math.log(0.99)), rel=1e-10)
    # x = n: LR = -2 * n * ln p
    assert kupiec_test(10, 10, 0.5) == pytest.approx(_chi2_1_sf(-2 * 10 * math.log(0.5)), rel=1e-10)
    # x = n p: observed rate equals the null, LR = 0
    assert kupiec_test(5, 500, 0.01) == pytest.approx(1.0, abs=1e-9)


def test_kupiec_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        kupiec_test(11, 10, 0.01)
    with pytest.raises(ValueError):
        kupiec_test(1, 10, 0.0)


def test_christoffersen_against_hand_computation() -> None:
    hits = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0])
    # transitions: n00 = 5, n01 = 2, n10 = 2, n11 = 3; pi0 = 2/7, pi1 = 3/5, pi = 5/12. With math.log:
    #   ln L(pi) = 7 ln(7/12) + 5 ln(5/12) = -8.15032
    #   ln L(pi0, pi1) = 5 ln(5/7) + 2 ln(2/7) + 2 ln(2/5) + 3 ln(3/5) = -7.55295
    #   LR = 2 (-7.55295 + 8.15032) = 1.19475;  p = erfc(sqrt(LR / 2)) = 0.27437
    assert christoffersen_independence(hits) == pytest.approx(0.27437, abs=5e-5)
    assert christoffersen_independence(hits.astype(bool)) == pytest.approx(_chi2_1_sf(1.19474747), rel=1e-7)


def test_christoffersen_edge_cases_and_clustering() -> None:
    assert christoffersen_independence(np.zeros(50, dtype=bool)) == 1.0
    # 0 0 1 1 0 0 0 1 0 0: pi0 = 2/6, pi1 = 1/3 = pi, so LR = 0
    assert christoffersen_independence(np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])) == pytest.approx(1.0)
    # a single hit on the last day: no day follows a hit (n10 = n11 = 0), which must not break the test
    # transitions: n00 = 18, n01 = 1, so pi0 = pi = 1/19 and LR = 0 exactly: p = 1
    last = np.zeros(20, dtype=bool)
    last[-1] = True
    assert christoffersen_independence(last) == pytest.approx(1.0, abs=1e-12)
    # ten runs of five consecutive hits in 1000 days: n11 = 40 where independence predicts about 2.5
    clustered = np.zeros(1000, dtype=bool)
    for start in range(50, 1000, 100):
        clustered[start : start + 5] = True
    assert christoffersen_independence(clustered) < 1e-6
    with pytest.raises(ValueError):
        christoffersen_independence(np.array([0, 2, 1]))


def test_var_exceedances() -> None:
    returns = np.array([[-0.05, -0.02], [0.01, -0.031]])
    var = np.array([[0.03, 0.03], [0.03, 0.03]])
    np.testing.assert_array_equal(var_exceedances(returns, var), [[True, False], [False, True]])
    assert var_exceedances(np.array(-0.03), np.array(0.03)).item() is False  # at the VaR is not a hit
    with pytest.raises(ValueError):
        var_exceedances(np.zeros(3), np.zeros(4))


def test_nonoverlapping_windows_end_at_the_last_observation() -> None:
    assert nonoverlapping_windows(10, 3) == [(1, 4), (4, 7), (7, 10)]
    assert nonoverlapping_windows(6, 3) == [(0, 3), (3, 6)]
    assert nonoverlapping_windows(2, 3) == []


def test_compare_window_places_data_among_paths_of_the_same_process() -> None:
    rng = np.random.default_rng(12)
    covariance = 1e-4 * np.array([[1.0, 0.5], [0.5, 1.5]])
    simulated = rng.multivariate_normal([0.0003, 0.0002], covariance, size=(300, 252))
    data = simulated[17].copy()  # the data window is one of the simulated paths, so never the extreme by mid-rank
    rows = compare_window(data, simulated, ["spx", "agg"], "2001-01-02..2001-12-31")
    expected = window_statistics(data[None], ["spx", "agg"])
    among = window_statistics(simulated, ["spx", "agg"])
    assert [f"{row.statistic}:{row.series}" for row in rows] == list(expected)
    for row in rows:
        key = f"{row.statistic}:{row.series}"
        values = among[key][~np.isnan(among[key])]
        assert values.size > 250, key
        assert row.window == "2001-01-02..2001-12-31"
        assert row.data == expected[key][0] == among[key][17]
        # the band is the simulated values' 5th, 50th and 95th percentiles (linear interpolation), and the
        # data's place among them its mid-rank: 100 (#below + #equal / 2) / n
        np.testing.assert_array_equal([row.sim_p05, row.sim_p50, row.sim_p95], np.percentile(values, [5, 50, 95]))
        below, equal = np.sum(values < row.data), np.sum(values == row.data)
        assert equal >= 1
        assert row.percentile == pytest.approx(100.0 * (below + 0.5 * equal) / values.size, abs=1e-12)
        assert row.inside_90 == (row.sim_p05 <= row.data <= row.sim_p95)
    # a data window far outside the simulated range lands at the edge and outside the band
    rows = compare_window(data * 5.0, simulated, ["spx", "agg"], "")
    vol = next(row for row in rows if row.statistic == "vol_ann" and row.series == "spx")
    assert vol.percentile == 100.0
    assert not vol.inside_90


def test_rows_to_records_and_frame() -> None:
    row = CalibrationRow("corr_daily", "a|b", "", 0.5, 0.1, 0.4, 0.7, 62.5, True)
    blank = CalibrationRow("corr_monthly", "a|b", "w", math.nan, math.nan, math.nan, math.nan, math.nan, False)
    assert row.record()["percentile"] == 62.5
    assert blank.record()["data"] is None
    frame = summarise_rows([row, blank])
    assert list(frame.columns) == [
        "statistic",
        "series",
        "window",
        "data",
        "sim_p05",
        "sim_p50",
        "sim_p95",
        "percentile",
        "inside_90",
    ]
    assert frame["inside_90"].dtype == bool
    assert frame.loc[0, "sim_p50"] == 0.4
    assert np.isnan(frame.loc[1, "data"])
    assert list(summarise_rows([]).columns) == list(frame.columns)


def test_monthly_variance_from_overlapping_months_is_unbiased_for_iid_returns() -> None:
    """Lo and MacKinlay (1988, eq. 12-13): with their divisor (nq - q + 1)(1 - q / nq), the variance of
    overlapping q-day returns is unbiased under i.i.d. returns; so is the monthly covariance. Here
    sigma = 1% a day, q = 21, 126 days (6 months, the hardest case: 106 overlapping months, 5 degrees of
    freedom short of independent ones). The mean over 20,000 windows is within 4 standard errors."""
    rng = np.random.default_rng(12)
    n_paths, n_steps, q, sigma, rho = 20_000, 126, 21, 0.01, 0.6
    shocks = rng.standard_normal((n_paths, n_steps, 2))
    returns = sigma * np.stack([shocks[..., 0], rho * shocks[..., 0] + math.sqrt(1 - rho**2) * shocks[..., 1]], -1)
    stats = window_statistics(returns + 0.0004, ["a", "b"], steps_per_year=252, steps_per_month=q)
    variance = stats["vol_ann_monthly:a"] ** 2 / 12.0  # back to one month: (steps_per_year / q) = 12 months a year
    truth = q * sigma**2
    error = variance.std(ddof=1) / math.sqrt(n_paths)
    assert abs(variance.mean() - truth) < 4 * error, (variance.mean(), truth, error)
    # the naive divisor (the number of overlapping months) is biased low by about q / n_steps, 17% here
    naive = variance * (n_steps - q + 1) * (1 - q / n_steps) / (n_steps - q + 1)
    assert truth - naive.mean() > 20 * error
    # over six years the correlation of overlapping months is close to the daily one, as it is for i.i.d.
    # returns; a sample correlation's bias, about rho (1 - rho^2) / (2 n), is under 0.005 at n >= 50
    six_years = returns[: n_paths // 12 * 12].reshape(n_paths // 12, n_steps * 12, 2)
    long = window_statistics(six_years, ["a", "b"], steps_per_month=q)
    assert abs(long["corr_monthly:a|b"].mean() - rho) < 0.01
