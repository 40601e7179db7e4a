"""``mcalloc fit CONFIG`` and ``mcalloc calibrate CONFIG --out FILE``: the calibration workflow.

``fit`` fits the scenario's volatility models and copula to its data and
prints the diagnostics (and, for ``kind: auto``, the candidates by BIC).
``calibrate`` does the same and writes a copy of the scenario with the fitted
parameters in it (``model.source: calibrated``), so that later runs and
batches skip fitting and simulate exactly what a fitting run would. On a
calibrated file both fit as the scenario it came from did (its
``model.fitted_with``), so recalibrating with newer data keeps the model.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mcalloc.cli.common import (
    add_config_command,
    check_not_read,
    check_output_file,
    extended_files,
    load_with_options,
    scenario_files,
)
from mcalloc.config.loader import load_scenario
from mcalloc.config.model_schema import BASELINE_KINDS, StartConfig
from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError, OutputError

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add ``fit`` and ``calibrate`` to the top-level sub-parsers."""

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        return add_config_command(
            commands, name, help_text, "scenario YAML file with a data section", "model.marginals.kind=auto"
        )

    fit = with_config("fit", "fit the scenario's models to its data and print the diagnostics")
    fit.add_argument("--csv", type=Path, help="also write the diagnostics table to this CSV file")
    fit.add_argument(
        "--calibration-csv", type=Path, help="also write the calibration report (data vs simulated windows) to this CSV"
    )
    fit.set_defaults(handler=_fit)
    calibrate = with_config("calibrate", "fit, then write a config holding the fitted parameters")
    calibrate.add_argument("--out", type=Path, required=True, help="the calibrated scenario file to write")
    calibrate.set_defaults(handler=_calibrate)


def _fitting(scenario: Scenario, source: Path, start: StartConfig | None = None) -> Scenario:
    """The scenario set to fit its data, optionally with another start.

    A calibrated scenario fits as the scenario it was calibrated from did
    (:func:`~mcalloc.models.calibration.fitting_section`), and is checked
    again as a fitted one: a data section need not name every asset's file
    until it is fitted (``source`` names the scenario in the messages).
    """
    from mcalloc.config.loader import scenario_to_dict, validate
    from mcalloc.models.calibration import fitting_section

    if scenario.data is None:
        raise ConfigError("data: mcalloc fit and calibrate need a data section to fit to (see configs/examples)")
    model = fitting_section(scenario.model)
    simulation = scenario.simulation if start is None else scenario.simulation.model_copy(update={"start": start})
    fitting = scenario.model_copy(update={"model": model, "simulation": simulation})
    return validate(scenario_to_dict(fitting), {}, source) if scenario.model.source != "fit" else fitting


def _with_last(model: Any, fitting: Scenario, scenario: Scenario) -> pd.DataFrame:
    """``models.csv``'s table for the scenario's own start, with the last fitted day's volatility beside it.

    ``fit`` and ``calibrate`` print the same rows for the same file: the
    volatility a run starts from (the scenario's ``simulation.start``) and
    the one the fit ends with.
    """
    from mcalloc.models.report import models_table

    # the tables differ only in the start they describe: one fitting scenario serves both
    own, steps = scenario.simulation.start, scenario.simulation.steps_per_year
    table = models_table(model.starting_at(own, steps), fitting)
    last = models_table(model.starting_at(StartConfig(kind="last"), steps), fitting)
    return table.assign(vol_ann_last=last["vol_ann_initial"].to_numpy())


def _number(value: float, digits: int = 4) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return f"{value:.{digits}g}"


