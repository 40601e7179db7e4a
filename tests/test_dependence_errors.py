"""Bad dependence, factor and residual settings get one clear line from the CLI: exit code 2, no traceback.

Each case starts from ``configs/default.yaml`` (factor + filtered historical
simulation), breaks one thing, runs the real ``mcalloc`` entry point
in-process and checks that stderr is a single ``mcalloc: error:`` line naming
the key, file or row at fault. ``run`` cases also check that no results
folder without a ``.failed`` suffix was left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcalloc.cli.main import main

from .conftest import one_error_line, write_default_variant

GIVEN_CORRELATION = [[1.0, 0.5, 0.4], [0.5, 1.0, 0.3], [0.4, 0.3, 1.0]]
RawScenario = dict[str, Any]
Mutation = Callable[[RawScenario], None]


@dataclass(frozen=True)
class Case:
    """One bad invocation, what its error line must contain, and the results folder a ``run`` would write."""

    argv: list[str]
    expected: tuple[str, ...]
    out: Path | None = None


def _write_scenario(tmp_path: Path, mutate: Mutation) -> Path:
    return write_default_variant(tmp_path, mutate)


def _validate(mutate: Mutation, *expected: str, extra: tuple[str, ...] = ()) -> Callable[[Path], Case]:
    def build(tmp_path: Path) -> Case:
        return Case(["validate", str(_write_scenario(tmp_path, mutate)), *extra], expected)

    return build


def _run(mutate: Mutation, *expected: str) -> Callable[[Path], Case]:
    """A ``run`` of the broken scenario; ``expected`` may hold ``{tmp}``, filled in with the test's folder."""

    def build(tmp_path: Path) -> Case:
        config = _write_scenario(tmp_path, mutate)
        out = tmp_path / "out"
        argv = ["run", str(config), "-q", "--out", str(out), "--set", "simulation.n_paths=100"]
        argv += ["--set", "simulation.horizon_years=1", "--set", "simulation.n_jobs=1"]
        return Case(argv, tuple(fragment.format(tmp=tmp_path) for fragment in expected), out=out)

    return build


def _dependence(**values: Any) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["model"]["dependence"].update(values)

    return mutate


def _factor(**values: Any) -> Mutation:
    def mutate(data: RawScenario) -> None:
        data["model"]["factor"].update(values)

    return mutate


def _residual_file(text: str) -> Mutation:
    """Point the fhs model at a residual CSV holding ``text`` (written beside the scenario)."""

    def mutate(data: RawScenario) -> None:
        path = Path(data["output"]["dir"]).parent / "bad.residuals.csv"
        path.write_text(text, encoding="utf-8")
        data["model"]["dependence"]["residuals"] = str(path)

    return mutate


def _rows(n_rows: int, header: str = "sp500,russell2000,intl") -> str:
    lines = [f"{0.01 * i:.2f},{-0.02 * i:.2f},{0.5 - 0.1 * i:.2f}" for i in range(n_rows)]
    return "\n".join([header, *lines]) + "\n"


def _with_bad_value(text: str, row: int, value: str) -> str:
    lines = text.splitlines()
    fields = lines[row].split(",")
    fields[1] = value
    lines[row] = ",".join(fields)
    return "\n".join(lines) + "\n"


def _baseline_calibrated(data: RawScenario) -> None:
    data["model"]["dependence"]["kind"] = "iid_normal"
    data["model"]["factor"] = None


def _stress_on_fhs(data: RawScenario) -> None:
    data["model"]["dependence"]["stress"] = {"correlation_blend": 0.3}


