"""mcalloc backtest: filtering with fixed parameters, forecasts under a known model, the command and its errors.

Reference points from outside the code under test:

- the filtered state must equal, to rounding, the conditional variances and
  DCC ``Q`` matrices the simulator itself produced for the same returns;
- under the model that generated the data, PITs are i.i.d. uniform (Diebold,
  Gunther and Tay 1998) and VaR exceedances binomial with the nominal rate,
  so a fixed seed lands inside the binomial bounds and uniformity tests pass;
- a constant-volatility baseline on GARCH data must fail (the checks have power).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.backtest.evaluate import BacktestPlan, Variant, _fit
from mcalloc.backtest.filtering import filter_states
from mcalloc.backtest.forecasts import COVERAGES, Targets, forecast, var_forecast
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.data import load_market_data
from mcalloc.metrics.forecast_tests import berkowitz_test, ks_uniformity
from mcalloc.models.copulas import DccCopula
from mcalloc.models.joint import JointModel
from mcalloc.pipeline import build_model
from scipy import stats

from tests.conftest import DEFAULT_CONFIG, ROOT, default_scenario_data, one_error_line

GIVEN_CORRELATION = "model.dependence.correlation=[[1,0.5,0.4],[0.5,1,0.3],[0.4,0.3,1]]"
TRUTHS = {
    "fhs": ["simulation.start.kind=unconditional"],
    "dcc": [
        "simulation.start.kind=unconditional",
        "model.dependence.kind=dcc",
        "model.dependence.residuals=null",
        GIVEN_CORRELATION,
        "model.dependence.dcc={a: 0.04, b: 0.93}",
    ],
}
N_FIT, N_TEST = 3000, 1260


def _truth(kind: str) -> JointModel:
    # a truth has its means: the simulated history is one path of one world
    model, _ = build_model(load_scenario(DEFAULT_CONFIG, [*TRUTHS[kind], "model.mean_uncertainty=null"]))
    return model


def _history(model: JointModel, n_days: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One simulated path, day by day: returns (n_days, n), each day's variance, and DCC's Q when there is one."""
    rng = np.random.default_rng(seed)
    state = model.initial_state(1)
    returns, variances, qs = [], [], []
    for _ in range(n_days):
        variances.append(state.variance[0].copy())
        if isinstance(model.dependence, DccCopula):
            qs.append(np.array(state.dependence)[0].copy())
        returns.append(model.simulate_block(rng, state, 1)[0, 0].copy())
    return np.array(returns), np.array(variances), (np.array(qs) if qs else None)


def _started_at(model: JointModel, variance: np.ndarray, q: np.ndarray | None) -> JointModel:
    """The model as if fitted to the days before one whose variances (and Q) are given."""
    marginals = tuple(replace(m, last_variance=float(v)) for m, v in zip(model.marginals, variance, strict=True))
    dependence = model.dependence
    if isinstance(dependence, DccCopula):
        dependence = replace(dependence, dcc=replace(dependence.dcc, last_q=q), marginals=marginals)
    else:
        dependence = replace(dependence, marginals=marginals) if hasattr(dependence, "transforms") else dependence
    return replace(model, marginals=marginals, dependence=dependence)


@pytest.mark.parametrize("kind", sorted(TRUTHS))
def test_filtering_recovers_the_simulators_own_variances_and_q(kind: str) -> None:
    # the market factor, the sample mean and (for dcc) the Q recursion, all inverted from the returns
    model = _truth(kind)
    returns, variances, qs = _history(model, 600, seed=11)
    first = 300
    start = _started_at(model, variances[first], None if qs is None else qs[first])
    states = filter_states(start, returns, first, 600)
    np.testing.assert_allclose(states.variance, variances[first:], rtol=1e-9)
    if qs is not None:
        assert states.dcc_q is not None
        np.testing.assert_allclose(states.dcc_q, qs[first:], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(TRUTHS))
