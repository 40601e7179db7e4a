"""Bad input gets one clear line from the CLI: exit code 2, no traceback.

Each case builds a broken scenario from ``configs/default.yaml`` (or a broken
data file, or a broken command line), runs the real ``mcalloc`` entry point
in-process and checks that stderr is a single ``mcalloc: error:`` line naming
the offending key path, file or row. ``run`` cases also check that no folder
with the final results name, and no manifest saying ``complete``, was left
behind. ``run`` cases pass ``-q`` so that stderr holds only the error, not the
progress lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcalloc.cli.main import main

from .conftest import one_error_line, write_default_variant

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
ASSETS = ("sp500", "russell2000", "intl")


@dataclass(frozen=True)
class Case:
    """One bad invocation and what its error line must contain."""

    argv: list[str]
    expected: tuple[str, ...]
    out: Path | None = None
    failed_manifest: bool = False


RawScenario = dict[str, Any]
Mutation = Callable[[RawScenario], None]


def _write_scenario(tmp_path: Path, mutate: Mutation) -> Path:
    return write_default_variant(tmp_path, mutate)


def _validate(mutate: Mutation, *expected: str) -> Callable[[Path], Case]:
    def build(tmp_path: Path) -> Case:
        return Case(["validate", str(_write_scenario(tmp_path, mutate))], expected)

    return build


def _run_argv(config: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(config), "-q", "--out", str(out), *extra]


def _write_prices(path: Path, closes: list[str]) -> Path:
    dates = [f"2019-01-{day:02d}" for day in range(2, 2 + len(closes))]
    rows = [f"{date},{close}" for date, close in zip(dates, closes, strict=True)]
    path.write_text("\n".join(["Date,Close", *rows]) + "\n", encoding="utf-8")
    return path


def _fit_from(paths: dict[str, Path]) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["data"] = {"kind": "prices", "paths": {name: str(path) for name, path in paths.items()}}
        data["model"]["source"] = "fit"
        data["model"]["marginals"]["params"] = None
        data["model"]["dependence"]["correlation"] = None
        data["model"]["dependence"]["residuals"] = None
        data["model"]["factor"]["loadings"] = None
        data["model"]["mean_uncertainty"] = {"years": "data", "series": None, "covariance": None}

    return mutate


# --- config cases (validate) ------------------------------------------------


def _unknown_top_level(data: RawScenario) -> None:
    data["simulations"] = {"n_paths": 100}


def _unknown_nested(data: RawScenario) -> None:
    data["simulation"]["n_pahts"] = data["simulation"].pop("n_paths")


def _n_paths_wrong_type(data: RawScenario) -> None:
    data["simulation"]["n_paths"] = "many"


def _n_paths_negative(data: RawScenario) -> None:
    data["simulation"]["n_paths"] = -5


def _horizon_zero(data: RawScenario) -> None:
    data["simulation"]["horizon_years"] = 0


def _steps_per_year_low(data: RawScenario) -> None:
    data["simulation"]["steps_per_year"] = 11


def _targeting_misspelt(data: RawScenario) -> None:
    data["model"]["marginals"]["variance_targeting"] = "likely"


def _tied_targeting_with_ar1(data: RawScenario) -> None:
    data["model"]["marginals"].update(variance_targeting="likelihood", mean="ar1")


def _correlation_not_pd(data: RawScenario) -> None:
    data["model"]["dependence"]["correlation"] = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]


def _correlation_not_symmetric(data: RawScenario) -> None:
    data["model"]["dependence"]["correlation"] = [[1.0, 0.5, 0.4], [0.6, 1.0, 0.3], [0.4, 0.3, 1.0]]


def _correlation_ragged(data: RawScenario) -> None:
    data["model"]["dependence"]["correlation"] = [[1.0, 0.5, 0.4], [0.5, 1.0], [0.4, 0.3, 1.0]]


def _correlation_wrong_size(data: RawScenario) -> None:
    data["model"]["dependence"]["correlation"] = [[1.0, 0.5], [0.5, 1.0]]


def _benchmark_sum(data: RawScenario) -> None:
    data["portfolio"]["benchmarks"]["us_80_20"] = {"sp500": 0.8, "russell2000": 0.1}


def _benchmark_unknown_asset(data: RawScenario) -> None:
    data["portfolio"]["benchmarks"]["us_80_20"] = {"sp500": 0.8, "nasdaq": 0.2}


def _bounds_cannot_sum(data: RawScenario) -> None:
    data["optimize"]["constraints"]["bounds"] = {name: [0.0, 0.2] for name in ASSETS}


def _bound_minimums_add_above_one(data: RawScenario) -> None:
    data["optimize"]["constraints"]["bounds"] = {"sp500": [0.6, 1.0], "intl": [0.6, 1.0]}


def _short_bound_minimums_add_above_one(data: RawScenario) -> None:
    data["optimize"]["constraints"]["long_only"] = False
    data["optimize"]["constraints"]["bounds"] = {"sp500": [1.5, 2.0], "intl": [0.6, 1.0]}


def _bound_min_above_max(data: RawScenario) -> None:
    data["optimize"]["constraints"]["bounds"] = {"sp500": [0.5, 0.2]}


def _min_return_unknown_benchmark(data: RawScenario) -> None:
    data["optimize"]["objectives"][0]["min_return"] = "benchmark:nope"


def _non_stationary(data: RawScenario) -> None:
    # 0.1 + 0.2/2 + 0.85 = 1.05
    data["model"]["marginals"]["params"]["russell2000"].update(alpha=0.1, gamma=0.2, beta=0.85)


def _t_without_nu(data: RawScenario) -> None:
    data["model"]["marginals"]["params"]["intl"]["dist"] = "t"  # and no nu


# --- cases that need files or the command line --------------------------------


def _yaml_syntax_error(tmp_path: Path) -> Case:
    path = tmp_path / "broken.yaml"
    path.write_text("name: default\nseed: 1\ndescription: a: b\nassets: []\n", encoding="utf-8")
    return Case(["validate", str(path)], (f"{path}:3",))


def _scenario_missing(tmp_path: Path) -> Case:
    path = tmp_path / "nope.yaml"
    return Case(["validate", str(path)], (str(path), "not found"))


def _set_without_equals(tmp_path: Path) -> Case:
    return Case(["validate", str(DEFAULT_CONFIG), "--set", "simulation.n_paths"], ("--set", "simulation.n_paths"))


def _key_with_a_line_break(tmp_path: Path) -> Case:
    # YAML's "\r" is a real carriage return in the key: the message shows it escaped, on one line
    return Case(
        ["validate", str(DEFAULT_CONFIG), "--set", 'simulation.start={"a\\rb": 1}'],
        ("simulation.start.a\\rb", "unknown key"),
    )


def _extends_missing(tmp_path: Path) -> Case:
    path = tmp_path / "child.yaml"
    path.write_text("extends: missing_parent.yaml\nname: child\n", encoding="utf-8")
    return Case(["validate", str(path)], (f"{path}:1", "extends", "missing_parent.yaml"))


def _data_file_missing(tmp_path: Path, command: str = "run") -> Case:
    good = _write_prices(tmp_path / "good.csv", ["100", "101", "102", "103"])
    missing = tmp_path / "no_such_prices.csv"
    config = _write_scenario(tmp_path, _fit_from({"sp500": good, "russell2000": missing, "intl": good}))
    return _reading(command, config, tmp_path, str(missing), "not found")


def _csv_bad_price(tmp_path: Path, command: str = "run") -> Case:
    good = _write_prices(tmp_path / "good.csv", ["100", "101", "102", "103"])
    # the header is line 1, so the third data row is line 4
    broken = _write_prices(tmp_path / "broken.csv", ["100", "101", "n/a?", "103"])
    config = _write_scenario(tmp_path, _fit_from({"sp500": good, "russell2000": broken, "intl": good}))
    return _reading(command, config, tmp_path, str(broken), "line 4")


def _reading(command: str, config: Path, tmp_path: Path, *expected: str) -> Case:
    """A ``run`` of ``config``, or its ``validate``, which reads the same files first."""
    if command == "validate":
        return Case(["validate", str(config)], expected)
    out = tmp_path / "out"
    return Case(_run_argv(config, out), expected, out=out)


_SMALL_ONE_WORKER = (
    "--set",
    "simulation.n_paths=200",
    "--set",
    "simulation.horizon_years=1",
    "--set",
    "simulation.n_jobs=1",
)
"""A run small enough to reach the optimiser in a second or two, on one worker."""


def _min_return_infeasible(tmp_path: Path) -> Case:
    def mutate(data: RawScenario) -> None:
        # 50% a year is beyond any mix of these equity indices
        data["optimize"]["objectives"][0]["min_return"] = 0.5

    config = _write_scenario(tmp_path, mutate)
    out = tmp_path / "out"
    argv = _run_argv(config, out, *_SMALL_ONE_WORKER)
    return Case(argv, ("optimize.objectives.0", "min_return"), out=out, failed_manifest=True)


def _risk_free_above_every_mix(objective: dict[str, object], key: str) -> Callable[[Path], Case]:
    """max_sharpe with a risk-free rate that no mix of these equities beats: the rate is named, not the bounds."""

    def build(tmp_path: Path) -> Case:
        def mutate(data: RawScenario) -> None:
            data["optimize"]["objectives"] = [objective]
            data["portfolio"]["risk_free"] = 0.45

        config = _write_scenario(tmp_path, mutate)
        out = tmp_path / "out"
        expected = (
            "optimize.objectives.0 (max_sharpe)",
            f"{key} is",
            "no mix beats the risk-free rate",
            f"set {key} below",
        )
        return Case(_run_argv(config, out, *_SMALL_ONE_WORKER), expected, out=out, failed_manifest=True)

    return build


def _progress_every_negative(tmp_path: Path) -> Case:
    out = tmp_path / "out"
    return Case(_run_argv(DEFAULT_CONFIG, out, "--progress-every", "-1"), ("--progress-every", "0 or more"), out=out)


def _portfolio(**values: object) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["portfolio"].update(values)

    return mutate


def _negative_trading_cost(data: RawScenario) -> None:
    data["assets"][1]["trading_cost_bps"] = -5


def _costs_with_daily_rebalancing(data: RawScenario) -> None:
    data["assets"][0]["trading_cost_bps"] = 5
    data["portfolio"]["rebalance"] = "daily"


def _compare_in_with_a_base_currency_asset(data: RawScenario) -> None:
    data["currency"] = {"base": "USD", "compare_in": "SEK"}


def _risk_parity_with_floor(data: RawScenario) -> None:
    data["optimize"]["objectives"] = [{"kind": "risk_parity", "min_return": 0.05}]


def _grid_step_not_dividing_one(data: RawScenario) -> None:
    data["optimize"]["grid_step"] = 0.3


def _report_portfolio_unknown(data: RawScenario) -> None:
    data["output"]["report_portfolios"] = ["sp500_only", "nosuch"]


def _ter_in_model_too_high(data: RawScenario) -> None:
    data["assets"][2]["ter_in_model"] = 0.5


def _flows(*flows: dict[str, object]) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["portfolio"]["flows"] = list(flows)

    return mutate


def _isk(**values: object) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["tax"] = {"kind": "isk", "isk": values}
        data["currency"] = {"base": "SEK"}

    return mutate


def _isk_in_dollars(data: RawScenario) -> None:
    data["tax"] = {"kind": "isk"}


def _depot_rebalanced_daily(data: RawScenario) -> None:
    data["tax"] = {"kind": "depot"}
    data["currency"] = {"base": "SEK"}
    data["portfolio"]["rebalance"] = "daily"


def _depot_with_short_positions(data: RawScenario) -> None:
    data["tax"] = {"kind": "depot"}
    data["currency"] = {"base": "SEK"}
    data["optimize"]["constraints"]["long_only"] = False
    data["optimize"]["objectives"] = [{"kind": "min_variance"}]


def _dollar_funds(fx: dict[str, str]) -> Mutation:
    def mutate(data: RawScenario) -> None:
        for asset in data["assets"]:
            asset["currency"] = "USD"
        data["currency"] = {"base": "SEK", "fx": fx}

    return mutate


def _dollar_funds_in(base: str) -> Mutation:
    def mutate(data: RawScenario) -> None:
        _dollar_funds({"USD": "builtin:ecb:USD/SEK"})(data)
        data["currency"]["base"] = base

    return mutate


def _optimize(**values: object) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["optimize"].update(values)

    return mutate


CASES = [
    pytest.param(
        _validate(_optimize(objectives=[{"kind": "risk_parity", "budgets": {"sp500": 1.0}}]), "budgets", "russell2000"),
        id="risk-parity-budget-missing",
    ),
    pytest.param(
        _validate(_optimize(n_paths=20, batches=50), "optimize.batches", "fewer than 2 paths"), id="batches-too-many"
    ),
    pytest.param(_validate(_optimize(grid_step=0.001), "optimize.grid_step", "0.02"), id="grid-step-too-fine"),
    pytest.param(_validate(_isk(tax_rate=1.5), "tax.isk.tax_rate", "less than or equal to 1"), id="tax-rate-above-1"),
    pytest.param(
        _validate(_dollar_funds({"USD": "builtin:ecb:SEK/USD"}), "currency.fx.USD", "builtin:ecb:USD/SEK"),
        id="fx-rate-inverted",
    ),
    pytest.param(
        _validate(_dollar_funds({"USD": "builtin:ecb:USD/NOK"}), "currency.fx.USD", "one USD in SEK"),
        id="fx-rate-in-another-currency",
    ),
    pytest.param(
        _validate(_dollar_funds_in("NOK"), "currency.fx.USD", "builtin:ecb:USD/NOK"), id="fx-rate-of-another-base"
    ),
    pytest.param(
        # ISO 4217's XXX: no ECB pair to suggest, so the message asks for a file
        _validate(_dollar_funds_in("XXX"), "currency.fx.USD", "the ECB rates have no XXX", "file"),
        id="fx-rate-the-ecb-lacks",
    ),
    pytest.param(
        _validate(_dollar_funds({"USD": "builtin:ecb:USD/SEK", "EUR": "builtin:ecb:EUR/SEK"}), "currency.fx.EUR"),
        id="fx-rate-for-no-asset",
    ),
    pytest.param(_validate(_isk(tax_rate=-0.1), "tax.isk.tax_rate"), id="tax-rate-negative"),
    pytest.param(_validate(_isk_in_dollars, "tax.kind", "SEK"), id="isk-not-in-sek"),
    pytest.param(
        _validate(_depot_rebalanced_daily, "tax.kind", "daily rebalancing"), id="depot-with-daily-rebalancing"
    ),
    pytest.param(
        _validate(_depot_with_short_positions, "optimize.constraints.long_only", "depot", "short positions"),
        id="depot-with-short-positions",
    ),
    pytest.param(
        _validate(
            _flows({"kind": "contribution", "amount": -500}), "portfolio.flows.0.amount", "greater than or equal"
        ),
        id="negative-contribution",
    ),
    pytest.param(
        _validate(
            _flows({"kind": "contribution", "amount": 500}, {"kind": "withdrawal", "amount": 100, "currency": "SEK"}),
            "portfolio.flows.1.currency",
            "base currency",
        ),
        id="flow-in-another-currency",
    ),
    pytest.param(
        _validate(_flows({"kind": "contribution", "percent": 0.04}), "portfolio.flows.0.percent", "withdrawals"),
        id="contribution-as-a-percent",
    ),
    pytest.param(
        _validate(_flows({"kind": "withdrawal"}), "portfolio.flows.0.amount", "exactly one"),
        id="flow-without-a-size",
    ),
    pytest.param(
        _validate(_portfolio(band={"kind": "absolute", "width": -0.05}), "portfolio.band.width", "greater than 0"),
        id="band-narrower-than-zero",
    ),
    pytest.param(
        _validate(_portfolio(band={"width": 0.05}, rebalance="never"), "portfolio.band", "calendar"),
        id="band-without-a-calendar",
    ),
    pytest.param(
        _validate(_portfolio(reference="nasdaq_only"), "portfolio.reference", "not a benchmark"),
        id="reference-not-a-benchmark",
    ),
    pytest.param(_validate(_portfolio(courtage=-1), "portfolio.courtage"), id="courtage-negative"),
    pytest.param(
        _validate(_portfolio(rebalance="flows"), "portfolio.rebalance", "portfolio.flows"),
        id="flows-rebalancing-no-flows",
    ),
    pytest.param(_validate(_negative_trading_cost, "assets.1.trading_cost_bps"), id="trading-cost-negative"),
    pytest.param(
        _validate(_costs_with_daily_rebalancing, "portfolio.rebalance", "daily"), id="trading-costs-with-daily"
    ),
    pytest.param(_validate(_ter_in_model_too_high, "assets.2.ter_in_model"), id="ter-in-model-out-of-range"),
    pytest.param(
        _validate(_risk_parity_with_floor, "optimize.objectives.0.min_return", "risk_parity"), id="risk-parity-floor"
    ),
    pytest.param(_validate(_grid_step_not_dividing_one, "optimize.grid_step", "divide"), id="grid-step-not-dividing"),
    pytest.param(
        _validate(_report_portfolio_unknown, "output.report_portfolios", "'nosuch'"), id="report-portfolio-unknown"
    ),
    pytest.param(
        _validate(_compare_in_with_a_base_currency_asset, "currency.compare_in", "sp500"), id="compare-in-wrong-assets"
    ),
    pytest.param(_validate(_unknown_top_level, "simulations", "unknown key"), id="unknown-top-level-key"),
    pytest.param(_validate(_unknown_nested, "simulation.n_pahts", "unknown key"), id="unknown-nested-key"),
    pytest.param(_validate(_n_paths_wrong_type, "simulation.n_paths", "'many'"), id="n-paths-wrong-type"),
    pytest.param(_validate(_n_paths_negative, "simulation.n_paths"), id="n-paths-negative"),
    pytest.param(_validate(_horizon_zero, "simulation.horizon_years"), id="horizon-years-zero"),
    pytest.param(_validate(_steps_per_year_low, "simulation.steps_per_year"), id="steps-per-year-below-12"),
    pytest.param(
        _validate(_targeting_misspelt, "model.marginals.variance_targeting", "'omega' or 'likelihood'"),
        id="variance-targeting-misspelt",
    ),
    pytest.param(
        _validate(_tied_targeting_with_ar1, "model.marginals.variance_targeting", "mean ar1", "omega"),
        id="tied-targeting-with-an-ar1-mean",
    ),
    pytest.param(
        _validate(_correlation_not_pd, "model.dependence.correlation", "positive definite"),
        id="correlation-not-positive-definite",
    ),
    pytest.param(
        _validate(_correlation_not_symmetric, "model.dependence.correlation", "symmetric"),
        id="correlation-not-symmetric",
    ),
    pytest.param(
        _validate(_correlation_ragged, "model.dependence.correlation", "square"), id="correlation-ragged-rows"
    ),
    pytest.param(
        _validate(_correlation_wrong_size, "model.dependence.correlation", "2x2"), id="correlation-wrong-size"
    ),
    pytest.param(_validate(_benchmark_sum, "portfolio.benchmarks.us_80_20", "sum to 1"), id="benchmark-weights-sum"),
    pytest.param(
        _validate(_benchmark_unknown_asset, "portfolio.benchmarks.us_80_20", "nasdaq"), id="benchmark-unknown-asset"
    ),
    pytest.param(
        _validate(_bounds_cannot_sum, "optimize.constraints.bounds", "maximums add to 0.6", "intl 0.2", "raise them"),
        id="bounds-cannot-sum-to-one",
    ),
    pytest.param(
        # both bounds that take part are named, whichever line the error points at
        _validate(_bound_minimums_add_above_one, "minimums add to 1.2 (sp500 0.6, intl 0.6)", "lower them"),
        id="bound-minimums-add-above-one",
    ),
    pytest.param(
        # with shorts an unlisted asset's default minimum, -1, counts in the sum and is named with it
        _validate(
            _short_bound_minimums_add_above_one, "minimums add to 1.1 (sp500 1.5, russell2000 -1 (default), intl 0.6)"
        ),
        id="short-bound-minimums-add-above-one",
    ),
    pytest.param(
        _validate(_bound_min_above_max, "optimize.constraints.bounds.sp500", "above max"), id="bound-min-above-max"
    ),
    pytest.param(
        _validate(_min_return_unknown_benchmark, "optimize.objectives", "benchmark:nope"),
        id="min-return-unknown-benchmark",
    ),
    pytest.param(_validate(_non_stationary, "model.marginals.params.russell2000", "stationary"), id="non-stationary"),
    pytest.param(_validate(_t_without_nu, "model.marginals.params", "nu"), id="student-t-without-nu"),
    pytest.param(_yaml_syntax_error, id="yaml-syntax-error"),
    pytest.param(_scenario_missing, id="scenario-file-missing"),
    pytest.param(_set_without_equals, id="set-without-equals"),
    pytest.param(_extends_missing, id="extends-missing-file"),
    pytest.param(_key_with_a_line_break, id="key-with-a-line-break"),
    pytest.param(_data_file_missing, id="run-data-file-missing"),
    pytest.param(_csv_bad_price, id="run-csv-bad-price"),
    pytest.param(lambda tmp_path: _data_file_missing(tmp_path, "validate"), id="validate-data-file-missing"),
    pytest.param(lambda tmp_path: _csv_bad_price(tmp_path, "validate"), id="validate-csv-bad-price"),
    pytest.param(_min_return_infeasible, id="run-min-return-infeasible"),
    pytest.param(_progress_every_negative, id="run-progress-every-negative"),
    pytest.param(
        _risk_free_above_every_mix({"kind": "max_sharpe"}, "portfolio.risk_free"), id="run-risk-free-above-every-mix"
    ),
    pytest.param(
        _risk_free_above_every_mix({"kind": "max_sharpe", "risk_free": 0.45}, "optimize.objectives.0.risk_free"),
        id="run-objective-risk-free-above-every-mix",
    ),
]


def _complete_manifests(root: Path) -> list[Path]:
    found = []
    for manifest in root.rglob("manifest.json"):
        if json.loads(manifest.read_text(encoding="utf-8")).get("status") == "complete":
            found.append(manifest)
    return found


@pytest.mark.parametrize("build", CASES)
def test_bad_input_is_one_clear_line(
    build: Callable[[Path], Case], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = build(tmp_path)

    code = main(case.argv)

    line = one_error_line(capsys.readouterr(), case.expected)
    assert "(top level)" not in line, line
    assert code == 2, line
    assert _complete_manifests(tmp_path) == []
    if case.out is not None:
        assert not case.out.exists()
    if case.failed_manifest:
        assert case.out is not None
        manifest = json.loads((case.out.parent / f"{case.out.name}.failed" / "manifest.json").read_text())
        assert manifest["status"] == "failed"


def test_default_config_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DEFAULT_CONFIG)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{DEFAULT_CONFIG}: ok (default, 3 assets)\n"
    # validate reads the residual file and builds the model, so it warns as a run does: the S&P 500's
    # GJR model has no finite fourth moment (docs/models.md), and nothing else
    warnings = captured.err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("mcalloc: warning: sp500 "), captured.err
    assert "fourth moment" in warnings[0]


def test_a_sweep_given_to_validate_or_a_missing_folder_to_report_says_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = ROOT / "configs" / "sweeps" / "horizon_x_smallcaps.yaml"
    assert main(["validate", str(sweep)]) == 2
    one_error_line(capsys.readouterr(), (str(sweep), "a sweep file", "mcalloc batch"))
    assert main(["report", str(tmp_path / "nope")]) == 2
    one_error_line(capsys.readouterr(), ("nope: no such folder",))


def test_places_that_cannot_be_read_or_written_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a data path that is a folder; a batch folder where a file is; a batch whose index.csv is a folder
    # (the first run completes, then the index cannot be written: one line, no temporary file left);
    # a report whose figures/ is a file
    from .conftest import DEFAULT_CONFIG, ROOT

    fit = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    assert main(["validate", str(fit), "--set", f"data.paths.sp500={tmp_path}"]) == 2
    one_error_line(capsys.readouterr(), (str(tmp_path), "is a folder, not a data file", "data.paths"))
    blocked = tmp_path / "a_file"
    blocked.write_text("x", encoding="utf-8")
    tiny = ["--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=1", "--set", "optimize.objectives=[]"]
    tiny += ["--set", "output.report=false", "--set", "output.paths=false"]
    assert main(["batch", str(DEFAULT_CONFIG), "--out", str(blocked), *tiny]) == 2
    one_error_line(capsys.readouterr(), (str(blocked), "the batch folder cannot be made", "--out"))
    out = tmp_path / "batch"
    (out / "index.csv").mkdir(parents=True)
    assert main(["batch", str(DEFAULT_CONFIG), "--out", str(out), *tiny]) == 2
    captured = capsys.readouterr()  # the batch logs its runs to stderr first; the error is the last line
    assert "Traceback" not in captured.err and captured.err.splitlines()[-1].startswith("mcalloc: error:")
    assert f"{out}: the batch index cannot be written" in captured.err.splitlines()[-1]
    assert not list(out.glob(".index.*.tmp"))
    run = tmp_path / "run"
    assert main(["run", str(DEFAULT_CONFIG), "--out", str(run), "-q", *tiny]) == 0
    (run / "figures").write_text("in the way", encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    one_error_line(capsys.readouterr(), (str(run / "figures"), "cannot be made"))
    # a folder where the page goes: the figures were swapped in, then the page's move failed (exit 1)
    (run / "figures").unlink()
    (run / "report.html").mkdir()
    assert main(["report", str(run)]) == 2
    one_error_line(capsys.readouterr(), (str(run / "report.html"), "a folder of that name is in the way", "move it"))
    assert [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != ".report.lock"] == []


def test_a_report_that_cannot_replace_its_page_keeps_the_earlier_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an immutable report.html: the new figures had replaced the old before the page's move failed, which
    # ended as an unexpected error (exit 1) with the old figures left in .figures.old
    import subprocess

    from .conftest import DEFAULT_CONFIG

    tiny = ["--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=1", "--set", "optimize.objectives=[]"]
    run = tmp_path / "run"
    assert main(["run", str(DEFAULT_CONFIG), "--out", str(run), "-q", *tiny, "--set", "simulation.n_jobs=1"]) == 0
    before = {path.name: path.read_bytes() for path in (run / "figures").iterdir()}
    capsys.readouterr()
    page = run / "report.html"
    if subprocess.run(["chattr", "+i", str(page)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system that supports it)")
    try:
        assert main(["report", str(run)]) == 2
        one_error_line(capsys.readouterr(), (str(page), "cannot be written", "make the folder writable"))
    finally:
        subprocess.run(["chattr", "-i", str(page)], check=True)
    assert {path.name: path.read_bytes() for path in (run / "figures").iterdir()} == before
    assert [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != ".report.lock"] == []


def test_output_places_are_refused_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # compare used to print its whole table, and fit its whole report, before refusing the place to write
    fit = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    blocked = tmp_path / "afile"
    blocked.write_text("x", encoding="utf-8")
    tiny = ["--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=1", "--set", "optimize.objectives=[]"]
    tiny += ["--set", "output.report=false", "--set", "output.paths=false", "--set", "simulation.n_jobs=1"]
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, run in enumerate(runs):
        assert main(["run", str(DEFAULT_CONFIG), "--out", str(run), "-q", "--seed", str(seed), *tiny]) == 0
    capsys.readouterr()
    # a link in --out's place: the finished folder replaced the link after the whole run, which then failed
    # (exit 1) leaving a complete-looking folder there; a dangling one failed only after the run
    link, dangling = tmp_path / "latest", tmp_path / "dangling"
    link.symlink_to(runs[0], target_is_directory=True)
    dangling.symlink_to(tmp_path / "nowhere")
    refused = [
        (["run", str(DEFAULT_CONFIG), "--out", str(link), *tiny], (str(link), "is a symbolic link", "--out")),
        (["run", str(DEFAULT_CONFIG), "--out", str(dangling), *tiny], (str(dangling), "is a symbolic link")),
        (["compare", *map(str, runs), "--out", str(dangling)], (str(dangling), "is a symbolic link", "--out")),
        (["compare", *map(str, runs), "--out", str(blocked)], (str(blocked), "not an mcalloc comparison folder")),
        (["compare", *map(str, runs), "--out", str(blocked / "sub")], (f"{blocked} is a file, not a folder",)),
        (
            ["compare", *map(str, runs), "--csv", str(blocked / "c.csv")],
            ("--csv", f"{blocked} is a file, not a folder"),
        ),
        (["fit", str(fit), "--csv", str(tmp_path)], ("--csv", "a folder; give a file name")),
        (["fit", str(fit), "--calibration-csv", str(blocked / "c.csv")], ("--calibration-csv", "is a file, not a")),
        (["calibrate", str(fit), "--out", str(blocked / "c.yaml")], ("--out", f"{blocked} is a file, not a folder")),
        # run printed its first log line, then refused the place; a data file not there left a .failed folder
        (["run", str(DEFAULT_CONFIG), "--out", str(blocked / "x"), *tiny], (f"{blocked} is a file, not a folder",)),
        (["run", str(DEFAULT_CONFIG), "--out", str(blocked), *tiny], (str(blocked), "not an mcalloc results folder")),
        (
            ["run", str(fit), "--set", f"data.paths.sp500={tmp_path / 'none.csv'}", "--set", f"output.dir={tmp_path}"],
            ("none.csv: data file not found; check data.paths.sp500",),
        ),
    ]
    for argv, expected in refused:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "", argv
        one_error_line(captured, expected)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "afile", "b", "dangling", "latest"]
    assert link.is_symlink() and link.resolve() == runs[0].resolve() and (runs[0] / "manifest.json").is_file()


def test_an_error_keeps_a_no_break_space_and_escapes_what_breaks_a_line() -> None:
    from mcalloc.errors import DataError

    # "my data.csv" with a no-break space is a real file name; U+2028 and NEL split lines like "\n" does
    message = str(DataError("/tmp/my\xa0data.csv: line 3\nbad\u2028cell\x85end\u200b"))
    assert message == "/tmp/my\xa0data.csv: line 3\\nbad\\u2028cell\\x85end\\u200b"
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["run", str(DEFAULT_CONFIG), "--seed", "abc"],
            "mcalloc run: error: argument --seed: invalid int value: 'abc'",
        ),
        (["run", str(DEFAULT_CONFIG), "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
        (["data", "frob"], "mcalloc data: error: argument ACTION: invalid choice: 'frob'"),
        (["run"], "the following arguments are required: config"),
    ],
)
def test_command_line_argument_errors_are_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse's own errors printed the usage block first: five lines where the rest of mcalloc gives one
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and err.rstrip().endswith("--help`")


def test_validate_refuses_what_run_refuses_about_output_dir_and_warns_about_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # output.dir naming a file: run refused it (telling the user to change an --out they never gave), validate
    # said ok; both now name output.dir
    blocker = tmp_path / "afile"
    blocker.write_text("hi\n", encoding="utf-8")
    for command in (["validate"], ["run", "-q"]):
        assert main([*command, str(DEFAULT_CONFIG), "--set", f"output.dir={blocker}"]) == 2
        line = one_error_line(capsys.readouterr(), (f"output.dir {blocker}: {blocker} is a file, not a folder",))
        assert "set output.dir to a folder" in line
    # a scenario no machine here can hold: run refuses it, validate says so (another machine may have the memory)
    huge = ["--set", "simulation.n_paths=100000000", "--set", "simulation.horizon_years=100"]
    assert main(["validate", str(DEFAULT_CONFIG), *huge]) == 0
    err = capsys.readouterr().err
    assert "mcalloc: warning: simulation.n_paths: the run needs about" in err
    assert main(["run", str(DEFAULT_CONFIG), *huge, "--out", str(tmp_path / "big")]) == 2
    assert "GB is available" in capsys.readouterr().err and not (tmp_path / "big").exists()


def test_the_repositorys_scenarios_named_outside_a_clone_say_where_they_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # README's `mcalloc run configs/default.yaml`, typed by a user of an installed package (pip install):
    # "check the path" left them looking for a file no install has
    monkeypatch.chdir(tmp_path)
    assert main(["run", "configs/default.yaml"]) == 2
    one_error_line(
        capsys.readouterr(),
        ("configs/default.yaml: scenario file not found", "come with mcalloc's repository, not with an installed"),
    )
    # in a clone (a configs/ folder here), a misspelt name is only a wrong path
    (tmp_path / "configs").mkdir()
    assert main(["run", "configs/defualt.yaml"]) == 2
    line = one_error_line(capsys.readouterr(), ("configs/defualt.yaml: scenario file not found; check the path",))
    assert "repository" not in line
