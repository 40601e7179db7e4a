"""report.html of a backtest folder: verdicts, PIT histograms, VaR exceedances and every check.

Drawn from the folder's saved files (``manifest.json``, ``validation.csv``,
``verdicts.csv``, ``summary.csv``, ``pits.csv``), so ``mcalloc report``
draws it again. With several splits the figures show the earliest, whose
test period is the longest; the tables hold every split.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from mcalloc.report.figures import legend_below
from mcalloc.report.page import _environment, _save, publish_page
from mcalloc.report.tables import Table, count_text
from mcalloc.results.writer import read_results_csv

__all__ = ["exceedance_figure", "pit_figure", "write_backtest_report"]

_WIDTH = 9.0
_BINS = 10


def pit_figure(pits: pd.DataFrame, portfolios: list[str]) -> Figure | None:
    """Histograms of each model's PITs of the portfolios' returns, one row per model, days and months.

    A right model gives flat histograms: the shaded band is where 95% of a
    bin's frequency falls for uniform PITs of that many periods.
    """
    shown = pits[pits["series"].isin(portfolios)] if portfolios else pits
    if shown.empty:
        return None
    models = list(dict.fromkeys(shown["model"]))
    horizons = list(dict.fromkeys(shown["horizon"]))
    figure = Figure(figsize=(_WIDTH, 1.6 * len(models) + 0.8), layout="constrained")
    axes = figure.subplots(len(models), len(horizons), squeeze=False, sharex=True)
    edges = np.linspace(0.0, 1.0, _BINS + 1)
    for row, model in enumerate(models):
        for column, horizon in enumerate(horizons):
            panel = axes[row, column]
            part = shown[(shown["model"] == model) & (shown["horizon"] == horizon)]
            n_periods = max(part.groupby("series").size().max(), 1) if not part.empty else 1
            low, high = stats.binom.ppf([0.025, 0.975], n_periods, 1.0 / _BINS) * _BINS / n_periods
            panel.axhspan(low, high, color="#d0d7de", alpha=0.5, linewidth=0)
            panel.axhline(1.0, color="#57606a", linewidth=0.8)
            for series, values in part.groupby("series", sort=False)["pit"]:
                panel.stairs(np.histogram(values, edges, density=True)[0], edges, label=str(series))
            panel.set_title(f"{model}, {horizon}", fontsize=8)
            panel.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if labels:
        legend_below(figure, handles, labels, columns=4)
    figure.supylabel("density", fontsize=8)
    return figure


def exceedance_figure(validation: pd.DataFrame) -> Figure | None:
    """Daily VaR exceedances over the number expected, per model and series, at 99% and 95%."""
    rows = validation[(validation["check"] == "var") & (validation["horizon"] == "1d")]
    if rows.empty:
        return None
    statistics = list(dict.fromkeys(rows["statistic"]))
    models = list(dict.fromkeys(rows["model"]))
    figure = Figure(figsize=(_WIDTH, 3.4), layout="constrained")
    axes = figure.subplots(1, len(statistics), squeeze=False)[0]
    positions = np.arange(len(models))
    for panel, statistic in zip(axes, statistics, strict=True):
        part = rows[rows["statistic"] == statistic]
        groups = list(part.groupby("series", sort=False))
        for index, (series, group) in enumerate(groups):
            ratio = group.set_index("model").reindex(models)
            values = ratio["exceedances"].to_numpy(dtype=float) / ratio["expected_exceedances"].to_numpy(dtype=float)
            # side by side within each model's slot: series with equal counts would hide one another
            dodge = (index - (len(groups) - 1) / 2) * min(0.12, 0.7 / len(groups))
            panel.plot(positions + dodge, values, "o", markersize=4, label=str(series), alpha=0.8)
        expected = part["expected_exceedances"].iloc[0]
        n_obs = int(part["n_obs"].iloc[0])
        coverage = expected / n_obs
        low, high = stats.binom.ppf([0.025, 0.975], n_obs, coverage) / expected
        panel.axhspan(low, high, color="#d0d7de", alpha=0.5, linewidth=0)
        panel.axhline(1.0, color="#57606a", linewidth=0.8)
        panel.set_xticks(positions, models, rotation=45, ha="right", fontsize=7)
        panel.set_title(f"1-day {statistic}: exceedances / expected", fontsize=9)
        panel.set_ylabel("exceedances / expected\n(band: a correct model's 95% range)", fontsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    legend_below(figure, handles, labels, columns=4)
    return figure


def _table(frame: pd.DataFrame) -> Table:
    """The frame as the page shows it, columns that are empty for every row left out."""
    return Table.of(frame.dropna(axis=1, how="all"))


def _splits(manifest: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The splits and each one's periods; a folder written before several splits were possible has one."""
    if "splits" in manifest:
        return [str(split) for split in manifest["splits"]], dict(manifest.get("periods") or {})
    split = str(manifest.get("split"))
    return [split], {split: manifest.get("period") or {}}