CASES = [
    pytest.param(
        _validate(
            _dependence(kind="gaussian", correlation=[[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]),
            "model.dependence.correlation",
            "positive definite",
        ),
        id="gaussian-correlation-not-positive-definite",
    ),
    pytest.param(
        _validate(
            _dependence(kind="dcc", correlation=GIVEN_CORRELATION, dcc={"a": 0.1, "b": 0.95}),
            "model.dependence.dcc",
            "a + b",
        ),
        id="dcc-not-stationary",
    ),
    pytest.param(
        _validate(
            _dependence(
                kind="dcc",
                correlation=GIVEN_CORRELATION,
                dcc={"a": 0.02, "b": 0.95, "last_q": [[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4]]},
            ),
            "model.dependence.dcc.last_q",
            "square matrix",
        ),
        id="dcc-last-q-ragged",
    ),
    pytest.param(
        _validate(
            _dependence(kind="gaussian", correlation=[[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4]]),
            "model.dependence.correlation",
            "must be a square matrix, but it has 3 rows and row 3 has 2 numbers",
        ),
        id="correlation-ragged",
    ),
    # every nu under the floor gets the message that names the floor, 2 itself included
    pytest.param(
        _validate(_dependence(kind="t", correlation=GIVEN_CORRELATION, nu=2.0), "model.dependence.nu: 2 ", "2.05"),
        id="t-copula-nu-2",
    ),
    pytest.param(
        _validate(_dependence(kind="t", correlation=GIVEN_CORRELATION, nu=1.5), "model.dependence.nu", "2.05"),
        id="t-copula-nu-1.5",
    ),
    pytest.param(
        _validate(_dependence(kind="t", correlation=GIVEN_CORRELATION, nu=2.03), "model.dependence.nu", "2.05"),
        id="t-copula-nu-just-above-2",
    ),
    pytest.param(
        _run(_residual_file(_rows(10)), "{tmp}/bad.residuals.csv", "only 10", "250"),
        id="fhs-too-few-residual-rows",
    ),
    # validate builds the calibrated model, so it reads the residual file as a run would
    pytest.param(
        _validate(_residual_file(_rows(10)), "bad.residuals.csv", "only 10", "250"),
        id="validate-fhs-too-few-residual-rows",
    ),
    pytest.param(
        _validate(_dependence(residuals="no_such.residuals.csv"), "no_such.residuals.csv", "not found"),
        id="validate-fhs-residual-file-missing",
    ),
    pytest.param(
        _validate(_residual_file(_with_bad_value(_rows(300), 40, "oops")), "bad.residuals.csv:41", "not a number"),
        id="validate-fhs-residual-not-a-number",
    ),
    pytest.param(
        _run(_residual_file(_rows(300, header="sp500,russell2000,nasdaq")), "{tmp}/bad.residuals.csv", "intl"),
        id="fhs-residual-column-missing",
    ),
    # a value whose square overflows would leave its series' shocks at zero, in a run that looks complete
    pytest.param(
        _validate(_residual_file(_with_bad_value(_rows(300), 99, "1e300")), "bad.residuals.csv:100", "1e+300"),
        id="validate-fhs-residual-enormous",
    ),
    pytest.param(
        _run(_residual_file(_with_bad_value(_rows(300), 7, "inf")), "{tmp}/bad.residuals.csv:8", "inf", "+-100"),
        id="fhs-residual-infinite",
    ),
    pytest.param(
        # the header is line 1, so data row 40 (lines[40]) is line 41
        _run(_residual_file(_with_bad_value(_rows(300), 40, "oops")), "{tmp}/bad.residuals.csv:41", "not a number"),
        id="fhs-residual-not-a-number",
    ),
    pytest.param(
        _validate(
            lambda data: None,
            "simulation.steps_per_year",
            "daily",
            extra=("--set", "simulation.steps_per_year=12"),
        ),
        id="steps-per-year-not-the-calibrated-step",
    ),
    pytest.param(
        _validate(_factor(market="nasdaq"), "model.factor.market", "nasdaq"),
        id="factor-market-not-a-series",
    ),
    pytest.param(
        _validate(
            _factor(loadings={"russell2000": [1.1], "intl": [1.0], "nasdaq": [0.5]}),
            "model.factor.loadings.nasdaq",
        ),
        id="factor-loading-for-unknown-series",
    ),
    pytest.param(
        _validate(_factor(loadings={"russell2000": [1.1]}), "model.factor.loadings", "intl"),
        id="calibrated-factor-missing-a-loading",
    ),
    *[
        pytest.param(
            _validate(
                _factor(regimes={"series": "intl", "loadings": [[1.0], [0.8]], "transition": transition}),
                "model.factor.regimes.transition.0",
                message,
            ),
            id=name,
        )
        for transition, message, name in [
            ([[0.99, 0.02], [0.1, 0.9]], "sum to 1", "regime-transition-row-not-summing-to-one"),
            ([[1.0, 0.0], [0.1, 0.9]], "never left", "regime-never-left"),
        ]
    ],
    pytest.param(
        _validate(_factor(regimes={"series": "sp500"}), "model.factor.regimes.series", "market"),
        id="regime-on-the-market",
    ),
    pytest.param(
        _validate(_factor(regimes={"series": "intl"}), "model.factor.regimes", "mcalloc calibrate"),
        id="calibrated-regimes-without-parameters",
    ),
    pytest.param(
        _validate(_dependence(kind="t", correlation=GIVEN_CORRELATION), "model.dependence.nu"),
        id="calibrated-t-without-nu",
    ),
    pytest.param(
        _validate(_dependence(kind="dcc", correlation=GIVEN_CORRELATION), "model.dependence.dcc"),
        id="calibrated-dcc-without-dcc",
    ),
    pytest.param(
        _validate(_baseline_calibrated, "model.dependence.kind", "iid_normal", "model.source: fit"),
        id="baseline-with-source-calibrated",
    ),
    pytest.param(_validate(_stress_on_fhs, "model.dependence", "stress", "fhs"), id="stress-on-fhs"),
]


@pytest.mark.parametrize("build", CASES)
def test_bad_dependence_input_is_one_clear_line(
    build: Callable[[Path], Case], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = build(tmp_path)

    code = main(case.argv)

    line = one_error_line(capsys.readouterr(), case.expected)
    assert code == 2, line
    # no results folder except one marked .failed: every manifest written lies in a *.failed folder
    assert [m.parent for m in tmp_path.rglob("manifest.json") if not m.parent.name.endswith(".failed")] == []
    if case.out is not None:
        assert not case.out.exists()
        leftovers = [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.endswith(".failed")]
        assert leftovers == [], leftovers


def test_copula_nu_at_the_recommended_minimum_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_scenario(tmp_path, _dependence(kind="t", correlation=GIVEN_CORRELATION, nu=2.05))
    code = main(["validate", str(config)])
    assert code == 0, capsys.readouterr().err