def diagnostics_text(models: pd.DataFrame, frequency: str = "daily") -> str:
    """The ``models.csv`` table as a readable column per series; ``frequency``: one step's (``data.frequency``)."""
    rows: dict[str, list[str]] = {"model": [f"{r.kind}/{r.dist}/{r.mean}" for r in models.itertuples()]}
    factor = "role" in models and models["role"].eq("idiosyncratic").any()
    if factor:
        # the other series are modelled as their loading on the market plus a part of their own: say so,
        # and give the whole series' volatility beside the part's
        rows["modelled"] = ["whole series" if role != "idiosyncratic" else "own part" for role in models["role"]]
        loadings = [c for c in models.columns if c.startswith("loading_lag") and models[c].fillna(0.0).ne(0.0).any()]
        for column in sorted(loadings):
            rows[f"loading on market, lag {column.removeprefix('loading_lag')}"] = [
                "" if math.isnan(v) or role != "idiosyncratic" else f"{v:.4g}"
                for v, role in zip(models[column], models["role"], strict=True)
            ]
    for key in ("mu", "phi", "omega", "alpha", "gamma", "beta", "nu", "skew"):
        values, errors = models[key], models[f"{key}_se"]
        if values.notna().any():
            rows[key] = [
                "" if math.isnan(v) else f"{v:.4g}" + ("" if math.isnan(e) else f" ({e:.2g})")
                for v, e in zip(values, errors, strict=True)
            ]
    rows["persistence"] = [_number(v, 5) for v in models["persistence"]]
    rows["half-life (steps)"] = [_number(v, 3) for v in models["half_life_steps"]]
    rows["vol ann, long run"] = ["infinite" if math.isinf(v) else f"{v:.1%}" for v in models["vol_ann_unconditional"]]
    if factor and "vol_ann_total" in models:
        rows["vol ann, long run, whole series"] = [
            "infinite" if math.isinf(v) else f"{v:.1%}" for v in models["vol_ann_total"]
        ]
    start = models["start"].iloc[0]
    if "vol_ann_last" in models and start != "last":
        rows["vol ann, last fitted day"] = [f"{v:.1%}" for v in models["vol_ann_last"]]
    rows[f"vol ann, start ({start})"] = [f"{v:.1%}" for v in models["vol_ann_initial"]]
    if models["mean_se_ann"].notna().any():
        label = "mean ann, standard error" + (", whole series" if factor else "")
        rows[label] = [f"{v:.1%}" for v in models["mean_se_ann"]]
    rows["log-likelihood"] = [f"{v:.2f}" for v in models["loglikelihood"]]
    reset = "loglikelihood_free" in models and models["loglikelihood_free"].notna().any()
    if reset:
        rows["log-likelihood, free fit"] = ["" if math.isnan(v) else f"{v:.2f}" for v in models["loglikelihood_free"]]
    rows["AIC"] = [f"{v:.2f}" for v in models["aic"]]
    rows["BIC"] = [f"{v:.2f}" for v in models["bic"]]
    lags = int(models["ljung_box_lags"].iloc[0])
    rows[f"Ljung-Box p, z ({lags} lags)"] = [f"{v:.3f}" for v in models["ljung_box_p"]]
    rows[f"Ljung-Box p, z^2 ({lags} lags)"] = [f"{v:.3f}" for v in models["ljung_box_sq_p"]]
    rows["observations"] = [f"{int(v):,}" for v in models["n_obs"]]
    table = pd.DataFrame(rows, index=models["asset"]).T
    table.columns.name = None
    note = f"parameters in percent units (100 x {frequency} log returns); standard errors (robust) in parentheses"
    if reset:
        note += (
            "\nomega reset after the fit so that the long-run variance is the sample's (variance_targeting: true):"
            " it has no standard error, and the log-likelihood, AIC and BIC are at the reset parameters"
        )
    if factor:
        note += (
            "\nown part: the series less its loading on the market; its mean, parameters and volatility are the part's"
        )
    return table.to_string() + "\n" + note


_STEP = {"daily": "day", "weekly": "week", "monthly": "month"}


def calibration_text(table: pd.DataFrame, frequency: str = "daily") -> str:
    """The calibration report as the data's percentile per statistic and window, then the VaR backtest.

    ``frequency`` is the fitted data's (``data.frequency``): the statistics
    named "daily" are of one step, and the VaR is one step's.
    """
    from mcalloc.models.validation import JOINT_STATISTIC, outside_summary, percentile_grid, window_rows

    windows = window_rows(table)
    step = _STEP[frequency]
    lines = []
    if step != "day":
        lines.append(
            f"one step is a {step}: vol_ann and corr_daily are of {frequency} returns"
            + (", and a quarter is 3 steps" if step == "month" else "")
        )
    if len(windows):
        lines.append(
            "calibration: percentile of the data among simulated windows of the same length "
            "(5..95 expected nine times in ten; * outside)"
        )
        lines += percentile_grid(table).to_string().splitlines()
    var_rows = table[table["statistic"].str.startswith("var")]
    lines.append(f"in-sample 1-{step} VaR: exceedance rate and Kupiec p-value")
    lines.append(
        "  (resampled shocks (fhs, bootstrap_returns) take the quantile of the fitted residuals themselves, so "
        "this checks only the variance path they are scaled by; mcalloc backtest checks out of sample)"
    )
    for record in var_rows.to_dict("records"):
        p_value, rate, nominal = float(record["p_value"]), float(record["data"]), float(record["sim_p50"])
        verdict = "passes" if p_value >= 0.05 else "REJECTED at 5%"
        lines.append(f"  {record['series']!s:<24} {rate:7.4f} (nominal {nominal:.2f})  p = {p_value:.3f}  {verdict}")
    summary = outside_summary(table)
    if summary is not None:
        lines.append(summary)
    joint = table[table["statistic"] == JOINT_STATISTIC]
    if len(joint):
        lines.append(
            "the statistics move together, so a right model leaves several outside at once: the data's count "
            "against the counts of simulated windows"
        )
        for record in joint.to_dict("records"):
            verdict = "consistent with the model" if float(record["p_value"]) >= 0.05 else "REJECTED at 5%"
            lines.append(
                f"  {record['window']!s:<24} {int(record['data']):3d} outside; simulated 5..95: "
                f"{int(record['sim_p05'])}..{int(record['sim_p95'])}; P(as many or more) = {record['p_value']:.3f}"
                f"  {verdict}"
            )
    return "\n".join(lines)