def _failures(manifest: dict[str, Any], splits: list[str]) -> list[str]:
    recorded = manifest.get("failures") or []
    if isinstance(recorded, dict):  # one split: model -> error
        return [f"{model}: not evaluated: {error}" for model, error in recorded.items()]
    return [f"{f.get('model')} at split {f.get('split')}: not evaluated: {f.get('error')}" for f in recorded]


def _provenance(manifest: dict[str, Any]) -> Table:
    splits, periods = _splits(manifest)
    refit = manifest.get("refit_every_months")
    items: list[tuple[str, object]] = [("scenario", manifest.get("scenario")), ("splits", ", ".join(splits))]
    for split in splits:
        period = periods.get(split) or {}
        prefix = f"split {split}: " if len(splits) > 1 else ""
        items += [
            (
                f"{prefix}fitted on",
                f"{period.get('fit_first')} to {period.get('fit_last')} ({period.get('n_fit')} days)",
            ),
            (
                f"{prefix}tested on",
                f"{period.get('test_first')} to {period.get('test_last')} ({period.get('n_test')} days)",
            ),
        ]
    items += [
        ("refits", f"every {refit} months of 21 trading days" if refit else "none: one fit at the split"),
        (
            "draws per forecast / test windows",
            f"{count_text(manifest.get('n_draws'))} / {count_text(manifest.get('n_paths'))}",
        ),
        ("seed", manifest.get("seed")),
        ("config sha256", manifest.get("config_sha256")),
        ("mcalloc / python", f"{manifest.get('engine_version')} / {manifest.get('python')}"),
    ]
    for record in manifest.get("data") or []:
        items.append((f"data {record.get('path') or record.get('name', '')}", str(record.get("sha256", ""))[:16]))
    return Table(columns=["item", "value"], rows=[[k, "" if v is None else str(v)] for k, v in items])


def _read(folder: Path, name: str, split: str) -> pd.DataFrame:
    """A saved table, with a ``split`` column even if it was written before several splits were possible."""
    frame = read_results_csv(folder / name)
    if "split" not in frame.columns:
        frame.insert(0, "split", split)
    return frame


def write_backtest_report(folder: str | Path) -> Path:
    """Write ``report.html`` and ``figures/`` into a backtest folder from its saved files."""
    from mcalloc.api import RunFolderError, check_files, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    splits, _ = _splits(manifest)
    needed = ["validation.csv", "verdicts.csv", "pits.csv", *(["summary.csv"] if len(splits) > 1 else [])]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise RunFolderError(
            f"{folder / missing[0]}: missing, and every backtest folder has it (manifest.json says kind: backtest); "
            "the folder is damaged: run the backtest again"
        )
    validation = _read(folder, "validation.csv", splits[0])
    verdicts = _read(folder, "verdicts.csv", splits[0])
    pits = _read(folder, "pits.csv", splits[0])
    summary = read_results_csv(folder / "summary.csv") if len(splits) > 1 else None
    portfolios = [str(p) for p in manifest.get("portfolios") or []]

    def render(drawing: Path) -> str:
        shown = f" (split {splits[0]}, the longest test period)" if len(splits) > 1 else ""
        pictures = [
            _save(
                pit_figure(pits[pits["split"] == splits[0]], portfolios),
                "pit",
                f"Probability integral transforms of the portfolios' realised returns under each model's forecasts"
                f"{shown}; flat is right, the grey band holds 95% of a bin's frequency for a right model.",
                drawing,
            ),
            _save(
                exceedance_figure(validation[validation["split"] == splits[0]]),
                "exceedances",
                f"Days the loss exceeded the 1-day VaR, over the number expected{shown}; the grey band holds 95% of "
                "outcomes for a right model.",
                drawing,
            ),
        ]
        tested, verdict_table = validation, verdicts
        if len(splits) == 1:
            tested, verdict_table = validation.drop(columns="split"), verdicts.drop(columns="split")
        checks = {
            check: _table(tested[tested["check"] == check].drop(columns=["check", "dependence", "marginals"]))
            for check in ("var", "pit", "window")
        }
        context = {
            "title": f"mcalloc backtest: {manifest.get('scenario')}, split{'s' if len(splits) > 1 else ''} "
            f"{', '.join(splits)}",
            "provenance": _provenance(manifest),
            "summary": _table(summary) if summary is not None else None,
            "verdicts": _table(verdict_table),
            "pictures": [p for p in pictures if p is not None],
            "checks": checks,
            "failures": _failures(manifest, splits),
            "warnings": list(manifest.get("warnings") or []),
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return str(_environment().get_template("backtest.html.j2").render(**context))

    return publish_page(folder, "report.html", render)
