"""Wealth percentiles by month, counted in bins while paths stream (mcalloc.metrics.fan)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mcalloc.config import load_scenario
from mcalloc.metrics.fan import LOG_BIN, LOG_MIN, N_BINS, WealthFan, fan_quantiles, fan_table
from mcalloc.pipeline import build_model, rebalance_policy
from mcalloc.portfolio.costs import FeeModel
from mcalloc.portfolio.schedule import Schedule
from mcalloc.simulation.paths import (
    SimulationPlan,
    _simulate_chunks,
    _wealth_fan,
    run_edges,
    run_simulation,
    seed_sequence,
    simulate_chunk,
)
from scipy import stats

from .conftest import DEFAULT_CONFIG

PROBABILITIES = np.array([0.05, 0.25, 0.5, 0.75, 0.95])


def test_binned_quantiles_match_the_lognormal_closed_form_and_the_sample() -> None:
    """Log wealth N(m, s): quantile p is exp(m + s z_p); binned ones sit within a bin of the sample's."""
    rng = np.random.default_rng(7)
    m, s = np.array([0.3, -0.2]), np.array([0.25, 0.6])
    fan = WealthFan(n_portfolios=2, n_months=1)
    draws = np.exp(m[:, None] + s[:, None] * rng.standard_normal((2, 400_000)))
    for part in np.array_split(draws, 8, axis=1):  # in chunks, as paths stream
        fan.add(0, part)
    binned = fan_quantiles(fan.counts[:, 0, :], PROBABILITIES)
    exact = np.exp(m[:, None] + s[:, None] * stats.norm.ppf(PROBABILITIES)[None, :])
    sample = np.quantile(draws, PROBABILITIES, axis=1).T
    # interpolation within a bin: at most one bin (LOG_BIN in log wealth) from the sample quantile
    np.testing.assert_array_less(np.abs(np.log(binned / sample)), LOG_BIN)
    # and the sample is within its own sampling error (well under 1%) of the closed form at n = 400,000
    np.testing.assert_allclose(binned, exact, rtol=0.01)


def test_out_of_range_and_zero_wealth_are_counted_at_the_ends() -> None:
    fan = WealthFan(n_portfolios=1, n_months=2)
    fan.add(0, np.array([[0.0, 1e-9, 1.0, 1e9]]))
    fan.add(1, np.array([[np.nan, 2.0, 2.0, 2.0]]))
    assert fan.counts[0, 0, 0] == 2 and fan.counts[0, 0, -1] == 1 and fan.counts.sum() == 8
    low, high = fan_quantiles(fan.counts[0, 0], np.array([0.1, 0.99]))
    assert low == 0.0 and high == np.inf
    table = fan_table(fan, ["only"], 100.0, "USD")
    assert list(table["month"]) == [0, 1, 2] and table["wealth_p50"].iloc[0] == 100.0


def test_compiled_counts_match_the_numpy_reference_on_bin_edges_and_beyond_the_range() -> None:
    rng = np.random.default_rng(11)
    edges = np.exp(LOG_MIN + LOG_BIN * np.arange(N_BINS + 1))
    # every bin edge and its neighbours either side, where a rounding slip would show
    values = np.concatenate(
        [
            np.exp(rng.normal(0.0, 3.0, 20_000)),
            edges,
            np.nextafter(edges, 0.0),
            np.nextafter(edges, np.inf),
            [0.0, -1.0, np.nan, np.inf, 1e-300, 1e300],
        ]
    )
    value = np.stack([values, values[::-1] * 1.7])
    scales = np.array([1.0, 0.37, 5.5])
    widths = np.array([LOG_BIN, 0.037, LOG_BIN])  # the middle month's bins widened, as for a long horizon
    compiled, reference = WealthFan(2, 3, scales, widths), WealthFan(2, 3, scales, widths)
    for month in range(3):
        compiled.add(month, value)
        reference.add_reference(month, value)
    np.testing.assert_array_equal(compiled.counts, reference.counts)
    assert compiled.counts.sum() == value.size * 3
    # wealth at or below zero, nan and tiny wealth land in the first bin, huge and infinite in the last
    assert compiled.counts[0, 0, 0] >= 4 and compiled.counts[0, 0, -1] >= 2


