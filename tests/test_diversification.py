"""The diversification-benefit table: interval coverage on a model with a known answer, and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mcalloc.config.model_schema import StartConfig
from mcalloc.metrics.diversification import (
    _wilson,
    cvar_contributions,
    diversification_table,
    risk_contributions,
    unpaired_cut,
)
from mcalloc.metrics.risk import cvar
from mcalloc.models import FittedMarginal, GaussianCopula, JointModel
from mcalloc.portfolio import FeeModel, Schedule
from mcalloc.simulation import SimulationPlan, run_simulation
from scipy import stats

GJR = {"mu": 0.03, "omega": 0.02, "alpha": 0.02, "gamma": 0.12, "beta": 0.88}


def twin_plan() -> SimulationPlan:
    """Two assets with the same model, correlated 0.6: every difference between them is zero in truth."""
    marginals = (FittedMarginal("a", "gjr_garch", "normal", "constant", GJR),) * 2
    correlation = np.array([[1.0, 0.6], [0.6, 1.0]])
    model = JointModel(marginals, GaussianCopula(correlation, marginals), StartConfig(kind="unconditional"))
    return SimulationPlan(
        model=model,
        fees=FeeModel(np.zeros(2), 252),
        schedule=Schedule(2, 252, "monthly"),
        weights=np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
    )


def twin_rows(plan: SimulationPlan, seed: int) -> pd.DataFrame:
    """Twin "b" against reference "a" on 300 paths of ``seed``, 100 resamples: the table's rows by statistic."""
    result = run_simulation(plan, 300, 100, seed=seed)
    table = diversification_table(
        result.book,
        ["a", "b", "half"],
        "a",
        2,
        seed,
        100,
        plan.weights,
        result.daily_covariance,
        ["a", "b"],
        n_boot=100,
    )
    return table[table.portfolio == "b"].set_index("statistic")


@pytest.mark.slow  # a coverage study over many seeds; `make test-all` runs it
def test_paired_intervals_cover_a_zero_difference_about_95_percent_of_seeds() -> None:
    plan = twin_plan()
    n_seeds = 100
    covered = {"cagr_median": 0, "maxdd_p95": 0, "vol_ann": 0}
    for seed in range(n_seeds):
        rows = twin_rows(plan, seed)
        for statistic in covered:
            covered[statistic] += bool(rows.loc[statistic, "ci_low"] <= 0.0 <= rows.loc[statistic, "ci_high"])
    # binomial(100, 0.95): 89..99 holds 98.7% of the mass (scipy below); a fixed set of seeds
    low, high = 89, 99
    assert stats.binom(n_seeds, 0.95).cdf(high) - stats.binom(n_seeds, 0.95).cdf(low - 1) > 0.98
    for statistic, count in covered.items():
        assert low <= count <= high, (statistic, count)


def test_paired_interval_width_matches_the_spread_over_independent_seeds() -> None:
    # the half-width of the paired interval over 1.96 (its bootstrap standard error), averaged over 40
    # independent samples, against the actual spread of the difference over those samples; that spread is
    # itself known to about 11% (1 / sqrt(2 x 39)), so allow 0.7..1.4 as for the standard errors below.
    # Over 120 seeds the ratios were 1.17 (median CAGR), 1.19 (p95 drawdown) and 1.02 (volatility): the
    # bootstrap of a quantile runs a little wide. An unpaired error (about 1.6 times wider for twins
    # correlated 0.6) or a zero width fails.
    plan = twin_plan()
    differences: dict[str, list[float]] = {"cagr_median": [], "maxdd_p95": [], "vol_ann": []}
    errors: dict[str, list[float]] = {statistic: [] for statistic in differences}
    for seed in range(40):
        rows = twin_rows(plan, seed)
        for statistic in differences:
            differences[statistic].append(rows.loc[statistic, "difference"])
            errors[statistic].append(
                (rows.loc[statistic, "ci_high"] - rows.loc[statistic, "ci_low"]) / 2 / stats.norm.ppf(0.975)
            )
    for statistic, values in differences.items():
        ratio = np.mean(errors[statistic]) / np.std(values, ddof=1)
        assert 0.7 < ratio < 1.4, (statistic, ratio)


def test_pairing_narrows_the_interval_for_portfolios_that_share_risk() -> None:
    plan = twin_plan()
    result = run_simulation(plan, 2000, 250, seed=7)
    table = diversification_table(
        result.book, ["a", "b", "half"], "a", 2, 7, 250, plan.weights, result.daily_covariance, ["a", "b"]
    )
    rows = table[(table.portfolio == "half") & (table.statistic == "vol_ann")].iloc[0]
    # half of the reference's own asset: the paired interval is far narrower than the unpaired one
    assert (rows.ci_high - rows.ci_low) < 0.5 * (rows.unpaired_ci_high - rows.unpaired_ci_low)
    assert rows.portfolio_value == pytest.approx(rows.reference_value + rows.difference)