def selection_text(selection: list[dict[str, object]]) -> str:
    """``kind: auto``'s candidates per series, best BIC first."""
    frame = pd.DataFrame(selection)
    lines = ["candidates (kind: auto, lowest BIC selected)"]
    for asset, group in frame.groupby("asset", sort=False):
        best = group["bic"].min()
        shown = pd.DataFrame(
            {
                "model": [f"{r.kind}/{r.dist}/{r.mean}" for r in group.itertuples()],
                "loglik": group["loglikelihood"].map(lambda v: "" if math.isnan(v) else f"{v:.2f}"),
                "BIC": group["bic"].map(lambda v: "failed" if math.isnan(v) else f"{v:.2f}"),
                "dBIC": (group["bic"] - best).map(lambda v: "" if math.isnan(v) else f"{v:.2f}"),
                "selected": group["selected"].map({True: "*", False: ""}),
            }
        ).sort_values("BIC", key=lambda c: pd.to_numeric(c, errors="coerce"))
        lines.append(f"{asset}:")
        lines += ["  " + line for line in shown.to_string(index=False).splitlines()]
    return "\n".join(lines)


_DEPENDENCE_TITLES = {
    "gaussian": "copula correlation (of the standardised residuals' normal scores)",
    "t": "t copula correlation (sin(pi tau / 2) of Kendall's tau of the standardised residuals)",
    "dcc": "DCC long-run correlation, Qbar (of the standardised residuals' normal scores)",
    "fhs": "correlation of the resampled standardised residuals",
    "independent": "no correlation (independent)",
    "bootstrap_returns": "correlation of the resampled returns",
    "iid_normal": "correlation of the returns",
    "iid_t": "correlation of the returns",
}


def _dependence_title(scenario: Scenario) -> str:
    """What the correlation ``mcalloc fit`` prints is: of which numbers, and what was done to it."""
    dependence = scenario.model.dependence
    title = _DEPENDENCE_TITLES[dependence.kind]
    if scenario.model.factor is not None and dependence.kind not in ("iid_normal", "iid_t", "bootstrap_returns"):
        title += "; the series other than the market enter as their own parts (less their loading on it)"
    stress = dependence.stress
    if stress.worst_days is not None:
        title += f"; stressed: measured on the {stress.worst_days:.0%} most volatile days"
    if stress.correlation_blend:
        title += f"; stressed: blended {stress.correlation_blend:.0%} of the way to 1"
    if dependence.lead_lag and scenario.model.factor is None and stress.worst_days is None:
        title += f"; with {dependence.lead_lag}-day lead-lag terms"
    return title


def _report(scenario: Scenario, model: Any, models: pd.DataFrame) -> str:
    first, last = models["sample_start"].iloc[0], models["sample_end"].iloc[0]
    span = f", {first}..{last}" if isinstance(first, str) and first else ""
    parts = [f"{scenario.name}: {len(models)} series fitted to {int(models['n_obs'].max()):,} returns{span}"]
    parts.append(diagnostics_text(models, scenario.data.frequency if scenario.data is not None else "daily"))
    if model.selection_records():
        parts.append(selection_text(model.selection_records()))
    names = list(models["asset"])
    correlation = pd.DataFrame(model.copula.correlation, index=names, columns=names)
    parts.append(_dependence_title(scenario) + "\n" + correlation.round(4).to_string())
    scalars = [r for r in model.copula.records() if r["parameter"] != "correlation" and r["series"] == ""]
    if scalars:
        shown = "  ".join(f"{r['parameter']} {float(str(r['value'])):.4g}" for r in scalars)
        parts.append(f"{model.copula.kind} parameters: {shown}")
    if model.warnings:
        parts.append("warnings\n" + "\n".join(f"  - {note}" for note in model.warnings))
    return "\n\n".join(parts)