def _plan(horizon_years: int, overrides: list[str] | None = None) -> SimulationPlan:
    """The default model holding the S&P 500 alone and 60/20/20, with the fan counted."""
    scenario = load_scenario(DEFAULT_CONFIG, [f"simulation.horizon_years={horizon_years}", *(overrides or [])])
    model, _ = build_model(scenario)
    simulation = scenario.simulation
    return SimulationPlan(
        model=model,
        fees=FeeModel.of(scenario.assets, simulation.steps_per_year),
        schedule=Schedule(simulation.horizon_years, simulation.steps_per_year, "monthly"),
        weights=np.array([[1.0, 0.0, 0.0], [0.6, 0.2, 0.2]]),
        policy=rebalance_policy(scenario),
        wealth_fan=True,
    )


@pytest.fixture(scope="module")
def plan() -> SimulationPlan:
    return _plan(2)


def test_streamed_counts_do_not_depend_on_workers_and_match_the_terminal_wealth(plan: SimulationPlan) -> None:
    one = run_simulation(plan, 1200, 100, seed=3, n_jobs=1)
    two = run_simulation(plan, 1200, 100, seed=3, n_jobs=2)
    assert one.fan is not None and two.fan is not None
    np.testing.assert_array_equal(one.fan.counts, two.fan.counts)
    assert one.fan.counts.shape[:2] == (2, 24) and (one.fan.counts.sum(axis=2) == 1200).all()
    np.testing.assert_array_equal(one.book.drawdown_histogram, two.book.drawdown_histogram)
    # the last month's binned median is the median of the paths' terminal wealth, to within a bin
    binned = one.fan.quantiles(np.array([0.5]))[:, -1, 0]
    exact = np.median(one.book.terminal_value, axis=0)
    np.testing.assert_array_less(np.abs(np.log(binned / exact)), LOG_BIN)


def test_a_run_of_chunks_sends_one_set_of_counts_summed_as_the_chunks_finish(plan: SimulationPlan) -> None:
    """A worker's run adds each chunk's fan and drawdown histogram into the first's: the sums of the chunks alone."""
    seeds = seed_sequence(4).spawn(3)
    alone = [simulate_chunk(plan, 100, seed) for seed in seeds]
    run = _simulate_chunks(plan, [100] * 3, seeds)
    assert run[0].fan is not None and run[0].book.drawdown_histogram is not None
    assert all(part.fan is None and part.book.drawdown_histogram is None for part in run[1:])
    fans = [part.fan for part in alone]
    histograms = [part.book.drawdown_histogram for part in alone]
    assert all(fan is not None for fan in fans) and all(h is not None for h in histograms)
    np.testing.assert_array_equal(run[0].fan.counts, sum(fan.counts for fan in fans if fan is not None))
    np.testing.assert_array_equal(run[0].book.drawdown_histogram, sum(h for h in histograms if h is not None))
    for part, single in zip(run, alone, strict=True):
        np.testing.assert_array_equal(part.book.terminal_value, single.book.terminal_value)


@pytest.mark.parametrize(("n_chunks", "workers"), [(1, 2), (10, 2), (32, 2), (1000, 2), (3, 8), (500, 64)])
def test_runs_cover_every_chunk_once_in_order_and_shrink_to_single_chunks(n_chunks: int, workers: int) -> None:
    edges = run_edges(n_chunks, workers)
    lengths = np.diff(edges)
    assert edges[0] == 0 and edges[-1] == n_chunks and (lengths >= 1).all() and (lengths <= 16).all()
    # guided: no run is longer than the one before it, and the last is a single chunk
    assert (np.diff(lengths) <= 0).all() and lengths[-1] == 1
    # each run is at most half a worker's share of what was left, so a worker finishing early waits little
    remaining = n_chunks - np.array(edges[:-1])
    assert (lengths <= np.ceil(remaining / (2 * workers))).all()


