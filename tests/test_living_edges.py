"""Edges of living a portfolio along the paths: ratios without a denominator, costs on an emptied book,
flows outside the horizon, withholding on krona funds, one-path runs."""

from __future__ import annotations

from pathlib import Path

import mcalloc
import numpy as np
import pytest
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.pipeline import account_tax

from .conftest import DEFAULT_CONFIG, ROOT, one_error_line

SMALL = {
    "simulation__n_paths": 500,
    "simulation__chunk_size": 250,
    "simulation__horizon_years": 2,
    "output__report": False,
    "output__paths": False,
}


# two almost riskless assets (variance 1e-10 percent squared a day): 8% a year and 0%
STEADY = """
name: steady
seed: 1
assets: [{name: a, ter: 0.0}, {name: b, ter: 0.0}]
model:
  source: calibrated
  marginals:
    kind: garch
    dist: normal
    mean: constant
    params:
      a: {mu: 0.030539645461865884, omega: 1.0e-10, alpha: 0.0, beta: 0.0}
      b: {mu: 0.0, omega: 1.0e-10, alpha: 0.0, beta: 0.0}
  dependence: {kind: independent}
simulation: {n_paths: 50, horizon_years: 2, chunk_size: 50, n_jobs: 1, start: {kind: unconditional}}
portfolio:
  rebalance: annual
  initial_wealth: 100000
  benchmarks: {a_only: {a: 1.0}, half: {a: 0.5, b: 0.5}}
optimize: {objectives: []}
output: {report: false, paths: false}
"""


@pytest.fixture
def steady(tmp_path: Path) -> Path:
    path = tmp_path / "steady.yaml"
    path.write_text(STEADY, encoding="utf-8")
    return path


def test_a_sortino_with_no_year_below_the_risk_free_rate_is_empty_not_a_failed_run(
    steady: Path, tmp_path: Path
) -> None:
    # no year falls below a risk-free rate of 0, so the downside deviation is 0: the run completes, sortino empty
    run = mcalloc.run(steady, out=tmp_path / "run")
    assert run.manifest["status"] == "complete"
    metrics = run.metrics.set_index("portfolio")
    assert metrics["sortino"].isna().all()
    assert metrics.loc["a_only", "cagr_median"] == pytest.approx(0.08, abs=1e-4)
    assert metrics.loc["half", "cagr_median"] == pytest.approx(0.04, abs=2e-4)
    loaded = mcalloc.load(run.folder)
    assert loaded.metrics["sortino"].isna().all()


def test_a_flat_courtage_never_takes_an_emptied_book_below_nothing(tmp_path: Path) -> None:
    # 5,000 a month out of 100,000 empties most paths within two years; each later rebalance still "costs" 1
    overrides = ["optimize.objectives=[]", "portfolio.courtage=1", "portfolio.flows=[{kind: withdrawal, amount: 5000}]"]
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=overrides, **SMALL)
    metrics = run.metrics.set_index("portfolio")
    assert (metrics["prob_depleted"] > 0.5).all()
    assert (metrics["terminal_wealth_p05"] >= 0).all()
    numbers = metrics.drop(columns=["sharpe", "sortino"]).select_dtypes("number")
    assert np.isfinite(numbers.to_numpy()).all()


def test_a_flow_that_never_happens_is_refused_or_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ends that round to one month: a plan that can never pay; refused
    flow = "{kind: withdrawal, amount: 10, start_year: 0.01, end_year: 0.02}"
    assert main(["validate", str(DEFAULT_CONFIG), "--set", f"portfolio.flows=[{flow}]"]) == 2
    one_error_line(capsys.readouterr(), ("portfolio.flows.0", "round to the same month"))
    # one that starts after the horizon may be meant (a sweep over horizons): the run says it never happens
    late = ["optimize.objectives=[]", "portfolio.flows=[{kind: contribution, amount: 1000, start_year: 5}]"]
    run = mcalloc.run(DEFAULT_CONFIG, out=tmp_path / "run", overrides=late, **SMALL)
    assert any(
        w.startswith("portfolio.flows.0: starts in year 5, at or after the end of the 2 simulated years")
        for w in run.manifest["warnings"]
    )
    assert (run.metrics["invested_mean"] == 100_000).all()
    # inside the horizon, but rounded to its last month: said with that month (it read "after the 2 years")
    from mcalloc.scenario_warnings import unsaid_warnings

    almost = load_scenario(
        DEFAULT_CONFIG, [*late[:1], "portfolio.flows=[{kind: contribution, amount: 1, start_year: 9.96}]"]
    )
    assert any(
        w.startswith("portfolio.flows.0: starts in year 9.96 (month 120, to the nearest month), at or after the end")
        for w in unsaid_warnings(almost)
    )
    # a percent withdrawal grows with wealth: an indexation was accepted and ignored (a stop-53 hunt)
    flow = "{kind: withdrawal, percent: 0.04, indexation: 0.02}"
    assert main(["validate", str(DEFAULT_CONFIG), "--set", f"portfolio.flows=[{flow}]"]) == 2
    one_error_line(capsys.readouterr(), ("portfolio.flows.0.indexation", "drop indexation, or give an amount"))


