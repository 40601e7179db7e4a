"""Model settings in the scenario: each mistake is one clear CLI line (exit 2) naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.cli.main import main
from mcalloc.config import load_scenario
from mcalloc.pipeline import build_model

from .conftest import DEFAULT_CONFIG

Raw = dict[str, Any]


def _default() -> Raw:
    data: Raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    # the copy is written elsewhere: keep its residual file found
    data["model"]["dependence"]["residuals"] = str(DEFAULT_CONFIG.parent / data["model"]["dependence"]["residuals"])
    return data


def _params(data: Raw, asset: str = "sp500") -> Raw:
    params: Raw = data["model"]["marginals"]["params"][asset]
    return params


def _candidates_without_auto(data: Raw) -> None:
    data["model"]["marginals"]["candidates"] = [{"kind": "garch", "dist": "normal"}]


def _vol_start_without_level(data: Raw) -> None:
    data["simulation"]["start"] = {"kind": "vol"}


def _last_start_without_last_variance(data: Raw) -> None:
    data["simulation"]["start"] = {"kind": "last"}
    del _params(data, "intl")["last_variance"]


def _auto_without_own_kind(data: Raw) -> None:
    data["model"]["marginals"]["kind"] = "auto"


def _skewt_without_skew(data: Raw) -> None:
    _params(data, "russell2000").update(dist="skewt", nu=8.0)


def _egarch_unit_beta(data: Raw) -> None:
    _params(data).update(kind="egarch", omega=-0.01, alpha=0.15, gamma=-0.1, beta=1.0)


def _phi_without_ar1(data: Raw) -> None:
    _params(data).update(mean="sample", phi=0.1)


def _sample_ar1_last_start_without_last_return(data: Raw) -> None:
    data["simulation"]["start"] = {"kind": "last"}
    _params(data, "intl").update(mean="sample_ar1", phi=-0.05)
    _params(data, "intl").pop("last_return", None)


def _egarch_t_unconditional(data: Raw) -> None:
    _params(data).update(kind="egarch", dist="t", nu=8.0, omega=0.0, alpha=0.15, gamma=-0.1, beta=0.97)


def _nan_parameter(data: Raw) -> None:
    _params(data)["omega"] = float("nan")


CASES = [
    pytest.param(_candidates_without_auto, ("model.marginals.candidates", "kind: auto"), id="candidates-without-auto"),
    pytest.param(_vol_start_without_level, ("simulation.start.vol_ann", "required"), id="vol-start-without-vol-ann"),
    pytest.param(
        _last_start_without_last_variance,
        ("model.marginals.params.intl.last_variance", "mcalloc calibrate"),
        id="last-start-without-last-variance",
    ),
    pytest.param(_auto_without_own_kind, ("model.marginals.params.sp500.kind", "auto"), id="calibrated-auto-no-kind"),
    pytest.param(_skewt_without_skew, ("model.marginals.params.russell2000.skew",), id="skewt-without-skew"),
    pytest.param(_egarch_unit_beta, ("model.marginals.params.sp500", "beta", "stationary"), id="egarch-beta-1"),
    pytest.param(_phi_without_ar1, ("model.marginals.params.sp500.phi", "ar1"), id="phi-without-ar1"),
    pytest.param(
        _sample_ar1_last_start_without_last_return,
        ("model.marginals.params.intl.last_return", "mean: sample_ar1", "mcalloc calibrate"),
        id="sample-ar1-last-start-without-last-return",
    ),
    pytest.param(_egarch_t_unconditional, ("model.marginals.params.sp500", "infinite"), id="egarch-t-unconditional"),
    pytest.param(_nan_parameter, ("model.marginals.params.sp500.omega",), id="nan-parameter"),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_bad_model_settings_are_one_clear_line(
    mutate: Callable[[Raw], None], expected: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _default()
    mutate(data)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    code = main(["validate", str(path)])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 1, lines
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("start", ["unconditional", "last", "historical_max"])
def test_default_scenario_starts_where_asked(start: str) -> None:
    scenario = load_scenario(DEFAULT_CONFIG, [f"simulation.start.kind={start}"])
    model, _ = build_model(scenario)
    variance, _ = model.start_levels()
    params = scenario.model.marginals.params or {}
    # the unconditional level in closed form: omega / (1 - alpha - kappa gamma - beta), with kappa =
    # E[z^2 1(z < 0)] of the residuals resampled (standardised to mean 0, variance 1), not the normal 1/2
    residuals = pd.read_csv(DEFAULT_CONFIG.parent / "default.residuals.csv")
    for index, marginal in enumerate(model.marginals):
        own = params[marginal.name]
        if start == "unconditional":
            z = residuals[marginal.name].to_numpy()
            z = (z - z.mean()) / z.std()
            kappa = float(np.mean(z**2 * (z < 0)))
            persistence = own.alpha + kappa * own.gamma + own.beta
            assert variance[index] == pytest.approx(own.omega / (1.0 - persistence), rel=1e-12)
            continue
        expected = {"last": own.last_variance, "historical_max": own.max_variance}[start]
        assert variance[index] == expected


def test_vol_start_sets_the_annualised_volatility() -> None:
    scenario = load_scenario(DEFAULT_CONFIG, ["simulation.start={kind: vol, vol_ann: 0.45}"])
    model, _ = build_model(scenario)
    variance, _ = model.start_levels()
    # 45% a year over 252 steps, in percent squared per step
    assert variance.tolist() == pytest.approx([45.0**2 / 252] * 3, rel=1e-12)


def test_per_series_models_in_a_calibrated_config() -> None:
    overrides = [
        "model.marginals.params.intl={kind: egarch, dist: skewt, mean: ar1, mu: 0.01, phi: -0.05, omega: 0.005, "
        "alpha: 0.15, gamma: -0.1, beta: 0.98, nu: 8.0, skew: -0.15, last_variance: 0.8, last_return: -0.4, "
        "max_variance: 30.0}",
        "simulation.start.kind=last",
    ]
    scenario = load_scenario(DEFAULT_CONFIG, overrides)
    model, _ = build_model(scenario)
    assert [(m.kind, m.dist, m.mean) for m in model.marginals] == [
        ("gjr_garch", "normal", "sample"),
        ("gjr_garch", "normal", "sample"),
        ("egarch", "skewt", "ar1"),
    ]
    variance, last_return = model.start_levels()
    assert variance[2] == 0.8 and last_return[2] == -0.4


def test_auto_select_example_is_valid() -> None:
    scenario = load_scenario(DEFAULT_CONFIG.parent / "examples" / "auto_select.yaml")
    marginals = scenario.model.marginals
    assert marginals.kind == "auto" and len(marginals.candidate_models()) == 9
    assert marginals.fallback is not None and scenario.simulation.start.kind == "last"


def test_a_compressed_residual_file_reads_as_the_plain_one(tmp_path: Path) -> None:
    # pandas reads a .csv.gz by its name; the check for a column given twice once opened it as text and
    # failed with an unexpected error (exit 1)
    import gzip

    from mcalloc.models.assembly import read_residuals

    plain = DEFAULT_CONFIG.parent / "default.residuals.csv"
    packed = tmp_path / "default.residuals.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    names = ["sp500", "russell2000", "intl"]
    expected = read_residuals(str(plain), names)
    assert expected.shape[0] > 1000
    np.testing.assert_array_equal(read_residuals(str(packed), names), expected)