def _fit(args: argparse.Namespace) -> int:
    from mcalloc.models.calibration import refit_warnings
    from mcalloc.pipeline import build_model, calibration_report
    from mcalloc.scenario_warnings import calibration_gaps

    # before the fit, which takes a while: a place that cannot take the tables is known now
    for option, path in (("--csv", args.csv), ("--calibration-csv", args.calibration_csv)):
        if path is not None:
            check_output_file(option, path, "fit.csv")
    scenario = load_with_options(args.config, args)
    reads = scenario_files(args.config, scenario)
    for option, path in (("--csv", args.csv), ("--calibration-csv", args.calibration_csv)):
        if path is not None:
            check_not_read(option, path, reads)
    both = args.csv is not None and args.calibration_csv is not None
    if both and args.csv.resolve() == args.calibration_csv.resolve():
        raise OutputError(f"--calibration-csv {args.calibration_csv}: the same file as --csv; give each its own")
    fitting = _fitting(scenario, args.config, StartConfig(kind="last"))
    model, data = build_model(fitting)
    models = _with_last(model, fitting, scenario)
    print(_report(fitting, model, models))
    for warning in data.warnings if data is not None else ():
        print(f"data warning: {warning}")
    for warning in refit_warnings(scenario):
        print(f"refit warning: {warning}")
    if data is not None and fitting.output.calibration.n_paths > 0:
        # judged from the fitted state of each window, whatever start the run would use
        calibration = calibration_report(fitting, model, data)
        frequency = fitting.data.frequency if fitting.data is not None else "daily"
        print("\n" + calibration_text(calibration, frequency))
        for gap in calibration_gaps(fitting, model, data):
            print(f"calibration warning: {gap}")
        if args.calibration_csv is not None:
            _write_text(args.calibration_csv, calibration.to_csv(index=False, float_format="%.10g"))
            print(f"\ncalibration report: {args.calibration_csv}")
    if args.csv is not None:
        _write_text(args.csv, models.drop(columns="vol_ann_last").to_csv(index=False, float_format="%.10g"))
        print(f"\ndiagnostics: {args.csv}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from mcalloc.models.calibration import calibrated_scenario, refit_warnings, residuals_frame
    from mcalloc.pipeline import build_model
    from mcalloc.results.writer import provenance_records

    out: Path = args.out
    if out.resolve() == args.config.resolve():
        raise OutputError(f"{out}: is the scenario being calibrated; write the calibrated copy elsewhere")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out is the calibrated scenario's file: give a new file's name")
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise OutputError(f"{out}: --out is the calibrated scenario's file; give a name ending in .yaml")
    check_output_file("--out", out, "calibrated.yaml")
    scenario = load_with_options(args.config, args)
    _check_calibrate_out(out, args.config)
    check_not_read("--out", out, scenario_files(args.config, scenario))
    if scenario.model.dependence.kind in BASELINE_KINDS:
        raise ConfigError(
            f"model.dependence.kind: {scenario.model.dependence.kind} is a baseline that a run estimates from the "
            "data each time; it has no calibrated form, so run the fitting scenario itself"
        )
    fitting = _fitting(scenario, args.config)
    model, data = build_model(fitting)
    models = _with_last(model, fitting, scenario)
    residuals = residuals_frame(model)
    residuals_path = out.with_name(f"{out.stem}.residuals.csv")
    provenance = provenance_records(data.provenance) if data is not None else []
    refit = refit_warnings(scenario)
    warnings = (*(data.warnings if data is not None else ()), *model.warnings, *refit)
    header = _header(args.config, args.overrides, models, provenance, warnings)

    def scenario_text(residuals_name: str | None) -> str:
        calibrated = calibrated_scenario(fitting, model, residuals_name)
        return header + yaml.safe_dump(calibrated, sort_keys=False, width=120)

    if residuals is not None:
        _check_residuals_out(out, residuals_path)
    residuals_text = None if residuals is None else residuals.to_csv(index=False, float_format="%.17g")
    _write_pair(out, scenario_text, residuals_path, residuals_text)
    print(_report(fitting, model, models))
    for warning in refit:
        print(f"refit warning: {warning}")
    if residuals is not None:
        print(f"\nresiduals resampled by the fhs model: {residuals_path}")
    print(f"\ncalibrated scenario: {out}\nrun it with: mcalloc run {out}")
    return 0


def _check_calibrate_out(out: Path, config: Path) -> None:
    """Refuse an ``--out`` the calibrated scenario must not replace: a file the source extends, or one not ours.

    Replacing a file the source scenario extends changes the source itself
    (configs/default.yaml under configs/examples/fit_etfs.yaml: the fitted
    copy's ``model.fitted_with`` then contradicts the source's
    ``model.source: fit``); a file mcalloc calibrate did not write may be
    anyone's.
    """
    target = out.resolve()
    if target in extended_files(config):
        raise OutputError(
            f"{out}: {config} extends it, so the calibrated copy would change the scenario being calibrated; "
            "write it elsewhere (and copy the numbers over, if that file should hold them)"
        )
    if out.is_file():
        with out.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        if not first.startswith(CALIBRATED_MARK):
            raise OutputError(
                f"{out}: exists and is not a scenario mcalloc calibrate wrote; remove it, or give another --out"
            )


def _check_residuals_out(out: Path, residuals: Path) -> None:
    """Refuse to write the residuals beside ``out`` over a folder, or over a file calibrate did not write there.

    A residual file is replaced only with the calibrated scenario it belongs
    to: one beside a new ``--out`` may be another scenario's (a copy of
    configs/default.residuals.csv under the default's name), which would
    then resample these residuals without a word.
    """
    if residuals.is_dir():
        raise OutputError(
            f"{residuals}: is a folder, where the residuals of the calibrated scenario go; move it, or give "
            "another --out"
        )
    if residuals.exists() and not out.is_file():  # an existing --out is one calibrate wrote (checked before)
        raise OutputError(
            f"{residuals}: exists, and {out} (whose residuals it would be) does not, so it may be another "
            "scenario's; remove it, or give another --out"
        )


CALIBRATED_MARK = "# Calibrated by `mcalloc calibrate"
"""How a file mcalloc calibrate wrote begins (its header's first line), so that calibrating again may replace it."""


def _header(
    source: Path, overrides: list[str], models: pd.DataFrame, data: list[dict[str, Any]], warnings: tuple[str, ...]
) -> str:
    """The calibrated file's opening comment: the command that made it (its --set options too), data and fits."""
    import shlex

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["mcalloc calibrate", shlex.quote(str(source)), *(f"--set {shlex.quote(o)}" for o in overrides)])
    lines = [f"Calibrated by `{command}` on {when}."]
    first, last = models["sample_start"].iloc[0], models["sample_end"].iloc[0]
    if isinstance(first, str) and first:
        lines.append(f"Fitted to {int(models['n_obs'].max()):,} returns from {first} to {last}:")
    for record in data:
        lines.append(f"  {record.get('path', '?')} (sha256 {record.get('sha256', '?')})")
    for row in models.itertuples():
        lines.append(f"  {row.asset}: {row.kind}/{row.dist}/{row.mean}, BIC {row.bic:.2f}")
    lines += [f"warning: {note}" for note in warnings]
    lines.append("`mcalloc run` on this file simulates what a run that fits the data does, without fitting.")
    lines.append(
        "model.fitted_with: how the fit was set (lead-lag terms, stress, years: data); the numbers hold it, so a "
        "run does not apply it again, and `mcalloc fit` or `calibrate` on this file fits with it."
    )
    return "".join(f"# {line}\n" for line in lines)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    temporary = path.parent / f".{path.name}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror}); choose another path") from None
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_pair(
    out: Path, scenario_text: Callable[[str | None], str], residuals_path: Path, residuals_text: str | None
) -> None:
    """Write a calibrated scenario and its residuals file together, or neither.

    Both are written under temporary names and the scenario, pointing at the
    temporary residuals, must load before either takes its place: a
    calibration that fails leaves an earlier pair as it was, never a new
    residuals file beside an old scenario.
    """
    scenario_tmp = out.parent / f".{out.name}.tmp"
    residuals_tmp = residuals_path.parent / f".{residuals_path.name}.tmp"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if residuals_text is not None:
            residuals_tmp.write_text(residuals_text, encoding="utf-8")
        scenario_tmp.write_text(scenario_text(residuals_tmp.name if residuals_text is not None else None), "utf-8")
        try:
            load_scenario(scenario_tmp)
        except ConfigError as error:
            message = str(error).replace(str(scenario_tmp), str(out)).replace(scenario_tmp.name, out.name)
            raise ConfigError(
                f"{out}: the calibrated scenario would not load, so nothing was written: {message}"
            ) from None
        scenario_tmp.write_text(scenario_text(residuals_path.name if residuals_text is not None else None), "utf-8")
        if residuals_text is not None:
            os.replace(residuals_tmp, residuals_path)
        os.replace(scenario_tmp, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror}); choose another path") from None
    finally:
        for temporary in (scenario_tmp, residuals_tmp):
            if temporary.exists():
                temporary.unlink()
