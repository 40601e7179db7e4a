"""The simulation's recursions: plain-loop oracles, and arch's own filtered variances as reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mcalloc.config.model_schema import StartConfig
from mcalloc.models import FittedMarginal, GaussianCopula, JointModel, MarginalSpec, RecursionPlan, SimulationState

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def mixed_marginals() -> list[FittedMarginal]:
    gjr = {"mu": 0.03, "omega": 0.02, "alpha": 0.02, "gamma": 0.15, "beta": 0.88, "nu": 6.5}
    egarch = {"mu": 0.02, "omega": 0.004, "alpha": 0.14, "gamma": -0.12, "beta": 0.975, "nu": 7.0, "skew": -0.15}
    return [
        FittedMarginal("gjr", "gjr_garch", "t", "constant", gjr),
        FittedMarginal("egarch", "egarch", "skewt", "sample", egarch),
        FittedMarginal(
            "garch_ar", "garch", "normal", "ar1", {"mu": 0.01, "phi": -0.06, "omega": 0.03, "alpha": 0.08, "beta": 0.9}
        ),
        FittedMarginal("egarch_ar", "egarch", "normal", "ar1", egarch | {"phi": 0.1}),
        FittedMarginal("zero", "gjr_garch", "normal", "zero", gjr | {"mu": 0.0}),
    ]


def loop_oracle(m: FittedMarginal, shocks: np.ndarray, variance: float, last: float) -> list[float]:
    """One path of one series, written out from the model's equations (percent in, decimal out)."""
    p = m.params
    returns = []
    for z in shocks:
        e = math.sqrt(variance) * z
        r = p.get("mu", 0.0) + e
        if m.mean == "ar1":
            r = p["mu"] + p["phi"] * last + e
        returns.append(r / 100)
        last = r
        if m.kind == "egarch":
            variance = math.exp(
                p["omega"] + p["alpha"] * (abs(z) - SQRT_2_OVER_PI) + p["gamma"] * z + p["beta"] * math.log(variance)
            )
        else:
            variance = p["omega"] + (p["alpha"] + p.get("gamma", 0.0) * (e < 0)) * e * e + p["beta"] * variance
    return returns


def test_mixed_recursions_match_explicit_loops_across_blocks() -> None:
    marginals = mixed_marginals()
    plan = RecursionPlan.from_marginals(marginals)
    rng = np.random.default_rng(11)
    n_paths, n_assets = 3, len(marginals)
    shocks = rng.standard_normal((n_paths, 40, n_assets))
    start_variance = np.array([0.9, 1.3, 0.7, 2.0, 1.1])
    start_return = np.array([0.0, 0.0, -1.5, 0.8, 0.0])
    state = SimulationState(np.tile(start_variance, (n_paths, 1)), np.tile(start_return, (n_paths, 1)))
    # two blocks (25 then 15 days) continue the same paths through the state
    first = plan.simulate(shocks[:, :25].copy(), state)
    second = plan.simulate(shocks[:, 25:].copy(), state)
    simulated = np.concatenate([first, second], axis=1)
    for path in range(n_paths):
        for column, m in enumerate(marginals):
            expected = loop_oracle(m, shocks[path, :, column], start_variance[column], start_return[column])
            np.testing.assert_allclose(simulated[path, :, column], expected, rtol=1e-11, atol=1e-15)


def test_joint_model_in_place_and_grouped_paths_agree() -> None:
    # all-GARCH models run on the full arrays in place; the same series inside a mixed model run on copies
    marginals = mixed_marginals()
    joint = JointModel(tuple(marginals), GaussianCopula(np.eye(5)), StartConfig(kind="vol", vol_ann=0.2))
    alone = JointModel((marginals[0],), GaussianCopula(np.eye(1)), StartConfig(kind="vol", vol_ann=0.2))
    shocks = np.random.default_rng(5).standard_normal((4, 30, 5))
    mixed = joint._plan.simulate(shocks.copy(), joint.initial_state(4))
    single = alone._plan.simulate(shocks[:, :, :1].copy(), alone.initial_state(4))
    np.testing.assert_array_equal(mixed[:, :, 0], single[:, :, 0])


REFERENCE_MODELS = [
    ("gjr_garch", "t", "constant"),
    ("egarch", "normal", "ar1"),
    ("garch", "skewt", "zero"),
    ("egarch", "skewt", "sample"),
]