def test_unpaired_halves_split_at_the_chunk_bound_nearest_the_middle_or_at_the_middle() -> None:
    assert unpaired_cut(4000, 1000) == 2000
    assert unpaired_cut(3000, 1000) == 1000  # a chunk bound: each half from its own chunks
    assert unpaired_cut(100_000, 8192) == 49_152
    # two chunks, the second a single path: a chunk bound would measure the reference on that one path
    assert unpaired_cut(1001, 1000) == 500
    assert unpaired_cut(20, 1000) == 10
    assert unpaired_cut(19, 1000) is None  # 9 and 10 paths: too few for a bootstrap's spread


def unpaired_twins(n_paths: int) -> pd.Series:
    """Twin "b" against reference "a" on ``n_paths`` paths in chunks of 1,000: the ``vol_ann`` row."""
    plan = twin_plan()
    result = run_simulation(plan, n_paths, 1000, seed=3)
    table = diversification_table(
        result.book, ["a", "b", "half"], "a", 2, 3, 1000, plan.weights, result.daily_covariance, ["a", "b"]
    )
    return table[(table.portfolio == "b") & (table.statistic == "vol_ann")].iloc[0]


def test_unpaired_interval_measures_both_sides_on_half_the_paths() -> None:
    row = unpaired_twins(1001)
    # twins correlated 0.6: unpaired, each side's own noise adds up, so the interval is wider than the
    # paired one (about 1.6 times, the test above) and covers the true difference, 0. Measured on the
    # last chunk's single path, the reference's bootstrap had no spread and the interval lay far from 0.
    assert row.unpaired_ci_high - row.unpaired_ci_low > 1.2 * (row.ci_high - row.ci_low)
    assert row.unpaired_ci_low <= 0.0 <= row.unpaired_ci_high
    few = unpaired_twins(12)
    assert math.isnan(few.unpaired_difference) and math.isnan(few.unpaired_ci_low)
    assert math.isfinite(few.ci_low)


def test_tables_are_the_same_on_one_thread_and_on_two(monkeypatch: pytest.MonkeyPatch) -> None:
    # each resample's statistic is computed on its own, so threads change the speed, never a number
    import threading

    from mcalloc.metrics import diversification
    from mcalloc.metrics.diversification import standard_errors

    # threads from 1,000-path resamples here (the shipped threshold is for speed), and a record of where each ran
    monkeypatch.setattr(diversification, "THREADED_RESAMPLE_PATHS", 1000)
    ran_in: set[str] = set()

    def recorded(statistic: diversification.Statistic) -> diversification.Statistic:
        def run(stats: diversification.PathStatistics, rows: diversification.Rows, column: int) -> float:
            ran_in.add(threading.current_thread().name)
            return statistic(stats, rows, column)

        return run

    statistics = {label: recorded(statistic) for label, statistic in diversification.STATISTICS.items()}
    monkeypatch.setattr(diversification, "STATISTICS", statistics)
    plan = twin_plan()
    result = run_simulation(plan, 3000, 250, seed=8)
    names = ["a", "b", "half"]

    def tables(n_jobs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        table = diversification_table(
            result.book, names, "a", 2, 8, 250, plan.weights, result.daily_covariance, ["a", "b"], n_jobs=n_jobs
        )
        return table, standard_errors(result.book, names, 2, 8, n_jobs=n_jobs)

    one = tables(1)
    assert ran_in == {threading.current_thread().name}
    two = tables(2)
    assert any(name.startswith("mcalloc-bootstrap") for name in ran_in)
    pd.testing.assert_frame_equal(one[0], two[0], check_exact=True)
    pd.testing.assert_frame_equal(one[1], two[1], check_exact=True)
    assert (one[1].drop(columns="portfolio").to_numpy() > 0).all()


def test_a_mix_level_with_the_reference_on_every_path_has_no_share_of_wealthier_paths() -> None:
    # the same mix under another name (an optimiser that chose the reference): "wealthier on 0% of paths"
    # would read "always poorer"; it is empty, and a mix that differs keeps its share
    from dataclasses import replace

    plan = replace(twin_plan(), weights=np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]]))
    result = run_simulation(plan, 200, 100, seed=3)
    table = diversification_table(
        result.book, ["a", "same", "half"], "a", 2, 3, 100, plan.weights, result.daily_covariance, ["a", "b"], n_boot=50
    )
    wealthier = table[table.statistic == "prob_wealthier"].set_index("portfolio")
    assert wealthier.loc["same", ["difference", "ci_low", "ci_high"]].isna().all()
    assert wealthier.loc["same", "method"] == "the same as the reference on every path"
    assert (
        0.2 < wealthier.loc["half", "difference"] < 0.8 and wealthier.loc["half", "method"] == "Wilson score interval"
    )