def test_forecasts_under_the_true_model_are_calibrated(kind: str) -> None:
    model = _truth(kind)
    n_days = 2000
    returns, variances, qs = _history(model, n_days + 1, seed=5)
    start = _started_at(model, variances[1], None if qs is None else qs[1])
    weights = np.array([[1.0, 0.0, 0.0], [0.6, 0.2, 0.2]])
    targets = Targets(tuple(model.asset_names), ("sp500_only", "mix"), weights)
    daily, monthly = forecast(start, returns, 1, n_days + 1, targets, 1000, np.random.default_rng(2))
    assert daily.realised.shape == (n_days, 5) and monthly.realised.shape == (n_days // 21, 5)
    for column, name in enumerate(targets.names):
        pits = daily.pit[:, column]
        # fixed seed; under the truth each p-value is uniform, so 1e-3 fails one target in a thousand
        assert ks_uniformity(pits) > 1e-3, name
        assert berkowitz_test(pits) > 1e-3, name
        assert ks_uniformity(monthly.pit[:, column]) > 1e-3, name
        for coverage in COVERAGES:
            hits = int((daily.realised[:, column] < daily.var[coverage][:, column]).sum())
            low, high = stats.binom.ppf([0.0005, 0.9995], n_days, coverage)
            assert low <= hits <= high, (name, coverage, hits)


@pytest.mark.parametrize("n_draws", [99, 199])
def test_a_var_forecast_from_few_draws_is_hit_as_often_as_its_coverage(n_draws: int) -> None:
    # an outcome from the draws' own law falls below their k-th smallest with probability k / (n + 1)
    # (David and Nagaraja, Order Statistics, 2003, section 2.4): exactly 1% for k = 1 of 99 and k = 2 of
    # 199. 100,000 periods put the rate within 4 standard errors (0.0013 at 1%) of it. The quantile
    # interpolated between the draws, which the forecasts took before, is hit (98 x 0.01 + 1) / 100 =
    # 1.98% of the time at 99 draws and 1.50% at 199.
    rng = np.random.default_rng(11)
    n_periods, coverage = 100_000, 0.01
    draws = rng.standard_normal((n_periods, n_draws, 1))
    realised = rng.standard_normal((n_periods, 1))
    rate = float((realised < var_forecast(draws, coverage)).mean())
    assert abs(rate - coverage) < 4 * np.sqrt(coverage * (1 - coverage) / n_periods), rate
    interpolated = float((realised < np.quantile(draws, coverage, axis=1)).mean())
    assert interpolated > coverage + 6 * np.sqrt(coverage * (1 - coverage) / n_periods), interpolated
    assert var_forecast(draws, 0.05).shape == (n_periods, 1)


# --------------------------------------------------------------------------- the command on simulated files


@pytest.fixture(scope="module")
def simulated_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fitting scenario whose three price files were simulated from a Gaussian copula of GJR-GARCH series."""
    folder = tmp_path_factory.mktemp("simulated")
    truth, _ = build_model(
        load_scenario(
            DEFAULT_CONFIG,
            [
                "simulation.start.kind=unconditional",
                "model.dependence.kind=gaussian",
                "model.dependence.residuals=null",
                GIVEN_CORRELATION,
                "model.mean_uncertainty=null",  # the history of one world, its means fixed
            ],
        )
    )
    returns = truth.simulate(np.random.default_rng(2024), 1, N_FIT + N_TEST)[0]
    dates = pd.bdate_range("2000-01-03", periods=N_FIT + N_TEST + 1)
    paths = {}
    for column, name in enumerate(truth.asset_names):
        prices = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns[:, column])]))
        paths[name] = str(folder / f"{name}.csv")
        pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Close": prices}).to_csv(paths[name], index=False)
    data = default_scenario_data()
    data["name"] = "simulated"
    data["data"] = {"source": "csv", "kind": "prices", "date_column": "Date", "value_column": "Close", "paths": paths}
    data["model"] = {
        "source": "fit",
        "marginals": {"kind": "gjr_garch", "dist": "normal", "mean": "sample"},
        "dependence": {"kind": "gaussian"},
        "factor": {"market": "sp500"},
    }
    data["simulation"]["n_paths"] = 400
    data["output"] = {"dir": str(folder / "results"), "report": False}
    path = folder / "simulated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _split(folder: Path) -> str:
    prices = pd.read_csv(folder / "sp500.csv")
    return str(prices["Date"].iloc[N_FIT + 1])


def test_the_generating_model_passes_and_a_constant_volatility_baseline_fails(
    simulated_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "backtest"
    split = _split(simulated_scenario.parent)
    options = ["--models", "gaussian,iid_normal", "--draws", "500", "--out", str(out), "--n-jobs", "1"]
    code = main(["backtest", str(simulated_scenario), "--split", split, *options])
    printed = capsys.readouterr().out
    assert code == 0
    verdicts = pd.read_csv(out / "verdicts.csv").set_index("model")
    assert verdicts.loc["gaussian/normal", "verdict"] == "passes", verdicts.to_string()
    assert verdicts.loc["iid_normal", "verdict"] == "fails", verdicts.to_string()
    assert "pass: gaussian/normal" in printed and "fail: iid_normal" in printed
    # one split's table counts the checks below the threshold too, as the summary over splits does
    header = next(line for line in printed.splitlines() if line.lstrip().startswith("model"))
    assert header.split()[:5] == ["model", "checks", "failed_at_5pct", "failed_at_threshold", "smallest_p"]
    table = pd.read_csv(out / "validation.csv")
    true_model = table[(table["model"] == "gaussian/normal") & (table["check"] == "var") & (table["horizon"] == "1d")]
    assert len(true_model) == 2 * 6  # two levels x (3 series + 3 benchmark mixes; sp500_only repeats sp500)
    for row in true_model.itertuples():
        coverage = row.expected_exceedances / row.n_obs
        low, high = stats.binom.ppf([0.0005, 0.9995], row.n_obs, coverage)
        assert low <= row.exceedances <= high, row
    pits = table[(table["model"] == "gaussian/normal") & (table["check"] == "pit") & (table["horizon"] == "1d")]
    assert (pits["ks_p"] > 1e-3).all(), pits.to_string()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "complete" and manifest["kind"] == "backtest"
    assert manifest["splits"] == [split]
    assert manifest["periods"][split]["n_fit"] == N_FIT and manifest["periods"][split]["n_test"] == N_TEST


def test_refits_cover_the_whole_test_period(
    simulated_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refits"
    split = _split(simulated_scenario.parent)
    args = ["backtest", str(simulated_scenario), "--split", split, "--models", "gaussian", "--draws", "200"]
    assert main([*args, "--refit-every", "24", "--out", str(out), "-q", "--set", "simulation.n_paths=200"]) == 0
    table = pd.read_csv(out / "validation.csv")
    daily = table[(table["check"] == "var") & (table["horizon"] == "1d")]
    assert (daily["n_obs"] == N_TEST).all()
    assert (table[(table["check"] == "pit") & (table["horizon"] == "1m")]["n_obs"] == N_TEST // 21).all()
    # 200 simulated windows: a window check's p-value is at least 2 / 201, too large ever to fail; said so
    warnings = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["warnings"]
    assert any(w.startswith("simulation.n_paths: among 200 simulated windows") and "cannot fail" in w for w in warnings)
    # and printed, as a run prints its warnings: a pass that cannot fail must not read as a clean bill
    assert "cannot fail" in capsys.readouterr().err
    assert BacktestPlan((split,), 24).segments(N_FIT, N_FIT + N_TEST) == [
        (N_FIT, N_FIT + 504),
        (N_FIT + 504, N_FIT + 1008),
        (N_FIT + 1008, N_FIT + N_TEST),
    ]


def test_the_optimisers_settings_do_not_limit_a_backtest(simulated_scenario: Path, tmp_path: Path) -> None:
    # optimize.batches (5) wants 2 of the optimiser's paths each, but a backtest runs no optimiser: 9 paths
    # were refused in its name; now they run (and are warned about, as too few for a window check to fail)
    split = _split(simulated_scenario.parent)
    args = ["backtest", str(simulated_scenario), "--split", split, "--models", "iid_normal", "--draws", "100"]
    assert main([*args, "--set", "simulation.n_paths=9", "--out", str(tmp_path / "few"), "-q"]) == 0


def test_several_splits_each_as_if_run_alone_with_a_summary(
    simulated_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = pd.read_csv(simulated_scenario.parent / "sp500.csv")
    early, late = _split(simulated_scenario.parent), str(prices["Date"].iloc[N_FIT + 601])
    small = ["--models", "gaussian,iid_normal", "--draws", "200", "--set", "simulation.n_paths=200", "--n-jobs", "2"]
    both, alone = tmp_path / "both", tmp_path / "alone"
    # out of order, one date twice: run once each, oldest first
    args = ["backtest", str(simulated_scenario), "--split", f"{late},{early}", "--split", late, *small]
    assert main([*args, "--out", str(both)]) == 0
    printed = capsys.readouterr().out
    assert main(["backtest", str(simulated_scenario), "--split", late, *small, "--out", str(alone), "-q"]) == 0
    manifest = json.loads((both / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["splits"] == [early, late]
    assert manifest["periods"][late]["n_test"] == N_TEST - 600
    table = pd.read_csv(both / "validation.csv", dtype={"split": str})
    daily = table[(table["check"] == "var") & (table["horizon"] == "1d")]
    assert set(daily.loc[daily["split"] == early, "n_obs"]) == {N_TEST}
    assert set(daily.loc[daily["split"] == late, "n_obs"]) == {N_TEST - 600}
    # a split's numbers depend on the split, not on which others ran with it
    single = pd.read_csv(alone / "validation.csv", dtype={"split": str})
    pd.testing.assert_frame_equal(table[table["split"] == late].reset_index(drop=True), single)
    verdicts = pd.read_csv(both / "verdicts.csv", dtype={"split": str})
    assert len(verdicts) == 4 and verdicts["split"].tolist() == [early, early, late, late]
    summary = pd.read_csv(both / "summary.csv").set_index("model")
    assert ((verdicts["failed_at_threshold"] == 0) == (verdicts["verdict"] == "passes")).all()
    for model, rows in verdicts.groupby("model"):
        assert summary.loc[model, "passed"] == (rows["verdict"] == "passes").sum()
        assert summary.loc[model, "failed_at_threshold"] == rows["failed_at_threshold"].sum()
        assert summary.loc[model, "passed"] + summary.loc[model, "failed"] == summary.loc[model, "splits"] == 2
    assert summary.loc["gaussian/normal", "passed"] == 2, summary.to_string()
    assert early in summary.loc["iid_normal", "failed_at"], summary.to_string()
    assert f"split {early}: fail: iid_normal" in printed and "over the splits" in printed
    # the summary's rows fill every column: a model that passed at no split shows '-' under passed_at
    (row,) = [line.split() for line in printed.splitlines() if line.strip().startswith("iid_normal ")]
    assert len(row) == 7 and row[-1] == (" ".join(summary.loc["iid_normal", ["passed_at"]].fillna("-"))), row
    assert main(["report", str(both)]) == 0
    page = (both / "report.html").read_text(encoding="utf-8")
    assert "split-summary" in page and f"splits {early}, {late}" in page


def test_split_summary_counts_models_that_could_not_be_fitted() -> None:
    from mcalloc.backtest.tables import split_summary

    verdict = pd.DataFrame(
        {
            "split": ["2008-01-01", "2008-01-01", "2012-01-01"],
            "model": ["a", "b", "a"],
            "failed_at_5pct": [3, 9, 5],
            "failed_at_threshold": [0, 2, 1],
            "verdict": ["passes", "fails", "fails"],
        }
    )
    summary = split_summary(verdict, [("2012-01-01", "b")]).set_index("model")
    assert summary.loc["a", ["splits", "passed", "failed", "not_evaluated"]].tolist() == [2, 1, 1, 0]
    assert summary.loc["b", ["splits", "passed", "failed", "not_evaluated"]].tolist() == [2, 0, 1, 1]
    assert summary.loc["a", "failed_at_5pct_median"] == 4.0
    assert summary.loc[["a", "b"], "failed_at_threshold"].tolist() == [1, 2]
    assert summary.loc["b", "not_evaluated_at"] == "2012-01-01" and summary.loc["a", "passed_at"] == "2008-01-01"
    # a model fitted at no split has no failure count (not 0, which would rank it best)
    never = split_summary(verdict, [("2008-01-01", "c"), ("2012-01-01", "c")]).set_index("model")
    assert pd.isna(never.loc["c", "failed_at_threshold"]) and pd.isna(never.loc["c", "failed_at_5pct_median"])
    assert never.loc["c", "not_evaluated"] == 2 and never.loc["a", "failed_at_threshold"] == 1


@pytest.mark.parametrize(
    ("split", "fragments"),
    [
        ("2014-13-40", ("--split", "not a date", "YYYY-MM-DD")),
        ("01/02/2005", ("--split", "not a date")),
        ("1990-01-01", ("--split", "outside the data", "2000-01-04")),
        ("2040-01-01", ("--split", "outside the data", "choose a date inside it")),
        ("2000-06-01", ("--split", "daily returns before", "needs at least 500", "choose a split on or after")),
        ("2016-01-04", ("--split", "on or after 2016-01-04", "at least 252", "choose a split on or before")),
        ("2012-01-02,2040-01-01", ("--split", "2040-01-01", "outside the data")),
        ("2012-01-02,2012-13-01", ("--split", "'2012-13-01' is not a date")),
        # a Sunday and the Monday after open the same test: refused rather than run twice
        ("2012-01-01,2012-01-02", ("--split", "2012-01-01 and 2012-01-02", "same test", "give one of them")),
        # the first day of returns is inside the data, with nothing before it to fit
        ("2000-01-04", ("--split", "only 0 daily returns before 2000-01-04")),
        (",", ("--split", "no date given")),
    ],
)
def test_bad_split_dates_exit_2_with_one_line(
    simulated_scenario: Path, split: str, fragments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(simulated_scenario), "--split", split, "--models", "gaussian"]) == 2
    one_error_line(capsys.readouterr(), fragments)
    assert not list((simulated_scenario.parent / "results").glob("*/backtest-*"))


def test_data_too_short_for_any_split_says_so_in_one_line(
    simulated_scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 700 returns: fewer than the 500 to fit and 252 to test on, so no split date can work
    dates = pd.read_csv(simulated_scenario.parent / "sp500.csv")["Date"]
    start, split = dates.iloc[N_FIT + N_TEST - 700], dates.iloc[N_FIT + N_TEST - 300]
    arguments = ["--split", split, "--models", "gaussian", "--set", f"data.start={start}"]
    assert main(["backtest", str(simulated_scenario), *arguments]) == 2
    one_error_line(capsys.readouterr(), ("data:", "700 in all", "752 whatever the split", "data.start earlier"))


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["--models", "gaussian,garch"], ("--models", "unknown 'garch'", "choose from")),
        (["--marginals", "cauchy"], ("--marginals", "unknown 'cauchy'")),
        (["--refit-every", "0"], ("--refit-every", "at least 1")),
        (["--draws", "10"], ("--draws", "at least 100")),
        (["--draws", "99999999999"], ("--draws", "at most 100,000")),
        # longer than the test period: it never refitted, without a word (1,131 test days, 53 months)
        (["--refit-every", "60"], ("--refit-every 60", "split 2012-01-02", "no refit would fall", "at most 52")),
        (["--models", "iid_t,bootstrap_returns", "--marginals", "skewt"], ("--marginals skewt", "baseline")),
    ],
)
def test_bad_options_exit_2_with_one_line(
    simulated_scenario: Path, arguments: list[str], fragments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(simulated_scenario), "--split", "2012-01-02", *arguments]) == 2
    one_error_line(capsys.readouterr(), fragments)


def test_backtests_of_one_scenario_with_other_splits_get_folders_of_their_own(simulated_scenario: Path) -> None:
    from mcalloc.backtest.run import _backtest_folder
    from mcalloc.config import load_scenario

    base = load_scenario(simulated_scenario)
    variants = [Variant("gaussian", "normal", base)]
    names = {
        _backtest_folder(base, "0" * 64, BacktestPlan((split,), refit, 200, 100, 1), variants).name.rsplit("-", 1)[1]
        for split, refit in [("2012-01-02", None), ("2014-01-02", None), ("2012-01-02", 12)]
    }
    assert len(names) == 3


def test_a_calibrated_scenario_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(DEFAULT_CONFIG), "--split", "2015-01-01"]) == 2
    one_error_line(capsys.readouterr(), ("model.source is calibrated", "configs/examples/fit_etfs.yaml"))


# --------------------------------------------------------------------------- the real data


FIT_ETFS = ROOT / "configs" / "examples" / "fit_etfs.yaml"
SMALL = ["--draws", "200", "--set", "simulation.n_paths=200"]


def test_a_failed_refit_leaves_the_last_fit_in_charge(shared_data: Path, tmp_path: Path) -> None:
    # fhs/t with omega reset after a free fit (the default's two-step targeting, named here) fits before 2012,
    # but the S&P 500's GJR with the residuals' skew reaches persistence 1 in the refits before 2018 and 2019:
    # the 2017 fit forecasts on (filtered through 2017) and the split is evaluated. (Tied inside the
    # likelihood, these refits hold.)
    out = tmp_path / "refits"
    reset = ["--set", "model.marginals.variance_targeting=omega"]
    args = ["backtest", str(FIT_ETFS), "--split", "2012-01-01", "--models", "fhs", "--marginals", "t", *reset]
    small = ["--draws", "100", "--set", "simulation.n_paths=100", "--out", str(out), "-q"]
    assert main([*args, "--refit-every", "12", *small]) == 0
    warnings = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["warnings"]
    carried = [w for w in warnings if "refit before 2018-01-" in w]
    assert len(carried) == 1 and "failed, so the fit before 2017-01-" in carried[0] and "persistence" in carried[0]
    assert any("refit before 2019-01-" in w and "so the fit before 2017-01-" in w for w in warnings)
    table = pd.read_csv(out / "validation.csv")
    daily = table[(table["check"] == "var") & (table["horizon"] == "1d")]
    assert (daily["n_obs"] == daily["n_obs"].iloc[0]).all() and daily["n_obs"].iloc[0] == 2012  # 2012-01-03..2019-12-31
    # a carried model's state runs on through the days after its own data: the S&P 500's variance 400 days on
    # is the fit's last variance run through those days' returns by the GJR recursion (written out here)
    scenario = load_scenario(FIT_ETFS, ["model.dependence.kind=fhs", "model.marginals.dist=t", reset[1]])
    data = load_market_data(scenario)
    start = int(data.returns.index.searchsorted(pd.Timestamp("2016-01-04")))
    model = _fit(Variant("fhs", "t", scenario), data, start)
    returns = data.returns.to_numpy(dtype=float)
    whole = filter_states(model, returns, start, start + 600)
    later = filter_states(model, returns, start + 400, start + 600, origin=start)
    np.testing.assert_array_equal(later.variance, whole.variance[400:])
    np.testing.assert_array_equal(later.last_return, whole.last_return[400:])
    market = model.marginals[0]
    p = market.params
    variance = market.last_variance
    for row in range(start, start + 400):
        residual = 100.0 * returns[row, 0] - p["mu"]
        variance = p["omega"] + (p["alpha"] + p["gamma"] * (residual < 0)) * residual**2 + p["beta"] * variance
    assert later.variance[0, 0] == pytest.approx(variance, rel=1e-12)
    assert abs(later.variance[0, 0] / market.last_variance - 1.0) > 0.01  # not restarted from the fit's last day
    # and the backtest forecasts 2018 so: the 2017 fit, filtered from its own first day (not from 2018's)
    plan = BacktestPlan(("2012-01-01",), 12, 100, 100, scenario.seed)
    index = data.returns.index
    segments = plan.segments(int(index.searchsorted(pd.Timestamp("2012-01-01"))), index.size)
    number = next(n for n, (begin, _) in enumerate(segments) if index[begin].year == 2018)
    (origin, _), (begin, end) = segments[number - 1], segments[number]
    assert index[origin].year == 2017
    carried_model = _fit(Variant("fhs", "t", scenario), data, origin)
    series = tuple(carried_model.asset_names)
    rng = np.random.default_rng(Variant("fhs", "t", scenario).seed(plan.seed, "2012-01-01", number))
    targets = Targets(series, (), np.zeros((0, len(series))))
    expected, _ = forecast(carried_model, returns[:, : len(series)], begin, end, targets, 100, rng, origin)
    pits = pd.read_csv(out / "pits.csv")
    first_series = pits[(pits["horizon"] == "1d") & (pits["series"] == series[0])]
    in_segment = first_series[first_series["start"].between(str(index[begin].date()), str(index[end - 1].date()))]
    np.testing.assert_allclose(in_segment["pit"].to_numpy(), expected.pit[:, 0], rtol=1e-9, atol=1e-12)


def test_every_dependence_model_on_the_etf_data_split_at_2015(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all"
    assert main(["backtest", str(FIT_ETFS), "--split", "2015-01-01", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    verdicts = pd.read_csv(out / "verdicts.csv")
    expected = ["gaussian/normal", "t/normal", "dcc/normal", "fhs/normal", "independent/normal"]
    assert verdicts["model"].tolist() == [*expected, "iid_normal", "iid_t", "bootstrap_returns"]
    assert "tested on 2015-01-02..2019-12-31 (1,258 days" in printed
    table = pd.read_csv(out / "validation.csv")
    assert set(table["check"]) == {"var", "pit", "window"}
    assert table["passed"].dtype == bool
    # docs/backtest.md: "fitted to 2001-2014 and tested on the calm 2015-2019, every normal-law model
    # over-predicted risk": fewer days beyond each model's one-day 95% VaR than the 62.9 expected, for every
    # series and mix (16 to 52 here), and no model passes the split as a whole
    daily = table[(table.check == "var") & (table.horizon == "1d") & (table.statistic == "var95")]
    assert len(daily) == 8 * 6 and set(daily.expected_exceedances.round(2)) == {62.9}
    assert (daily.exceedances < daily.expected_exceedances).all(), daily[["model", "series", "exceedances"]]
    assert set(verdicts["verdict"]) == {"fails"} and (verdicts["failed_at_threshold"] >= 1).all()
    assert (out / "report.html").is_file() and (out / "figures" / "pit.png").is_file()
    assert (out / "pits.csv").is_file()


def test_same_numbers_whatever_the_workers_and_the_report_redraws(shared_data: Path, tmp_path: Path) -> None:
    tables = []
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}"
        args = ["backtest", str(FIT_ETFS), "--split", "2016-01-01", "--models", "fhs,dcc", *SMALL]
        assert main([*args, "--n-jobs", str(n_jobs), "--out", str(out), "-q"]) == 0
        tables.append((out / "validation.csv").read_bytes())
    assert tables[0] == tables[1]
    figure = (tmp_path / "jobs1" / "figures" / "pit.svg").read_bytes()
    (tmp_path / "jobs1" / "report.html").unlink()
    assert main(["report", str(tmp_path / "jobs1")]) == 0
    assert (tmp_path / "jobs1" / "report.html").is_file()
    assert (tmp_path / "jobs1" / "figures" / "pit.svg").read_bytes() == figure


def test_backtest_report_renders_in_chromium_offline(shared_data: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.test_report import _browser, _not_blank, _open_offline

    binary, driver_path = _browser()
    out = tmp_path / "page"
    args = ["backtest", str(FIT_ETFS), "--split", "2016-01-01", "--models", "fhs,iid_t", *SMALL]
    assert main([*args, "--out", str(out), "-q"]) == 0
    driver = _open_offline(binary, driver_path)
    try:
        driver.get((out / "report.html").as_uri())  # type: ignore[attr-defined]
        found = [s.get_attribute("id") for s in driver.find_elements(By.TAG_NAME, "section")]  # type: ignore[attr-defined]
        assert found == ["summary", "validation", "var", "pit", "window", "warnings"]
        images = driver.find_elements(By.CSS_SELECTOR, "figure img")  # type: ignore[attr-defined]
        assert len(images) == 2
        for image in images:
            driver.execute_script("arguments[0].scrollIntoView();", image)  # type: ignore[attr-defined]
            assert _not_blank(image.screenshot_as_png), image.get_attribute("alt")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
        assert errors == [], errors
    finally:
        driver.quit()  # type: ignore[attr-defined]


def test_a_failed_var_check_is_named_with_whole_hits() -> None:
    # the table keeps counts as floats (a column shared with missing values); the summary line shows them whole
    from mcalloc.backtest.tables import _label

    row = pd.Series(
        {
            "check": "var",
            "statistic": "var99",
            "horizon": "1d",
            "series": "intl",
            "exceedances": 102.0,
            "expected_exceedances": 30.24,
            "conditional_coverage_p": 1.2e-15,
        }
    )
    assert _label(row) == "var99 1d intl: 102 hits vs 30.2 expected (p=1.2e-15)"


def test_a_swedish_backtest_checks_the_krona_investors_mixes(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the mixes were dollar portfolios of the US ETFs, under the names mcalloc run gives the krona investor's;
    # they are now in krona, and a benchmark wholly in the S&P 500 is checked as the S&P 500 in krona
    sweden = ROOT / "configs" / "examples" / "sweden_fit.yaml"
    out = tmp_path / "sek"
    # with a baseline too: the scenario's lead-lag loadings have nothing to act on in one, and were refused
    models = ["--models", "fhs,iid_normal"]
    argv = ["backtest", str(sweden), "--split", "2015-01-01", *models, *SMALL, "--out", str(out), "-q"]
    assert main(argv) == 0
    validation = pd.read_csv(out / "validation.csv")
    assert set(validation.dependence) == {"fhs", "iid_normal"}
    validation = validation[validation.dependence == "fhs"]
    window = validation[validation.check == "window"]
    assert {"sp500_only", "us_80_20", "mix_60_20_20", "fx_usd"} <= set(window.series)
    realised = window[window.statistic == "cum_return"].set_index("series")["realised"]
    # the data's own closes: 2014-12-31 to 2019-12-31, the dollar's price in krona from the ECB's rates, on the
    # days the ETFs traded; held through the window, a unit of each grows by the product of the two
    closes = {
        name: pd.read_csv(shared_data / f"{name}.csv", index_col="Date", parse_dates=True)["Close"]
        for name in ("SPY", "IWM")
    }
    growth = {name: series.loc["2019-12-31"] / series.loc["2014-12-31"] for name, series in closes.items()}
    assert realised["sp500"] == pytest.approx(growth["SPY"] - 1.0, rel=1e-9)
    krona = 1.0 + realised["fx_usd"]
    assert realised["sp500_only"] == pytest.approx(growth["SPY"] * krona - 1.0, rel=1e-9)
    assert realised["sp500_only"] > realised["sp500"]  # the dollar rose against the krona in 2015-2019
    # runs lists it as what it is: load and compare refuse a backtest, report reads it
    assert main(["runs", str(tmp_path)]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith(f"{out} ")]
    assert " complete " in row and row.rstrip().endswith("a backtest")


def test_a_stressed_scenario_backtests_every_model_and_auto_laws_are_named_auto(
    simulated_scenario: Path, tmp_path: Path
) -> None:
    # the stress is the gaussian copula's; fhs has no correlation to stress, and was refused in the name of a
    # --marginals no one gave; under marginals.kind auto the rows were labelled with model.marginals.dist
    out = tmp_path / "stressed"
    split = _split(simulated_scenario.parent)
    settings = ["model.factor=null", "model.dependence.stress.correlation_blend=0.3", "model.marginals.kind=auto"]
    options = ["--models", "gaussian,fhs,iid_normal", "--draws", "100", "--out", str(out), "-q"]
    sets = [part for setting in [*settings, "simulation.n_paths=100"] for part in ("--set", setting)]
    assert main(["backtest", str(simulated_scenario), "--split", split, *options, *sets]) == 0
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert sorted(verdicts["model"]) == ["fhs/auto", "gaussian/auto", "iid_normal"]
    table = pd.read_csv(out / "validation.csv")
    assert set(table.loc[table["dependence"] == "fhs", "marginals"]) == {"auto"}
    warnings = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["warnings"]
    stress = [w for w in warnings if "without the scenario's correlation stress" in w]
    assert len(stress) == 1 and stress[0].startswith("fhs: ")


def test_a_refit_interval_is_refused_only_when_no_split_would_refit() -> None:
    from mcalloc.backtest.evaluate import check_refits
    from mcalloc.errors import ConfigError

    index = pd.bdate_range("2000-01-03", periods=2000)
    # 1,131 test days: 52 months apart leaves a second segment of 39 days, 53 a stub of 18 that joins the first
    firsts = {"early": 2000 - 1131, "late": 2000 - 400}
    assert len(BacktestPlan(("early",), 52).segments(firsts["early"], 2000)) == 2
    check_refits(BacktestPlan(("early", "late"), 52), index, firsts)
    check_refits(BacktestPlan(("early", "late"), None), index, firsts)
    with pytest.raises(ConfigError, match=r"split early, 1,131 days .* 53 months .* give at most 52"):
        check_refits(BacktestPlan(("early", "late"), 53), index, firsts)
    with pytest.raises(ConfigError, match=r"holds 1 month of .* drop --refit-every$"):
        check_refits(BacktestPlan(("short",), 1), index, {"short": 2000 - 30})
