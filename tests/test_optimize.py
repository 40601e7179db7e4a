"""The optimiser against closed forms, its own measures, a grid of mixes and the textbook linear programs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mcalloc.config.optimize_schema import Objective
from mcalloc.errors import InfeasibleError
from mcalloc.metrics import cvar
from mcalloc.optimize import Feasible, Scenarios, Solvers
from mcalloc.optimize.cutting import tail_mass
from mcalloc.optimize.drawdown import DrawdownProgram
from mcalloc.optimize.objectives import Context, objective_measure, solve_objective
from mcalloc.optimize.run import _grid_best
from pydantic import TypeAdapter
from scipy import stats

MEAN = np.array([0.008, 0.009, 0.006])
COVARIANCE = np.array([[1.0, 0.85, 0.7], [0.85, 1.5, 0.6], [0.7, 0.6, 1.2]]) * 0.045**2
LONG_ONLY = Feasible(np.zeros(3), np.ones(3))
WIDE = Feasible(np.full(3, -2.0), np.full(3, 3.0))


def monthly_scenarios(n_paths: int, n_months: int, seed: int = 0) -> Scenarios:
    """Normal monthly simple returns (growth factors), i.i.d. over months and paths."""
    rng = np.random.default_rng(seed)
    returns = rng.multivariate_normal(MEAN, COVARIANCE, size=(n_paths, n_months))
    return Scenarios((1.0 + returns).astype(np.float32), 1)


def objective(**fields: object) -> Objective:
    return TypeAdapter(Objective).validate_python(fields)  # type: ignore[no-any-return]


def context(feasible: Feasible = LONG_ONLY) -> Context:
    return Context(feasible, Solvers(), 0.02, ("a", "b", "c"))


def test_min_variance_equals_the_analytic_solution() -> None:
    # unconstrained (wide bounds): w = C^-1 1 / 1' C^-1 1 with C the scenarios' own pooled covariance
    scenarios = monthly_scenarios(400, 60)
    result = solve_objective(objective(kind="min_variance"), scenarios, context(WIDE), None, "x", "")
    inverse = np.linalg.inv(scenarios.monthly_covariance())
    analytic = inverse.sum(axis=1) / inverse.sum()
    np.testing.assert_allclose(result.weights, analytic, atol=1e-6)
    # the reported objective is the one volatility of the mix, computed independently
    assert result.objective_value == pytest.approx(scenarios.volatility(result.weights), rel=1e-6)


def test_max_sharpe_is_the_tangency_portfolio() -> None:
    # w = C^-1 (mu - rf) / 1' C^-1 (mu - rf) (e.g. Cornuejols and Tutuncu 2007, section 8.2), sample moments
    scenarios = monthly_scenarios(400, 60, seed=1)
    result = solve_objective(objective(kind="max_sharpe", risk_free=0.02), scenarios, context(WIDE), None, "x", "")
    mean = 12.0 * scenarios.monthly_mean()
    excess = np.linalg.solve(12.0 * scenarios.monthly_covariance(), mean - 0.02)
    np.testing.assert_allclose(result.weights, excess / excess.sum(), atol=1e-5)
    sharpe = (scenarios.mean_return(result.weights) - 0.02) / scenarios.volatility(result.weights)
    assert result.objective_value == pytest.approx(sharpe, rel=1e-6)


def test_min_cvar_on_normal_scenarios_is_min_variance_at_the_same_target_and_the_normal_formula() -> None:
    # one period of normal returns: for elliptical returns every risk measure that grows with the
    # standard deviation has the same frontier, so min CVaR at a binding return floor gives the
    # min-variance weights, and its CVaR is -mu'w + sigma_p phi(z_alpha) / (1 - alpha)
    # (Rockafellar and Uryasev 2000, section 3). 200,000 scenarios: the tail mean's error is about 0.5%
    n = 200_000
    scenarios = monthly_scenarios(n, 1, seed=2)
    floor = 12.0 * 0.0085
    cvar_objective = objective(kind="min_cvar", alpha=0.95, form="uncompounded")
    # wide bounds: long-only, the floor and a zero weight would pin both to one point whatever they minimise
    result = solve_objective(cvar_objective, scenarios, context(WIDE), floor, "x", "")
    variance = solve_objective(objective(kind="min_variance"), scenarios, context(WIDE), floor, "x", "")
    unconstrained = solve_objective(objective(kind="min_variance"), scenarios, context(WIDE), None, "x", "")
    # the floor binds, far from the unconstrained minimum (0.2 away), and the two meet within the
    # sampling error of the CVaR's tail (0.01 apart at this seed)
    assert scenarios.mean_return(result.weights) == pytest.approx(floor, rel=1e-4)
    assert np.abs(result.weights - unconstrained.weights).max() > 0.15
    np.testing.assert_allclose(result.weights, variance.weights, atol=0.03)
    w = result.weights
    sigma = math.sqrt(w @ COVARIANCE @ w)
    normal = -MEAN @ w + sigma * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05
    assert result.objective_value == pytest.approx(normal, rel=0.02)


KINDS = [
    {"kind": "min_variance"},
    {"kind": "mean_variance", "risk_aversion": 4.0},
    {"kind": "max_sharpe"},
    {"kind": "risk_parity"},
    {"kind": "min_cvar", "alpha": 0.95},
    {"kind": "min_cvar", "alpha": 0.9, "form": "uncompounded"},
    {"kind": "min_cdar", "alpha": 0.95},
    {"kind": "min_cvar_maxdd", "alpha": 0.95},
    {"kind": "max_growth", "cvar_limit": 0.24, "maxdd_limit": 0.36},
]


@pytest.mark.parametrize("fields", KINDS, ids=[str(k["kind"]) + str(k.get("form", "")) for k in KINDS])
def test_reported_objective_equals_the_measure_recomputed_and_beats_the_grid(fields: dict[str, object]) -> None:
    scenarios = monthly_scenarios(300, 36, seed=3)
    chosen = objective(**fields)
    result = solve_objective(chosen, scenarios, context(), None, "x", "")
    recomputed = objective_measure(chosen, scenarios, result.weights, 0.02, ("a", "b", "c"))
    assert result.objective_value == pytest.approx(recomputed, rel=1e-6, abs=1e-9)
    assert LONG_ONLY.contains(result.weights, 1e-7)
    # no mix on a 2% simplex grid does better on the same measure (within solver tolerance)
    best, points = _grid_best(chosen, scenarios, context(), None, 0.02)
    # the grid measured on two threads: the same best, exactly
    assert _grid_best(chosen, scenarios, context(), None, 0.02, threads=2) == (best, points) or math.isnan(best)
    if chosen.kind == "risk_parity":
        assert points == 0 and recomputed < 1e-5  # equal risk shares, nothing to search
        return
    assert points == 1326 or (chosen.kind == "max_growth" and 0 < points < 1326)  # the limits rule some out
    better = (
        best - result.objective_value
        if chosen.kind in ("mean_variance", "max_sharpe", "max_growth")
        else (result.objective_value - best)
    )
    assert better <= 1e-7


@pytest.mark.parametrize("measure", ["cdar", "maxdd"])
def test_cutting_planes_match_the_textbook_linear_program(measure: str) -> None:
    # Chekhlov, Uryasev and Zabarankin (2005): one LP with a running-peak variable per path and month
    scenarios = monthly_scenarios(120, 24, seed=4)
    kind = {"cdar": "min_cdar", "maxdd": "min_cvar_maxdd"}[measure]
    ours = solve_objective(objective(kind=kind, alpha=0.9), scenarios, context(), None, "x", "")
    reference = DrawdownProgram(scenarios, measure, 0.9, LONG_ONLY, Solvers(linear="CLARABEL")).solve("x", "")
    assert ours.objective_value == pytest.approx(reference.objective_value, abs=1e-6)
    np.testing.assert_allclose(ours.weights, reference.weights, atol=1e-3)
    assert ours.gap <= 1e-7


def test_tail_mass_gives_the_cvar_exactly() -> None:
    rng = np.random.default_rng(5)
    for n, alpha in ((1000, 0.95), (999, 0.95), (37, 0.9), (5, 0.5001)):
        losses = rng.standard_t(3, n)
        index, mass = tail_mass(losses, alpha)
        assert mass.sum() == pytest.approx(1.0)
        assert mass @ losses[index] == pytest.approx(cvar(losses, alpha), rel=1e-12)


def test_a_mix_that_loses_everything_on_a_path_counts_that_path_among_the_worst() -> None:
    # short positions can take a period's growth to zero or below, where log is not defined: the compounded
    # measures must rank such a path as the worst, not (a NaN) drop it from the tail as if it were the best
    from mcalloc.optimize.cvar import GROWTH_FLOOR, growth_measure, horizon_cvar_measure

    months = (1.0 + np.random.default_rng(7).multivariate_normal(MEAN, COVARIANCE, size=(300, 12))).astype(np.float32)
    months[0, 3, 1] = 2.0  # one month doubles asset b on path 0
    scenarios = Scenarios(months, 1)
    short = np.array([2.5, -1.5, 0.0])  # that month's growth: 2.5 x ~1 - 1.5 x 2 < 0
    assert scenarios.wiped_out(short) == 1
    cvar_value, cvar_gradient = horizon_cvar_measure(scenarios, 0.95).oracle(short)
    growth = scenarios.periods() @ short
    continued = np.log(np.maximum(growth, GROWTH_FLOOR)) + np.minimum(growth - GROWTH_FLOOR, 0.0) / GROWTH_FLOOR
    losses = -continued.sum(axis=1)
    assert losses.argmax() == 0 and losses[0] > 1e5  # the tangent at 1e-6, followed down to a growth of -0.5
    assert cvar_value == pytest.approx(cvar(losses, 0.95), rel=1e-12)
    assert cvar_value > cvar(losses[1:], 0.95) + 1e4
    # covering the short in asset b lowers both measures: their subgradients say so
    growth_value, growth_gradient = growth_measure(scenarios).oracle(short)
    assert np.isfinite(growth_value) and cvar_gradient[1] < 0.0 and growth_gradient[1] < 0.0
    # on mixes that keep every period above the floor the measures are the plain log's, to rounding (the
    # oracle's tail mean is a BLAS dot product, whose order of summation depends on the CPU: on one machine it
    # was equal, on another a unit in the last place off)
    mix = np.array([0.5, 0.2, 0.3])
    assert horizon_cvar_measure(scenarios, 0.95).oracle(mix)[0] == pytest.approx(
        scenarios.horizon_cvar(mix, 0.95), rel=1e-14
    )
    assert -growth_measure(scenarios).oracle(mix)[0] == pytest.approx(scenarios.expected_growth(mix), rel=1e-14)


def test_cuts_that_find_no_mix_within_a_feasible_limit_say_so_without_calling_it_infeasible() -> None:
    # a limit some mix meets (the least-CVaR one does, 2e-3 below it), but too few cuts to reach one: the
    # points found so far missing the limit is no proof that none exists (with SCS, whose points miss by 1e-3
    # at its default accuracy, every run of 300 cuts ended so), and the message must not send the user to
    # loosen a limit that holds
    from mcalloc.optimize.common import SolverFailedError
    from mcalloc.optimize.cutting import CuttingPlane
    from mcalloc.optimize.cvar import growth_measure, horizon_cvar_measure

    scenarios = monthly_scenarios(200, 24, seed=7)
    least = solve_objective(objective(kind="min_cvar"), scenarios, context(), None, "x", "")
    limit = least.objective_value + 2e-3
    mean = scenarios.floor_means()
    limits = [(horizon_cvar_measure(scenarios, 0.95), limit)]

    def plane() -> CuttingPlane:
        start = np.array([0.0, 1.0, 0.0])  # the riskiest asset alone, above the limit
        return CuttingPlane(growth_measure(scenarios), limits, LONG_ONLY, mean, Solvers(), start)

    missed = r"^what: none of the 1 mixes HIGHS found met CVaR95 .* <= [0-9.]+ \(the nearest by .*\), which is not"
    with pytest.raises(SolverFailedError, match=missed + r" proof that no mix does; raise cvar_limit$"):  # HiGHS used
        plane().solve(None, "what", "raise cvar_limit", max_iterations=1)
    solved = plane().solve(None, "what", "raise cvar_limit")
    assert scenarios.horizon_cvar(solved.weights, 0.95) <= limit + 1e-7
    # a frontier's top point: no limits, a floor at the highest mean a mix reaches, which SCS's points miss
    from mcalloc.optimize.run import best_mean_return

    scs = Solvers(linear="SCS")
    top = best_mean_return(scenarios, LONG_ONLY, scs)
    frontier = CuttingPlane(horizon_cvar_measure(scenarios, 0.95), [], LONG_ONLY, mean, scs, LONG_ONLY.start())
    floor = r"^at: none of the 3 mixes SCS found met the return floor [0-9.]+ \(the nearest by .*\).*, which is"
    with pytest.raises(
        SolverFailedError, match=floor + r" not proof that no mix does; use optimize.lp_solver: HIGHS, or x$"
    ):
        frontier.solve(top - 1e-10, "at", "x", max_iterations=3)


def test_risk_parity_inverse_volatility_for_uncorrelated_assets() -> None:
    # uncorrelated assets: equal risk shares means w_i proportional to 1 / sigma_i (Maillard et al. 2010)
    rng = np.random.default_rng(6)
    sigmas = np.array([0.02, 0.04, 0.05])
    returns = rng.normal(0.005, sigmas, size=(2000, 60, 3))
    scenarios = Scenarios((1.0 + returns).astype(np.float32), 1)
    result = solve_objective(objective(kind="risk_parity"), scenarios, context(), None, "x", "")
    covariance = scenarios.monthly_covariance()
    shares = result.weights * (covariance @ result.weights) / (result.weights @ covariance @ result.weights)
    np.testing.assert_allclose(shares, 1 / 3, atol=1e-5)  # the conic solver's tolerance
    inverse = 1 / sigmas
    np.testing.assert_allclose(result.weights, inverse / inverse.sum(), atol=0.01)


def test_constraints_hold_and_infeasible_ones_name_themselves() -> None:
    scenarios = monthly_scenarios(200, 24, seed=7)
    grouped = Feasible(np.zeros(3), np.ones(3), ("a", "b", "c"), (("us", np.array([1.0, 1.0, 0.0]), 0.0, 0.6),))
    result = solve_objective(objective(kind="min_cdar"), scenarios, context(grouped), None, "x", "")
    assert result.weights[:2].sum() <= 0.6 + 1e-7
    current = np.array([1.0, 0.0, 0.0])
    turnover = Feasible(np.zeros(3), np.ones(3), turnover=(current, 0.1))
    result = solve_objective(objective(kind="min_variance"), scenarios, context(turnover), None, "x", "")
    assert np.abs(result.weights - current).sum() / 2 <= 0.1 + 1e-7
    impossible = Feasible(np.zeros(3), np.ones(3), groups=(("us", np.array([1.0, 1.0, 0.0]), 0.0, 0.6),
                                                          ("intl", np.array([0.0, 0.0, 1.0]), 0.0, 0.3)))  # fmt: skip
    with pytest.raises(InfeasibleError, match=r"optimize\.constraints\.groups\.us"):
        solve_objective(objective(kind="min_cvar"), scenarios, context(impossible), None, "what", "hint")
    # the message names what the user set: long-only's 0..1 weights are long_only, not bounds they never wrote
    assert impossible.describe() == (
        "optimize.constraints.long_only, optimize.constraints.groups.us, optimize.constraints.groups.intl"
    )
    assert Feasible(np.array([0.0, 0.0, 0.2]), np.ones(3)).describe() == "optimize.constraints.bounds"
    assert WIDE.describe() == "optimize.constraints.bounds"
    shorting = Feasible(np.full(3, -1.0), np.full(3, 2.0)).describe()
    assert shorting == "optimize.constraints.bounds (-1..2 each, the default without long_only)"
    with pytest.raises(InfeasibleError, match=r"what: no mix meets CVaR95 .* <= 0\.0001.*; raise cvar_limit, or hint"):
        solve_objective(objective(kind="max_growth", cvar_limit=1e-4), scenarios, context(), None, "what", "hint")
    # an objective of log growth needs long_only (the schema refuses it without), so no message sends a user to relax
    # it: with nothing else in play the only advice left is the objective's own limit
    assert LONG_ONLY.describe(long_only_needed=True) == ""
    needing = [objective(kind="max_growth"), objective(kind="risk_parity"), objective(kind="min_cvar")]
    assert all(o.needs_long_only for o in needing)  # min_cvar's form is compounded by default
    free = [objective(kind="min_variance"), objective(kind="min_cvar", form="uncompounded"), objective(kind="min_cdar")]
    assert not any(o.needs_long_only for o in free)
    assert (
        impossible.describe(long_only_needed=True) == "optimize.constraints.groups.us, optimize.constraints.groups.intl"
    )
    with pytest.raises(InfeasibleError, match=r"<= 0\.0001 within the constraints; raise cvar_limit$"):
        solve_objective(objective(kind="max_growth", cvar_limit=1e-4), scenarios, context(), None, "what", "")
    # at most one asset: the best single asset, chosen among all of them
    single = Context(LONG_ONLY, Solvers(), 0.02, ("a", "b", "c"), max_assets=1)
    result = solve_objective(objective(kind="min_variance"), scenarios, single, None, "x", "")
    assert np.count_nonzero(result.weights) == 1
    assert result.weights[0] == pytest.approx(1.0)  # the least volatile asset
    # ... unless another asset has a minimum weight: then only the sets holding it are candidates
    floor_c = Feasible(np.array([0.0, 0.0, 0.2]), np.ones(3), ("a", "b", "c"))
    single = Context(floor_c, Solvers(), 0.02, ("a", "b", "c"), max_assets=1)
    for kind in ("min_variance", "min_cvar"):
        result = solve_objective(objective(kind=kind), scenarios, single, None, "x", "")
        np.testing.assert_allclose(result.weights, [0.0, 0.0, 1.0], atol=1e-9)
        assert floor_c.contains(result.weights)
    pair = Context(floor_c, Solvers(), 0.02, ("a", "b", "c"), max_assets=2)
    result = solve_objective(objective(kind="min_variance"), scenarios, pair, None, "x", "")
    assert floor_c.contains(result.weights, 1e-7) and result.weights[2] >= 0.2 - 1e-7


def test_parametric_scenarios_that_lose_everything_are_refused() -> None:
    from mcalloc.errors import ConfigError
    from mcalloc.optimize.scenarios import parametric

    # a yearly normal return with 100% volatility falls below -100% about one time in six
    with pytest.raises(ConfigError, match=r"optimize\.scenarios: [\d,]+ of the 3,000 drawn asset returns lose 100%"):
        parametric(np.full(3, 0.05), np.eye(3), 1000, 1.0, np.random.default_rng(0))
    assert parametric(np.full(3, 0.05), np.eye(3) * 0.01, 1000, 1.0, np.random.default_rng(0)).n_paths == 1000


def test_a_floor_on_a_subset_of_paths_is_measured_on_all_of_them() -> None:
    # a drawdown objective solves on its first max_path_scenarios paths; min_return is judged on every path
    # (optimization.csv's mean_return_fit), so the subset must be held to the means of all of them
    months = monthly_scenarios(1000, 24, seed=11).months.copy()
    months[:100] *= np.float32(1.003)  # the first paths earn about 3.6% a year more than the rest
    scenarios = Scenarios(months, 1)
    subset = scenarios.subset(slice(0, 100))
    np.testing.assert_array_equal(subset.floor_means(), scenarios.annual_mean())
    assert (subset.annual_mean() - scenarios.annual_mean()).min() > 0.01  # the subset's own means flatter
    lowest = solve_objective(objective(kind="min_cdar"), subset, context(), None, "x", "").weights
    floor = float(scenarios.annual_mean() @ lowest) + 0.004
    for kind in ("min_cdar", "min_cvar", "min_variance"):
        weights = solve_objective(objective(kind=kind), subset, context(), floor, "x", "").weights
        assert float(scenarios.annual_mean() @ weights) >= floor - 1e-7, kind


def test_max_assets_names_a_set_the_solver_failed_on_instead_of_passing_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A solver failure on one set is not proof that the set is infeasible. Injected here, since a real solver
    # fails on demand only for an unsupported problem (below, where every set fails): asset "a" alone, the
    # best single asset above, fails; the best of the others is kept and the failure is named.
    from mcalloc.optimize import objectives
    from mcalloc.optimize.common import SolverFailedError

    scenarios = monthly_scenarios(400, 60)
    real = objectives._solve_on

    def failing_on_a(*args: object) -> object:
        feasible = args[3]
        assert isinstance(feasible, Feasible)
        if feasible.upper.tolist() == [1.0, 0.0, 0.0]:
            raise SolverFailedError("x: no solution (CLARABEL ended with status solver_error); hint")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(objectives, "_solve_on", failing_on_a)
    single = Context(LONG_ONLY, Solvers(), 0.02, ("a", "b", "c"), max_assets=1)
    result = solve_objective(objective(kind="min_variance"), scenarios, single, None, "x", "")
    assert np.count_nonzero(result.weights) == 1 and result.weights[0] == 0.0
    assert result.warnings == ("a: left out of the max_assets search, x: no solution (CLARABEL ended with "
                               "status solver_error); hint",)  # fmt: skip
    monkeypatch.undo()
    # a solver that is not installed fails on every set: that failure is reported, not "no set meets..."
    broken = Context(LONG_ONLY, Solvers(conic="NO_SUCH_SOLVER", fallback=None), 0.02, ("a", "b", "c"), max_assets=1)
    with pytest.raises(SolverFailedError, match="NO_SUCH_SOLVER"):
        solve_objective(objective(kind="min_variance"), scenarios, broken, None, "x", "")


def test_benchmark_script_agrees_with_the_peer_library() -> None:
    # scripts/bench_optimize.py at a small size: its JSON line, and PyPortfolioOpt's min CDaR weights on
    # the peer's own single-path problem within 1e-4 of ours (the target)
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    command = [sys.executable, str(ROOT / "scripts" / "bench_optimize.py"), "--n-paths", "400", "--years", "3"]
    command += ["--grid-step", "0.1", "--peer-months", "240"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["n_paths"] == 400 and line["n_months"] == 36
    assert line["grid_gap"] <= 1e-7
    assert line["peer_weight_diff"] <= 1e-4
    assert abs(line["peer_objective_minus_ours"]) <= 1e-7


def test_published_single_period_example_through_the_command_line(tmp_path: Path) -> None:
    # Rockafellar and Uryasev (2000), Journal of Risk 2(3): min CVaR95 of normal monthly returns at a mean of
    # at least 0.011 is the min-variance portfolio 0.452013 / 0.115573 / 0.432414 with CVaR95 0.1159 (the
    # normal formula, their Table 3). As there, the mean and covariance the scenarios are drawn from are known:
    # min_variance and the return floor use them exactly (weights to 1e-4, the solver's tolerance), and only
    # the CVaR is estimated from the 100,000 sampled scenarios: within 1% (the tail mean's sampling error is
    # about 0.4%), its weights within 0.03 (the minimum is flat: over seeds 1 to 4 they landed 0.001 to
    # 0.025 from the published ones; 0.018 at the example's seed)
    import pandas as pd
    from mcalloc.cli.main import main

    from .conftest import ROOT

    out = tmp_path / "ru"
    assert main(["run", str(ROOT / "configs" / "examples" / "rockafellar_uryasev.yaml"), "-q", "--out", str(out)]) == 0
    weights = pd.read_csv(out / "weights.csv").pivot(index="portfolio", columns="asset", values="weight")
    published = pd.Series({"sp500": 0.452013, "bonds": 0.115573, "small_cap": 0.432414})
    assert (weights.loc["min_cvar_95", published.index] - published).abs().max() < 0.03
    assert (weights.loc["min_variance", published.index] - published).abs().max() < 1e-4
    row = pd.read_csv(out / "optimization.csv").set_index("portfolio").loc["min_cvar_95"]
    assert row["objective_value"] == pytest.approx(0.1159, rel=0.01)
    assert row["mean_return_fit"] >= 0.132 - 1e-9


def test_infeasible_groups_exit_2_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mcalloc.cli.main import main

    from .conftest import DEFAULT_CONFIG

    overrides = [
        "--set", "optimize.constraints.groups={us: {assets: [sp500, russell2000], max: 0.5}, "
        "abroad: {assets: [intl], max: 0.4}}",
        "--set", "simulation.n_paths=200", "--set", "simulation.horizon_years=2",
    ]  # fmt: skip
    code = main(["run", str(DEFAULT_CONFIG), "-q", "--out", str(tmp_path / "x"), *overrides])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "optimize.constraints.groups.us" in err[0] and "optimize.constraints.groups.abroad" in err[0]
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.iterdir())  # found before the run's folder (or its .failed twin) is made
    # `validate` finds it too (a linear program, before any path is simulated); and so with max_assets
    assert main(["validate", str(DEFAULT_CONFIG), *overrides[:2]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optimize.constraints.groups.abroad" in err[0]
    apart = ["--set", "optimize.constraints.bounds={sp500: [0.5, 1], intl: [0.3, 1]}"]
    assert main(["validate", str(DEFAULT_CONFIG), *apart, "--set", "optimize.constraints.max_assets=2"]) == 0
    capsys.readouterr()
    assert main(["validate", str(DEFAULT_CONFIG), *apart, "--set", "optimize.constraints.max_assets=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at most 1 asset (optimize.constraints.max_assets)" in err[0]


def test_frontiers_and_stability_on_known_scenarios() -> None:
    from mcalloc.config import load_scenario
    from mcalloc.optimize import optimise

    from .conftest import DEFAULT_CONFIG

    scenario = load_scenario(DEFAULT_CONFIG, ["optimize.frontier.points=6", "optimize.batches=4"])
    scenarios = monthly_scenarios(1200, 24, seed=8)
    benchmarks = {"sp500_only": np.array([1.0, 0.0, 0.0]), "equal": np.full(3, 1 / 3)}
    result = optimise(scenario, scenarios, benchmarks)
    frontier = result.frontier
    assert set(frontier.frontier.unique()) >= {"sp500", "sp500+russell2000", "sp500+intl", "sp500+russell2000+intl"}
    alone = frontier[(frontier.frontier == "sp500") & (frontier.measure == "volatility")]
    assert len(alone) == 1 and alone.iloc[0]["volatility"] == pytest.approx(
        scenarios.volatility(benchmarks["sp500_only"])
    )
    for measure in ("volatility", "cvar", "cdar", "maxdd"):
        full = frontier[(frontier.frontier == "sp500+russell2000+intl") & (frontier.measure == measure)]
        assert len(full) == 6
        # along a frontier the return rises and so does the minimised risk
        assert np.all(np.diff(full.mean_return) > -1e-9) and np.all(np.diff(full.objective_value) > -1e-9)
        # adding assets can only lower the least risk reachable: the diversification frontiers' ordering
        least = frontier[(frontier.measure == measure) & (frontier.portfolio == "point_0")].set_index("frontier")
        assert least.loc["sp500+russell2000+intl", "objective_value"] <= least["objective_value"].min() + 1e-7
    markers = frontier[frontier.kind != "frontier"]
    assert set(markers.portfolio) == {"sp500_only", "equal", *(p.name for p in result.portfolios)}
    # the drawdown frontiers' axes are what they minimise, for every row: a frontier point's own value is its
    # objective, and no mix, marked or not, reaches below the least risky point of the frontier with all assets
    for measure, column in (("cdar", "cdar_95_uncompounded"), ("maxdd", "maxdd_cvar_95_uncompounded")):
        rows = frontier[frontier.measure == measure]
        np.testing.assert_allclose(rows[column], rows.objective_value, rtol=1e-9)
        least = rows[(rows.frontier == "sp500+russell2000+intl") & (rows.portfolio == "point_0")][column].iloc[0]
        assert (markers[column] >= least - 1e-7).all() and (frontier[column] >= least - 1e-7).all()
    # stability: each weight's spread over 4 batches of 300 paths, each batch solved again on its own paths
    stability = result.stability
    assert set(stability.n_batches) == {4} and set(stability.n_paths_per_batch) == {300}
    parts = scenarios.batches(4)
    assert [part.n_paths for part in parts] == [300] * 4
    least_variance = next(p for p in result.portfolios if p.objective.kind == "min_variance")
    for weights, part in zip(least_variance.batch_weights, parts, strict=True):
        # closed form on the batch's own covariance, w = C^-1 1 / 1' C^-1 1: interior for this law, so
        # long-only does not bind (checked); the full sample's weights, reused, would miss it by 0.008-0.021
        inverse = np.linalg.inv(part.monthly_covariance())
        analytic = inverse.sum(axis=1) / inverse.sum()
        assert analytic.min() > 0.02
        np.testing.assert_allclose(weights, analytic, atol=1e-5)
        assert np.abs(weights - least_variance.result.weights).max() > 5e-3
    # the table's columns are those batches' statistics
    for portfolio in result.portfolios:
        rows = stability[stability.portfolio == portfolio.name]
        np.testing.assert_allclose(rows.weight, portfolio.result.weights, rtol=0, atol=0)
        batches = portfolio.batch_weights
        assert not np.isnan(batches).any()
        np.testing.assert_allclose(rows.batch_mean, batches.mean(axis=0), rtol=0, atol=1e-15)
        np.testing.assert_allclose(rows.batch_sd, batches.std(axis=0, ddof=1), rtol=0, atol=1e-15)
        np.testing.assert_allclose(rows.batch_min, batches.min(axis=0), rtol=0, atol=0)
        np.testing.assert_allclose(rows.batch_max, batches.max(axis=0), rtol=0, atol=0)


def test_what_the_optimiser_could_not_solve_is_named_in_its_warnings() -> None:
    from mcalloc.config import load_scenario
    from mcalloc.optimize import optimise

    from .conftest import DEFAULT_CONFIG

    scenarios = monthly_scenarios(1200, 24, seed=8)
    benchmarks = {"sp500_only": np.array([1.0, 0.0, 0.0])}
    # at most 50% in sp500 and 40% in russell2000: sp500 alone, or with russell2000 alone, cannot be fully invested
    bounds = "optimize.constraints.bounds={sp500: [0, 0.5], russell2000: [0, 0.4]}"
    bounded = load_scenario(DEFAULT_CONFIG, ["optimize.frontier.points=3", bounds])
    result = optimise(bounded, scenarios, benchmarks)
    drawn = set(result.frontier.frontier) - {""}
    assert drawn == {"sp500+intl", "sp500+russell2000+intl"}
    skipped = [w for w in result.warnings if w.startswith("frontier ")]
    assert skipped == [
        f"frontier {label}: not drawn, the weight bounds cannot sum to 1 with only these assets"
        for label in ("sp500", "sp500+russell2000")
    ]
    # a floor at the best mean of all paths: the batches whose own best mean is lower have no solution
    best = float(scenarios.annual_mean().max()) - 1e-6
    floored = load_scenario(
        DEFAULT_CONFIG,
        [
            "optimize.frontier.points=0",
            "optimize.batches=4",
            f"optimize.objectives=[{{kind: min_variance, min_return: {best}}}]",
        ],
    )
    result = optimise(floored, scenarios, benchmarks)
    (portfolio,) = result.portfolios
    unsolved = int(np.isnan(portfolio.batch_weights).any(axis=1).sum())
    assert 1 <= unsolved <= 3
    (note,) = [w for w in result.warnings if "batches" in w]
    assert note.startswith(f"optimize.objectives.0 (min_variance): {unsolved} of 4 batches of paths have no solution")
    assert note.endswith("(a min_return floor is measured on all paths, and a batch's own means can fall short); "
                         f"stability.csv describes the {4 - unsolved} that solved")  # fmt: skip
    assert set(result.stability.n_batches) == {4 - unsolved}
    # one batch is no batches (docs/config.md: 0 or 1, none): stability.csv said 0 batches of 1,000 paths each
    single = load_scenario(DEFAULT_CONFIG, ["optimize.frontier.points=0", "optimize.batches=1"])
    one = optimise(single, scenarios, benchmarks)
    assert set(one.stability.n_batches) == {0} and set(one.stability.n_paths_per_batch) == {0}
    # a CVaR limit at the least CVaR of all paths: the batches whose own least CVaR is higher have no solution,
    # and the warning names the limit, not a floor the objective does not have
    settings = ["optimize.frontier.points=0", "optimize.batches=4"]
    lowest = load_scenario(DEFAULT_CONFIG, [*settings, "optimize.objectives=[{kind: min_cvar}]"])
    limit = float(optimise(lowest, scenarios, benchmarks).portfolios[0].result.objective_value) + 1e-6
    capped = load_scenario(
        DEFAULT_CONFIG, [*settings, f"optimize.objectives=[{{kind: max_growth, cvar_limit: {limit}}}]"]
    )
    result = optimise(capped, scenarios, benchmarks)
    unsolved = int(np.isnan(result.portfolios[0].batch_weights).any(axis=1).sum())
    assert 1 <= unsolved <= 3
    (note,) = [w for w in result.warnings if "batches" in w]
    assert f"{unsolved} of 4 batches of paths have no solution (no mix may meet the objective's limit" in note
    assert "min_return" not in note


def test_a_solution_from_the_fallback_solver_is_named_and_the_configured_ones_are_not() -> None:
    from mcalloc.config import load_scenario
    from mcalloc.optimize import optimise

    from .conftest import DEFAULT_CONFIG

    scenarios = monthly_scenarios(600, 24, seed=4)
    benchmarks = {"sp500_only": np.array([1.0, 0.0, 0.0])}
    quiet = ["optimize.frontier.points=0", "optimize.batches=0", "optimize.grid_step=null"]
    objectives = "optimize.objectives=[{kind: risk_parity}, {kind: min_cdar}, {kind: min_variance}]"
    result = optimise(load_scenario(DEFAULT_CONFIG, [*quiet, objectives]), scenarios, benchmarks)
    assert [p.result.solver for p in result.portfolios] == ["CLARABEL", "HIGHS", "CLARABEL"]
    assert not [w for w in result.warnings if "fallback" in w]
    # OSQP solves quadratic programs only: risk parity's log barrier falls to the fallback (SCS), and says so
    osqp = load_scenario(DEFAULT_CONFIG, [*quiet, "optimize.objectives=[{kind: risk_parity}]", "optimize.solver=OSQP"])
    result = optimise(osqp, scenarios, benchmarks)
    assert result.portfolios[0].result.solver == "SCS"
    assert result.warnings == (
        "optimize.objectives.0 (risk_parity): solved by the fallback solver SCS: optimize.solver OSQP failed on it",
    )


def test_a_mix_that_loses_everything_on_a_path_has_no_log_growth_there() -> None:
    # 20 one-period paths, weights 2 / -1: on path 0 asset a falls 50% while b doubles, so the mix ends at
    # 2 x 0.5 - 1 x 2 = -1: everything lost. Its log growth is undefined there, not a gain left out of the tail
    growth = np.full((20, 1, 2), 1.01)
    growth[0, 0] = [0.5, 2.0]
    scenarios = Scenarios(growth.astype(np.float32), 1)
    weights = np.array([2.0, -1.0])
    assert scenarios.wiped_out(weights) == 1
    log_growth = scenarios.log_growth(weights)
    assert math.isnan(log_growth[0]) and np.isfinite(log_growth[1:]).all()
    assert math.isnan(scenarios.expected_growth(weights)) and math.isnan(scenarios.horizon_cvar(weights, 0.95))
    assert scenarios.wiped_out(np.array([0.5, 0.5])) == 0


def test_optimised_weights_that_wipe_out_paths_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # short positions never rebalanced: mean-variance with little risk aversion leverages the best asset
    # against the worst, and some of the optimiser's own paths lose everything before the horizon
    from mcalloc.cli.main import main

    from .conftest import DEFAULT_CONFIG, one_error_line

    overrides = [
        "portfolio.rebalance=never", "optimize.objectives=[{kind: mean_variance, risk_aversion: 0.5}]",
        "optimize.constraints.long_only=false", "optimize.frontier.points=0", "optimize.batches=0",
        "simulation.n_paths=300", "optimize.n_paths=2000",
    ]  # fmt: skip
    argv = ["run", str(DEFAULT_CONFIG), "-q", "--out", str(tmp_path / "x")]
    assert main([*argv, *(part for o in overrides for part in ("--set", o))]) == 2
    one_error_line(capsys.readouterr(), ("optimize.objectives.0", "lose everything on", "long_only: true"))
    assert not (tmp_path / "x").exists()


def test_without_long_only_the_cvar_frontier_is_left_out_and_said_so(tmp_path: Path) -> None:
    import json

    from mcalloc.cli.main import main

    from .conftest import DEFAULT_CONFIG

    overrides = [
        "optimize.objectives=[{kind: min_variance}]", "optimize.constraints.long_only=false",
        "optimize.constraints.bounds={sp500: [-0.2, 1.2], russell2000: [-0.2, 1.2], intl: [-0.2, 1.2]}",
        "optimize.frontier={points: 3, measures: [volatility, cvar], "
        "diversification: false}", "optimize.batches=0", "simulation.n_paths=300", "optimize.n_paths=1000",
        "output.report=false",
    ]  # fmt: skip
    out = tmp_path / "x"
    assert (
        main(["run", str(DEFAULT_CONFIG), "-q", "--out", str(out), *(p for o in overrides for p in ("--set", o))]) == 0
    )
    import pandas as pd

    frontier = pd.read_csv(out / "frontier.csv")
    assert set(frontier["measure"].dropna()) == {"volatility"}
    warnings = json.loads((out / "manifest.json").read_text())["warnings"]
    assert any("(cvar): not drawn" in w and "lower bound is negative" in w for w in warnings)


def test_a_compounded_cvar_fitted_to_one_period_scenarios_is_not_compared_with_the_horizon(tmp_path: Path) -> None:
    # parametric scenarios are one month each; the evaluation paths' compounded CVaR is of the whole horizon
    import pandas as pd
    from mcalloc.cli.main import main

    from .conftest import ROOT

    out = tmp_path / "ru"
    overrides = [
        "optimize.objectives=[{kind: min_cvar, alpha: 0.95, name: horizon}, {kind: max_growth, name: growth}]",
        "optimize.scenarios.n=2000", "simulation.n_paths=500", "simulation.horizon_years=2", "output.report=false",
    ]  # fmt: skip
    example = ROOT / "configs" / "examples" / "rockafellar_uryasev.yaml"
    assert main(["run", str(example), "-q", "--out", str(out), *(p for o in overrides for p in ("--set", o))]) == 0
    table = pd.read_csv(out / "optimization.csv").set_index("portfolio")
    assert math.isnan(table.loc["horizon", "objective_new_paths"])
    assert math.isnan(table.loc["horizon", "objective_new_paths_se"])
    assert math.isfinite(table.loc["growth", "objective_new_paths"])  # annualised on both sides


def test_weights_a_solver_leaves_a_hair_below_zero_are_zero_and_still_sum_to_one() -> None:
    from dataclasses import replace

    from mcalloc.optimize.objectives import _tidy

    growth = np.random.default_rng(1).normal(1.005, 0.04, (200, 12, 3))
    scenarios = Scenarios(growth.astype(np.float32), 1)
    objective = TypeAdapter(Objective).validate_python({"kind": "min_variance"})
    context = Context(LONG_ONLY, Solvers(), 0.0, ("a", "b", "c"))
    result = solve_objective(objective, scenarios, context, None, "test", "relax")
    noisy = replace(result, weights=np.array([0.6, 0.4 + 2.7e-10, -2.7e-10]))
    tidied = _tidy(noisy).weights
    assert tidied[2] == 0.0 and not np.signbit(tidied[2])
    assert tidied.sum() == pytest.approx(1.0, abs=1e-15)


def test_parametric_scenarios_keep_their_known_moments_in_every_part() -> None:
    # the moments the draws come from, not the draws' own (a subset, a stability batch, the volatility)
    from mcalloc.optimize.scenarios import parametric

    mean, covariance = MEAN, COVARIANCE  # monthly
    scenarios = parametric(mean, covariance, 5000, 12.0, np.random.default_rng(3))
    assert np.abs(scenarios.months[:, 0, :].mean(axis=0) - 1.0 - mean).max() > 1e-4  # the draws' own differ
    for part in (scenarios, scenarios.subset(slice(0, 100)), scenarios.batches(2)[1]):
        np.testing.assert_array_equal(part.monthly_mean(), mean)
        np.testing.assert_array_equal(part.monthly_covariance(), covariance)
    weights = np.array([0.5, 0.2, 0.3])
    assert scenarios.volatility(weights) == pytest.approx(math.sqrt(12.0 * weights @ covariance @ weights), rel=1e-12)


def test_max_assets_blames_the_floor_a_mix_of_more_assets_could_meet() -> None:
    # every mix clears the floor check (the best mix's mean), but no single asset does: the floor is named
    scenarios = monthly_scenarios(400, 60)
    means = scenarios.annual_mean()
    best_single = float(means.max())
    single = Context(LONG_ONLY, Solvers(), 0.02, ("a", "b", "c"), max_assets=1)
    found = solve_objective(objective(kind="min_variance"), scenarios, single, best_single - 1e-6, "x", "")
    assert np.count_nonzero(found.weights) == 1
    floor = best_single + 1e-3
    expected = (
        f"x: min_return needs a mean return of {floor:.4f} a year, and mixes of at most 1 asset reach at most "
        f"{best_single:.4f}; lower min_return or raise optimize.constraints.max_assets"
    )
    with pytest.raises(InfeasibleError) as refused:
        solve_objective(objective(kind="min_variance"), scenarios, single, floor, "x", "")
    assert str(refused.value) == expected
    # a floor every asset meets is not blamed for the objective's own limit
    growth = objective(kind="max_growth", cvar_limit=0.001)
    with pytest.raises(InfeasibleError) as limited:
        solve_objective(growth, scenarios, single, float(means.min()) - 0.01, "x", "")
    assert "raise cvar_limit" in str(limited.value) and "min_return" not in str(limited.value)
    assert str(limited.value).endswith("(with mixes of at most 1 asset; or raise optimize.constraints.max_assets)")
    # a risk-free rate no single asset beats is named, not the constraints (it sent users to the bounds)
    rate = best_single + 1e-3
    with pytest.raises(InfeasibleError) as tangency:
        solve_objective(
            objective(kind="max_sharpe", risk_free=rate), scenarios, single, None, "optimize.objectives.0 (x)", ""
        )
    assert str(tangency.value) == (
        f"optimize.objectives.0 (x): mixes of at most 1 asset reach a mean return of at most {best_single:.4f} a "
        f"year, not above the risk-free rate {rate:.4f}, so their tangency portfolio (max_sharpe) does not exist; set "
        f"optimize.objectives.0.risk_free below {best_single:.4f} or raise optimize.constraints.max_assets"
    )


def test_the_summarys_grid_gap_reads_0_within_rounding_of_the_objective() -> None:
    # its last digits are the machine's: the default run's read -2.2e-16 on one machine and -4.4e-16 on another
    from mcalloc.cli.main import _grid_gap

    assert _grid_gap(-4.4e-16, 1.2006) == _grid_gap(2.2e-16, 0.6486) == _grid_gap(0.0, 0.8) == "0"
    assert _grid_gap(-2.1e-07, 0.1603) == "-2.1e-07"
    assert _grid_gap(3e-12, 1.0) == "+3.0e-12" and _grid_gap(3e-11, 100.0) == "0"
    assert _grid_gap(float("nan"), 1.0) == "-"