def test_blocks_put_together_rows_written_across_their_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collected result in blocks of 7 rows, written in pieces that straddle them, reads as one array."""
    from mcalloc.simulation import collect

    monkeypatch.setattr(collect, "_BLOCK_PATHS", 7)
    rows = np.random.default_rng(2).normal(size=(30, 3, 2))
    for index in (None, np.array([1, 0, 1])):
        blocked = collect._Blocked(30, rows[:1])
        start = 0
        for size in (4, 9, 1, 16):
            blocked.write(start, rows[start : start + size])
            start += size
        assert len(blocked.blocks) == 5 and blocked.nbytes == rows.nbytes
        expected = rows if index is None else rows[..., index]
        np.testing.assert_array_equal(blocked.assemble(index), expected)
        assert all(block is None for block in blocked.blocks)


def test_portfolios_booked_once_are_copied_alike_whatever_the_blocks(
    plan: SimulationPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S&P 500 alone held twice is booked once and copied; results do not depend on the block size."""
    from mcalloc.simulation import collect

    twice = replace(plan, weights=np.array([[1.0, 0.0, 0.0], [0.6, 0.2, 0.2], [1.0, 0.0, 0.0]]))
    whole = run_simulation(twice, 600, 100, seed=11, n_jobs=1)
    monkeypatch.setattr(collect, "_BLOCK_PATHS", 250)
    blocked = run_simulation(twice, 600, 100, seed=11, n_jobs=1)
    for field in ("terminal_value", "year_end_values", "max_drawdown", "log_return_sumsq"):
        np.testing.assert_array_equal(getattr(blocked.book, field), getattr(whole.book, field))
        np.testing.assert_array_equal(getattr(whole.book, field)[..., 0], getattr(whole.book, field)[..., 2])
    histogram = whole.book.drawdown_histogram  # portfolios first
    assert histogram is not None and histogram.shape[0] == 3
    np.testing.assert_array_equal(blocked.book.drawdown_histogram, histogram)
    np.testing.assert_array_equal(histogram[0], histogram[2])
    np.testing.assert_array_equal(blocked.asset_growth, whole.asset_growth)
    assert blocked.fan is not None and whole.fan is not None
    np.testing.assert_array_equal(blocked.fan.counts, whole.fan.counts)


def test_bins_follow_the_money_put_in() -> None:
    """With savings, wealth a thousand times the start is still counted inside the range, not at its end."""
    scales = np.array([1.0, 2000.0])
    fan = WealthFan(n_portfolios=1, n_months=2, scales=scales)
    values = 2000.0 * np.exp(np.linspace(-0.1, 0.1, 1001))[None, :]
    fan.add(1, values)
    assert fan.counts[0, 1, -1] == 0
    median = fan.quantiles(np.array([0.5]))[0, 1, 0]
    assert abs(np.log(median / 2000.0)) < LOG_BIN