@pytest.fixture(scope="module")
def sp500_returns() -> pd.Series:
    from arch.data import sp500

    prices = sp500.load()["Adj Close"]
    return np.log(prices).diff().dropna().iloc[-2500:]


@pytest.mark.parametrize(("kind", "dist", "mean"), REFERENCE_MODELS)
def test_recursions_reproduce_arch_filtered_variances(
    kind: str, dist: str, mean: str, sp500_returns: pd.Series
) -> None:
    """Reference: arch's own filter. Feeding arch's standardised residuals to our recursion
    must give back the data and arch's conditional variances; our state after the last day
    must be arch's one-step forecast (ARCHModelResult.forecast(horizon=1))."""
    from arch import arch_model

    fitted = MarginalSpec(kind, dist, mean).fit(sp500_returns, "sp500")  # type: ignore[arg-type]
    percent = sp500_returns.to_numpy() * 100
    target = percent - (percent.mean() if mean == "sample" else 0.0)
    model = arch_model(
        target,
        mean={"constant": "Constant", "ar1": "AR", "zero": "Zero", "sample": "Zero"}[mean],  # type: ignore[arg-type]
        lags=1 if mean == "ar1" else 0,
        vol="EGARCH" if kind == "egarch" else "GARCH",
        p=1,
        o=0 if kind == "garch" else 1,
        q=1,
        dist=dist,  # type: ignore[arg-type]
        rescale=False,
    )
    # our estimates in arch's order (the mean's, the volatility's, the law's)
    keys = [k for k in ("mu", "phi", "omega", "alpha", "gamma", "beta", "nu", "skew") if k in fitted.params]
    if mean in ("zero", "sample"):
        keys.remove("mu")
    reference = model.fix([fitted.params[k] for k in keys])
    variance = np.asarray(reference.conditional_volatility) ** 2
    z = np.asarray(reference.std_resid)
    first = 1 if mean == "ar1" else 0
    plan = RecursionPlan.from_marginals([fitted])
    state = SimulationState(np.array([[variance[first]]]), np.array([[percent[first - 1] if first else 0.0]]))
    simulated = plan.simulate(z[None, first:, None].copy(), state)[0, :, 0] * 100
    np.testing.assert_allclose(simulated, percent[first:], rtol=1e-9, atol=1e-9)
    forecast = float(reference.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
    assert fitted.last_variance == pytest.approx(forecast, rel=1e-6)
    assert state.variance[0, 0] == pytest.approx(forecast, rel=1e-6)
    assert fitted.max_variance == pytest.approx(variance[first:].max(), rel=1e-6)


def test_variance_ceiling_caps_every_day_and_is_inert_below_it() -> None:
    # a GJR series hit by a run of large negative shocks would pass 10x its starting variance;
    # with a ceiling of 2 x max_variance the variance after every day stays at or below the cap,
    # and on paths that never reach it the returns are exactly those without a ceiling
    params = {"mu": 0.0, "omega": 0.02, "alpha": 0.02, "gamma": 0.3, "beta": 0.9}
    capped = FittedMarginal("a", "gjr_garch", "normal", "zero", params, max_variance=2.0)
    plan = RecursionPlan.from_marginals([capped], ceiling_multiple=2.0)
    free = RecursionPlan.from_marginals([capped])
    shocks = np.full((2, 60, 1), -3.0)
    shocks[1] = 0.1  # a calm path that never reaches the cap
    state = SimulationState(np.full((2, 1), 1.0), np.zeros((2, 1)))
    returns = plan.simulate(shocks.copy(), state)
    # returns are sigma_t z_t / 100: sigma_t^2 never exceeds the cap of 4.0 (percent squared)
    implied_variance = (returns[0, :, 0] * 100 / -3.0) ** 2
    assert implied_variance.max() <= 4.0 + 1e-12 and implied_variance.max() == pytest.approx(4.0)
    assert state.variance[0, 0] <= 4.0 + 1e-12
    free_state = SimulationState(np.full((2, 1), 1.0), np.zeros((2, 1)))
    uncapped = free.simulate(shocks.copy(), free_state)
    assert uncapped[0, :, 0].min() < returns[0, :, 0].min()
    np.testing.assert_array_equal(returns[1], uncapped[1])