def test_wilson_interval_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81/263 -> 0.2553 to 0.3662 (4 decimals)
    low, high = _wilson(81 / 263, 263)
    assert low == pytest.approx(0.2553, abs=5e-5)
    assert high == pytest.approx(0.3662, abs=5e-5)


def test_risk_budget_closed_forms() -> None:
    # n uncorrelated assets of equal volatility, equal weights: each carries 1/n of the risk,
    # the effective number of bets is n and the diversification ratio sqrt(n)
    n = 4
    budget = risk_contributions(np.full(n, 1 / n), np.eye(n) * 0.0004)
    np.testing.assert_allclose(budget["shares"], 1 / n)
    assert budget["effective_bets"] == pytest.approx(n)
    assert budget["diversification_ratio"] == pytest.approx(math.sqrt(n))
    # Euler: shares sum to one for any weights and covariance
    rng = np.random.default_rng(1)
    factor = rng.normal(size=(3, 3))
    covariance = factor @ factor.T + np.eye(3)
    assert risk_contributions(np.array([0.5, 0.3, 0.2]), covariance)["shares"].sum() == pytest.approx(1.0)
    # one asset: one bet, ratio 1
    single = risk_contributions(np.array([1.0, 0.0, 0.0]), covariance)
    assert single["effective_bets"] == pytest.approx(1.0)
    assert single["diversification_ratio"] == pytest.approx(1.0)


def test_cvar_contributions_add_up_and_match_the_elliptical_closed_form() -> None:
    # Euler contributions add up to the CVaR itself, boundary scenario included (Tasche 1999)
    rng = np.random.default_rng(5)
    factor = rng.normal(size=(3, 3))
    covariance = (factor @ factor.T + np.eye(3)) * 1e-2
    weights = np.array([0.5, 0.3, 0.2])
    returns = rng.multivariate_normal(np.zeros(3), covariance, size=200_001)
    losses = -(returns @ weights)
    tail = np.sort(losses)[::-1]
    contributions = cvar_contributions(weights, returns, 0.95) * cvar(losses, 0.95)
    assert contributions.sum() == pytest.approx(tail[: int(0.05 * losses.size)].mean(), rel=1e-3)
    # Euler's theorem for the positively homogeneous CVaR: contribution i is w_i dCVaR/dw_i; the sample
    # CVaR is linear in the weights while the tail's scenarios stay the same, as they do for a step of
    # 1e-7 here, so central differences agree to rounding (measured 4e-10 relative)
    step = 1e-7
    gradient = np.array(
        [
            (cvar(-(returns @ (weights + step * unit)), 0.95) - cvar(-(returns @ (weights - step * unit)), 0.95))
            / (2.0 * step)
            for unit in np.eye(3)
        ]
    )
    np.testing.assert_allclose(contributions, weights * gradient, rtol=1e-6)
    # for zero-mean elliptical returns CVaR is proportional to volatility, so the CVaR shares are the
    # volatility shares w_i (C w)_i / w'Cw (closed form); sampling error of the tail means
    # over 10,000 tail scenarios is about 1% of each share, hence the 0.02 tolerance
    shares = cvar_contributions(weights, returns, 0.95)
    np.testing.assert_allclose(shares, risk_contributions(weights, covariance)["shares"], atol=0.02)


def test_cvar_shares_are_left_empty_where_the_tail_holds_no_loss_to_share() -> None:
    # a stop-55 hunt: stocks and bonds whose worst 5% of paths still gained gave shares that changed sign from
    # one mix to the next (+2.5 / -1.5, then -0.7 / +1.7), and +417 / -417 where the tail nearly netted out
    covariance = np.array([[0.04, -0.012], [-0.012, 0.01]])  # stocks 20%, bonds 10%, correlation -0.6
    for mean, weights, given in (
        ((0.0, 0.0), (0.6, 0.4), True),  # a real tail loss: shares, summing to 1
        ((0.5, 0.5), (0.6, 0.4), False),  # every path gains: the "CVaR" is a gain
        ((0.2, 0.2), (0.6, 0.4), False),  # the bonds' gain nets the stocks' loss out to under a tenth of both
    ):
        rng = np.random.default_rng(7)
        returns = rng.multivariate_normal(mean, covariance, size=50_000)
        w = np.array(weights)
        shares = cvar_contributions(w, returns, 0.95)
        # the same tail, recomputed plainly: the worst 2,500 scenarios of the mix
        worst = np.argsort(returns @ w)[:2_500]
        parts = w * -returns[worst].mean(axis=0)
        assert (parts.sum() > 0.1 * np.abs(parts).sum()) == given, parts  # the third: +0.114 and -0.105
        if given:
            assert shares.sum() == pytest.approx(1.0) and np.allclose(shares, parts / parts.sum(), atol=1e-9)
        else:
            assert np.isnan(shares).all()