@pytest.mark.parametrize("overrides", [["model.mean_uncertainty=null"], [], ["model.mean_uncertainty.years=2"]])
def test_a_century_of_growth_stays_inside_the_range(overrides: list[str]) -> None:
    """Bins centred on the money put in alone overflowed after about 80 years at 8% a year (e^7).

    With uncertain means the paths spread far wider than with known ones (a
    standard deviation of log wealth near 5 after a century at the default's
    18.3 years, near 15 at 2 years), and every percentile the fan reports
    must still be counted in a bin: the bins widen with the spread.
    """
    plan = _plan(100, overrides)
    result = run_simulation(plan, 200, 100, seed=5, n_jobs=1)
    assert result.fan is not None
    terminal = result.book.terminal_value
    assert np.median(np.log(terminal)) > 7.0  # beyond the range of bins centred on the money put in
    spread = np.log(terminal).std(axis=0).min()
    width = result.fan.widths[-1]
    if plan.model.mean_years is None:
        assert spread < 3.0 and width < 1.1 * LOG_BIN  # bins of about 1%, as with no widening
    else:
        assert spread > 4.0 and width > 1.5 * LOG_BIN
    # the paths beyond either end are fewer than 5% (the fan's outermost percentiles), so none of those is clipped
    ends = result.fan.counts[:, -1, 0] + result.fan.counts[:, -1, -1]
    assert (ends < 0.05 * terminal.shape[0]).all(), ends
    quantiles = result.fan.quantiles(PROBABILITIES)[:, -1, :]
    assert np.isfinite(quantiles).all()
    # each binned percentile is within a bin of the sample's: the share of paths below it, a bin either side,
    # brackets the probability
    for portfolio in range(2):
        for probability, quantile in zip(PROBABILITIES, quantiles[portfolio], strict=True):
            below = np.mean(terminal[:, portfolio] <= quantile * np.exp(width))
            under = np.mean(terminal[:, portfolio] < quantile * np.exp(-width))
            assert under <= probability <= below, (portfolio, probability, under, below)


def test_ten_years_keep_one_percent_bins() -> None:
    fan = _wealth_fan(_plan(10), 120)
    assert fan is not None and (fan.widths == LOG_BIN).all()


def test_the_models_mean_log_returns_are_those_it_simulates() -> None:
    """The centre of the fan's bins: each series' mean daily log return, the market's passed on by the loadings."""
    model, _ = build_model(load_scenario(DEFAULT_CONFIG, ["model.mean_uncertainty=null"]))  # the mean itself
    returns = model.simulate(np.random.default_rng(11), 4000, 252)
    sample = returns.mean(axis=(0, 1))
    # paths are independent; days within a path nearly so in their means
    error = returns.mean(axis=1).std(axis=0) / np.sqrt(returns.shape[0])
    np.testing.assert_array_less(np.abs(model.mean_log_returns() - sample), 4 * error)


@pytest.mark.parametrize(("chunk_size", "n_jobs", "release"), [(300, 1, False), (100, 2, True)])
def test_portfolios_with_the_same_weights_are_booked_once_and_copied_exactly(
    chunk_size: int, n_jobs: int, release: bool
) -> None:
    """run_simulation books each distinct mix once; the copies equal what booking every row gives, bit for bit,
    in one chunk or in several on two workers that are stopped before the copies are made."""
    from dataclasses import fields, replace

    from mcalloc.config.sections import FlowConfig
    from mcalloc.portfolio.flows import CashFlowSchedule
    from mcalloc.simulation.paths import chunk_sizes, seed_sequence, simulate_chunk

    repeated = np.array([[0.6, 0.2, 0.2], [1.0, 0.0, 0.0], [0.6, 0.2, 0.2], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    saving = [FlowConfig(kind="contribution", amount=1000.0, frequency="monthly", indexation=0.02)]
    flows = CashFlowSchedule.from_config(saving, 2, 100_000.0)
    plan = replace(_plan(2), weights=repeated, flows=flows)
    once = run_simulation(plan, 300, chunk_size, seed=9, n_jobs=n_jobs, release=release)
    sizes = chunk_sizes(300, chunk_size)
    # every chunk booking all five rows, put together in chunk order
    parts = [
        simulate_chunk(plan, size, child) for size, child in zip(sizes, seed_sequence(9).spawn(len(sizes)), strict=True)
    ]
    assert once.fan is not None
    np.testing.assert_array_equal(once.fan.counts, sum(part.fan.counts for part in parts if part.fan is not None))
    for field in fields(once.book):
        ours, theirs = getattr(once.book, field.name), [getattr(part.book, field.name) for part in parts]
        if field.name == "drawdown_histogram":
            np.testing.assert_array_equal(ours, sum(theirs))
        elif isinstance(ours, np.ndarray):
            np.testing.assert_array_equal(ours, np.concatenate(theirs), err_msg=field.name)
        else:
            assert all(ours == value for value in theirs), field.name