@pytest.mark.parametrize(("start_year", "month"), [(0.125, 2), (0.375, 5), (0.625, 8), (0.875, 11), (0.0833, 1)])
def test_a_flow_s_start_rounds_to_the_nearest_month_a_half_up(start_year: float, month: int) -> None:
    # Python's round took halves to the even month: 0.375 years started in month 4, 0.875 in month 10
    from mcalloc.config.sections import FlowConfig

    flow = FlowConfig(kind="contribution", amount=1.0, start_year=start_year, end_year=start_year + 1.0)
    assert flow.month_span(10) == (month, month + 12)


def test_an_isk_withholds_foreign_tax_only_on_funds_priced_abroad() -> None:
    # docs/config.md: the US treaty's 15% on the dividends of funds priced in another currency than the krona
    example = ROOT / "configs" / "examples" / "isk_vs_depot.yaml"
    scenario = load_scenario(example, ["assets.2.currency=SEK", "currency.fx={USD: builtin:ecb:USD/SEK}"])
    tax = account_tax(scenario)
    assert tax is not None
    yields = np.array([asset.dividend_yield for asset in scenario.assets]) / 12.0
    assert tax.monthly_yield is not None  # type: ignore[union-attr]
    np.testing.assert_allclose(tax.monthly_yield, [yields[0], yields[1], 0.0])  # type: ignore[union-attr]
    # a fund's domicile, not its currency, decides: an Irish fund priced in USD has nothing withheld from the
    # account, a US fund priced in SEK has
    overrides = ["assets.0.withheld_abroad=false", "assets.2.withheld_abroad=true"]
    domiciled = account_tax(
        load_scenario(
            example, [*overrides[:1], "assets.2.currency=SEK", *overrides[1:], "currency.fx={USD: builtin:ecb:USD/SEK}"]
        )
    )
    assert domiciled is not None
    np.testing.assert_allclose(domiciled.monthly_yield, [0.0, yields[1], yields[2]])  # type: ignore[union-attr]
    # without an ISK it does nothing, and is said to
    from mcalloc.scenario_warnings import unsaid_warnings

    depot = load_scenario(example, ["tax.kind=depot", overrides[0]])
    assert "assets.0.withheld_abroad: decides an ISK's foreign withholding, and tax.kind is depot" in " ".join(
        unsaid_warnings(depot)
    )


@pytest.mark.parametrize("seed", [4, 10])
def test_an_isk_chunk_that_owes_no_tax_reports_zeros(tmp_path: Path, seed: int) -> None:
    # near the ISK's free amount, with accumulating funds, some chunks of paths owe no tax at all. Such a chunk
    # once dropped its taxes: the run stopped (KeyError, first chunk untaxed: seed 4) or kept uninitialised memory
    # for those paths (taxes_mean 1e217 SEK or negative: seed 10)
    import pandas as pd

    config = tmp_path / "isk_near_allowance.yaml"
    example = ROOT / "configs" / "examples" / "isk_vs_depot.yaml"
    config.write_text(
        f"extends: {example}\n"
        "assets:\n"
        "  - {name: sp500, ter: 0.000945, ter_in_model: 0.000945, currency: USD}\n"
        "  - {name: russell2000, ter: 0.0019, ter_in_model: 0.0019, currency: USD}\n"
        "  - {name: intl, ter: 0.0032, ter_in_model: 0.0032, currency: USD}\n"
        "simulation: {n_paths: 200, chunk_size: 10, horizon_years: 3, n_jobs: 1}\n"
        "portfolio: {initial_wealth: 180000, flows: [], rebalance: annual}\n"
        "output: {report: false, paths: true}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert main(["run", str(config), "--seed", str(seed), "--out", str(out), "-q"]) == 0
    paths = pd.read_parquet(out / "paths.parquet").sort_values(["portfolio", "path"])
    metrics = pd.read_csv(out / "metrics.csv").set_index("portfolio")
    for name, part in paths.groupby("portfolio"):
        taxes = part["taxes_paid"].to_numpy()
        chunk_most = taxes.reshape(-1, 10).max(axis=1)
        assert (chunk_most == 0).any() and (chunk_most > 0).any()  # the case this test is about
        assert np.all(np.isfinite(taxes)) and taxes.min() >= 0.0
        assert metrics.loc[name, "taxes_mean"] == pytest.approx(taxes.mean(), rel=1e-9)


def test_one_path_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DEFAULT_CONFIG), "--set", "simulation.n_paths=1"]) == 2
    one_error_line(capsys.readouterr(), ("simulation.n_paths",))