def test_cvar_contributions_weigh_the_tail_as_a_stable_sort_from_the_largest_loss_would() -> None:
    # returns rounded so that the tail's edge falls inside a run of equal losses whose rows differ
    # asset by asset: the worst scenarios in the order of a stable descending sort (equal losses by
    # position), the boundary one weighted by the fraction left; taking the tied rows from the
    # other end would give other shares
    rng = np.random.default_rng(12)
    returns = np.round(rng.normal(size=(10_001, 2)), 1)
    weights = np.array([0.5, 0.5])
    losses = -(returns @ weights)
    tail = 0.05 * losses.size

    def shares(order: np.ndarray) -> np.ndarray:
        mass = np.zeros(losses.size)
        mass[order[: int(tail)]] = 1.0
        mass[order[int(tail)]] = tail - int(tail)
        contributions = weights * (mass @ -returns)
        return contributions / contributions.sum()

    stable = np.argsort(-losses, kind="stable")
    np.testing.assert_allclose(cvar_contributions(weights, returns, 0.95), shares(stable), rtol=1e-12)
    from_the_end = losses.size - 1 - np.argsort(-losses[::-1], kind="stable")
    assert np.abs(shares(from_the_end) - shares(stable)).max() > 1e-5


def test_standard_errors_match_the_spread_over_independent_seeds() -> None:
    # the bootstrap standard error of the median CAGR and p95 drawdown on one sample of paths
    # against the actual spread of those statistics over 40 independent samples; the spread of
    # 40 draws is itself known to about 11% (1 / sqrt(2 x 39)), so allow 0.7..1.4
    from mcalloc.metrics.diversification import standard_errors
    from mcalloc.portfolio.book_summary import BookSummary

    def book(seed: int) -> BookSummary:
        rng = np.random.default_rng(seed)
        monthly = rng.normal(0.006, 0.045, (2000, 36, 1))
        values = np.exp(np.cumsum(monthly, axis=1))
        return BookSummary(
            terminal_value=values[:, -1, :],
            max_drawdown=(1.0 - values / np.maximum.accumulate(np.maximum(values, 1.0), axis=1)).max(axis=1),
            year_end_values=values[:, 11::12, :],
            log_return_sum=monthly.sum(axis=1),
            log_return_sumsq=(monthly**2).sum(axis=1),
            n_steps=756,
            n_blocks=36,
        )

    medians, tails, lows, highs, typical = [], [], [], [], []
    for seed in range(40):
        sample = book(seed)
        cagr = sample.terminal_value[:, 0] ** (1 / 3) - 1
        medians.append(np.median(cagr))
        lows.append(np.percentile(cagr, 5))
        highs.append(np.percentile(cagr, 95))
        tails.append(np.percentile(sample.max_drawdown[:, 0], 95))
        typical.append(np.median(sample.max_drawdown[:, 0]))
    errors = standard_errors(book(100), ["a"], 3, seed=1).iloc[0]
    assert 0.7 < errors["cagr_median_se"] / np.std(medians, ddof=1) < 1.4
    assert 0.7 < errors["maxdd_p95_se"] / np.std(tails, ddof=1) < 1.4
    # and the table's other quantiles, whose errors it prints too
    assert 0.7 < errors["cagr_p05_se"] / np.std(lows, ddof=1) < 1.4
    assert 0.7 < errors["cagr_p95_se"] / np.std(highs, ddof=1) < 1.4
    assert 0.7 < errors["maxdd_median_se"] / np.std(typical, ddof=1) < 1.4


def test_repeated_portfolios_get_the_numbers_computing_them_again_would_give() -> None:
    """A portfolio whose paths repeat an earlier one's (booked once, copied) is not recomputed: its rows,
    standard errors and metrics equal that portfolio's computed without the repeats; a column that differs in one value
    is not taken for a repeat."""
    from dataclasses import fields, replace

    from mcalloc.metrics.diversification import standard_errors
    from mcalloc.metrics.summary import metrics_table
    from mcalloc.portfolio.book_summary import BookSummary

    plan = replace(twin_plan(), weights=np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]))
    result = run_simulation(plan, 600, 200, seed=5)
    names = ["a", "half", "b", "half again", "a again"]
    assert result.book.repeated_columns.tolist() == [0, 1, 2, 1, 0]
    nudged = result.book.year_end_values.copy()
    nudged[7, 0, 3] = np.nextafter(nudged[7, 0, 3], np.inf)  # one unit in the last place of its dtype
    assert replace(result.book, year_end_values=nudged).repeated_columns.tolist() == [0, 1, 2, 3, 0]

    def judged(columns: list[int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The table and standard errors of some of the portfolios, indexed by portfolio."""
        book: BookSummary = result.book
        taken = {}
        for field in fields(book):
            value = getattr(book, field.name)
            if isinstance(value, np.ndarray):
                taken[field.name] = value[columns] if field.name == "drawdown_histogram" else value[..., columns]
        picked = replace(book, **taken)
        chosen = [names[column] for column in columns]
        table = diversification_table(
            picked,
            chosen,
            "a",
            2,
            5,
            200,
            plan.weights[columns],
            result.daily_covariance,
            ["a", "b"],
            result.asset_growth,
        )
        errors = standard_errors(picked, chosen, 2, 5)
        metrics = metrics_table(picked, chosen, 100_000.0, 2)
        return (
            table.set_index(["portfolio", "statistic"]),
            errors.set_index("portfolio"),
            metrics.set_index("portfolio"),
        )

    every, every_errors, every_metrics = judged([0, 1, 2, 3, 4])
    distinct, distinct_errors, distinct_metrics = judged([0, 1, 2])
    pd.testing.assert_series_equal(every_metrics.loc["half again"], distinct_metrics.loc["half"], check_names=False)
    pd.testing.assert_series_equal(every_metrics.loc["a again"], distinct_metrics.loc["a"], check_names=False)
    pd.testing.assert_frame_equal(every.loc["half again"], distinct.loc["half"])
    pd.testing.assert_frame_equal(every.loc[["half", "b"]], distinct.loc[["half", "b"]])
    pd.testing.assert_series_equal(every_errors.loc["half again"], distinct_errors.loc["half"], check_names=False)
    pd.testing.assert_series_equal(every_errors.loc["a again"], distinct_errors.loc["a"], check_names=False)
    # the reference's own repeat: every paired difference is exactly zero
    paired = every.loc["a again"].loc[["cagr_median", "maxdd_p95", "cvar_95_annual", "vol_ann"]]
    assert (paired[["difference", "ci_low", "ci_high"]] == 0.0).all().all()


def test_unpaired_interval_of_uneven_halves_matches_the_closed_form() -> None:
    # halves of 75,000 and 25,000 paths (one chunk of 75,000), each resampled 20,000 at a time: each half's
    # variance takes its own m-out-of-n factor (0.27 and 0.8). One block a path and one year, so vol_ann is the
    # sample standard deviation of normal returns: closed form, its standard error is sigma / sqrt(2 n) (the
    # delta method on the sample variance's variance, 2 sigma^4 / n for normal data), and the two halves'
    # variances add. The larger factor for both halves gave 1.20 to 1.33 times it (seeds 11 to 13); 400
    # resamples know the spread to about 3% (measured 0.98 to 1.03), so allow 10%.
    from mcalloc.metrics.summary import Z_95
    from mcalloc.portfolio.book_summary import BookSummary

    n, sigma = 100_000, 0.1
    returns = np.random.default_rng(11).normal(0.005, sigma, (n, 2))
    book = BookSummary(
        terminal_value=np.exp(returns),
        max_drawdown=np.zeros((n, 2)),
        year_end_values=np.exp(returns)[:, None, :],
        log_return_sum=returns,
        log_return_sumsq=returns**2,
        n_steps=12,
        n_blocks=1,
    )
    assert unpaired_cut(n, 75_000) == 75_000
    table = diversification_table(
        book, ["a", "b"], "a", 1, 5, 75_000, np.eye(2), np.eye(2) * 1e-4, ["x", "y"], n_boot=400
    ).set_index("statistic")
    row = table.loc["vol_ann"]
    expected = sigma * math.sqrt(1 / (2 * 75_000) + 1 / (2 * 25_000))
    assert (row.unpaired_ci_high - row.unpaired_ci_low) / (2 * Z_95) == pytest.approx(expected, rel=0.1)
