"""report.html: one self-contained page per run (figures embedded), and one comparing several runs.

The page is a Jinja2 template (``templates/``) filled from a run's saved
tables, so ``mcalloc report RUN_DIR`` draws it again at any time. Figures
are written to ``figures/`` as PNG and SVG and embedded in the page as PNG
data, so the page opens offline, alone, in any browser. Every file is
written to a temporary name and moved into place, the page last.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.text import Text

from mcalloc.api import Run, RunFolderError, load, read_manifest, unfinished, weight_ranges
from mcalloc.errors import OutputError, check_stop, signals_held
from mcalloc.report import figures
from mcalloc.report.compare import compared_metrics, has_money, is_money, run_labels
from mcalloc.report.frontier import frontier_figure, frontier_paths
from mcalloc.results.writer import move_into_place, release_claim, working_folder

__all__ = ["Table", "build_batch_report", "build_comparison_report", "build_report", "write_report"]

_DPI = 110


@dataclass(frozen=True)
class Table:
    """A table as the template shows it: column headings and rows of formatted cells."""

    columns: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, frame: pd.DataFrame, formats: Mapping[str, Callable[[Any], str]] | None = None) -> Table:
        formats = formats or {}
        rows = [
            [formats.get(column, _cell)(value) for column, value in zip(frame.columns, row, strict=True)]
            for row in frame.itertuples(index=False)
        ]
        return cls(columns=[str(column) for column in frame.columns], rows=rows)


@dataclass(frozen=True)
class Picture:
    """A figure as the page shows it: where its files are, a caption, and its PNG as a data URI."""

    name: str
    caption: str
    data_uri: str


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def _percent(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):.1%}"


def _points(value: Any) -> str:
    return "" if pd.isna(value) else f"{100 * float(value):+.2f}"


def _money(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):,.0f}"


def _write_atomic(path: Path, data: bytes) -> None:
    check_stop()  # after a SIGTERM nothing more is written in place
    temporary = path.parent / f".{path.name}.tmp"
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        reason = error.strerror or type(error).__name__
        raise OutputError(f"{path}: cannot be written ({reason}); {_WRITABLE}") from None


_WRITABLE = "make the folder writable, or copy the run somewhere you can write and draw the report there"
"""What to do when a report's file or folder cannot be written."""


def _save(figure: Figure | None, name: str, caption: str, folder: Path) -> Picture | None:
    """Write ``figure`` as ``figures/<name>.png`` and ``.svg``; return it ready for the page."""
    if figure is None:
        return None
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise OutputError(f"{folder}: cannot be made ({error.strerror or type(error).__name__}); {_WRITABLE}") from None
    png = io.BytesIO()
    svg = io.BytesIO()
    # names are the user's ("cost_$5_vs_$10"): text, never read as mathematics
    for text in figure.findobj(Text):
        text.set_parse_math(False)
    # no dates, versions or random ids in the files: the same results draw the same bytes
    with rc_context({"svg.hashsalt": "mcalloc", "text.parse_math": False}):
        figure.savefig(png, format="png", dpi=_DPI, metadata={"Software": None})
        # laid out by the first save: the second draws the same places without laying them out again
        figure.set_layout_engine("none")
        figure.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    _write_atomic(folder / f"{name}.png", png.getvalue())
    _write_atomic(folder / f"{name}.svg", svg.getvalue())
    encoded = base64.b64encode(png.getvalue()).decode("ascii")
    return Picture(name=name, caption=caption, data_uri=f"data:image/png;base64,{encoded}")


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("mcalloc.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_METRIC_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "portfolio": ("portfolio", str),
    "currency": ("currency", str),
    "cagr_median": ("CAGR p50", _percent),
    "cagr_p05": ("CAGR p05", _percent),
    "cagr_p95": ("CAGR p95", _percent),
    "vol_ann": ("volatility", _percent),
    "maxdd_median": ("maxDD p50", _percent),
    "maxdd_p95": ("maxDD p95", _percent),
    "cvar_95_annual": ("CVaR95 (annual)", _percent),
    "prob_loss": ("P(loss)", _percent),
    "underwater_years_median": ("under water p50 (years)", _cell),
    "terminal_wealth_p50": ("wealth p50", _money),
}

_MONEY_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "portfolio": ("portfolio", str),
    "currency": ("currency", str),
    "invested_mean": ("paid in, net (mean)", _money),
    "mwr_median": ("money-weighted return p50", _percent),
    "prob_shortfall": ("P(end below paid in)", _percent),
    "prob_depleted": ("P(ran dry)", _percent),
    "taxes_mean": ("taxes (mean)", _money),
    "terminal_wealth_real_p50": ("real wealth p50", _money),
}
"""The investor's own money, shown when the scenario has cash flows or taxes."""

_MODEL_COLUMNS = [
    "asset", "label", "role", "kind", "dist", "omega", "alpha", "gamma", "beta", "nu", "skew", "persistence",
    "vol_ann_unconditional", "vol_ann_total", "mean_se_ann", "loading_lag0", "loglikelihood", "ljung_box_sq_p",
]  # fmt: skip


_OPTIMIZATION = [
    "portfolio", "objective", "objective_value", "objective_new_paths", "objective_new_paths_se", "grid_gap",
    "horizon_cvar_95_fit", "horizon_cvar_95_new_paths", "maxdd_p95_fit", "maxdd_p95_new_paths", "status", "solver",
]  # fmt: skip


_FRACTIONS = (
    "maxdd_p95_fit", "maxdd_p95_new_paths", "prob_loss", "prob_below_reference", "cagr_median", "cagr_p05",
)  # fmt: skip
"""Columns of the optimisation and holding-period tables that are fractions of wealth or probabilities:
shown in percent, as the other tables and the figures show them (log losses and objectives stay numbers)."""


def _percent_columns(frame: pd.DataFrame | None) -> Table | None:
    """:func:`_format_frame` with :data:`_FRACTIONS` shown in percent."""
    if frame is None or frame.empty:
        return None
    return Table.of(frame, {column: _percent for column in _FRACTIONS if column in frame})


def _present(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column in frame]


def _renamed(frame: pd.DataFrame, columns: dict[str, tuple[str, Callable[[Any], str]]]) -> Table:
    present = [column for column in columns if column in frame]
    part = frame[present]
    table = Table.of(part, {column: columns[column][1] for column in present})
    return Table(columns=[columns[column][0] for column in present], rows=table.rows)


def _signed(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):+.3f}"


_RATIOS = ("diversification_ratio", "effective_bets")
"""Statistics of diversification.csv that are ratios or counts: shown as they are, not as percentage points."""


def _difference_format(statistic: str) -> Callable[[Any], str]:
    """How a diversification.csv statistic's difference is shown: a probability, a ratio, or percentage points."""
    if statistic == "prob_wealthier":
        return _percent
    return _signed if statistic in _RATIOS else _points


def _with_interval(show: Callable[[Any], str], value: Any, low: Any, high: Any) -> str:
    """``value (low .. high)``; empty where the statistic was not computed."""
    if pd.isna(value):
        return ""
    return f"{show(value)} ({show(low)} .. {show(high)})"


def _diversification_table(table: pd.DataFrame) -> Table:
    rows = []
    for _, row in table.iterrows():
        show = _difference_format(str(row["statistic"]))
        # P(wealthier) is empty for a mix level with the reference on every path
        same = row["statistic"] == "prob_wealthier" and pd.isna(row["difference"])
        rows.append(
            [
                str(row["portfolio"]),
                str(row["currency"]),
                str(row["statistic"]),
                "same mix" if same else show(row["difference"]),
                # a share or ratio of the mix has no interval: the cell is empty, not " .. "
                "" if same or pd.isna(row["ci_low"]) else f"{show(row['ci_low'])} .. {show(row['ci_high'])}",
                _with_interval(show, row["unpaired_difference"], row["unpaired_ci_low"], row["unpaired_ci_high"]),
            ]
        )
    columns = [
        "portfolio", "currency", "statistic", "difference", "95% Monte Carlo interval (paired)",
        "unpaired: difference (95% interval)",
    ]  # fmt: skip
    return Table(columns=columns, rows=rows)


def _finished(manifest: Mapping[str, Any]) -> str:
    """When the run finished; a run drawing its own report, its last step, finishes as the report is drawn."""
    if manifest.get("finished_at"):
        return str(manifest["finished_at"])
    if manifest.get("status") == "running":
        return f"{datetime.now(UTC).isoformat(timespec='seconds')} (with this report, its last step)"
    return str(manifest.get("status") or "unknown")


def _count(value: object) -> str:
    """A manifest's count with thousands separators; ``?`` where an old or hand-edited manifest lacks it."""
    return f"{value:,}" if isinstance(value, int) else "?"


def _provenance(run: Run) -> Table:
    manifest = run.manifest
    items: list[tuple[str, Any]] = [
        ("scenario", manifest.get("scenario")),
        ("description", run.config.get("description", "")),
        ("paths x years", f"{_count(manifest.get('n_paths'))} x {manifest.get('horizon_years')}"),
        ("rebalancing", run.config.get("portfolio", {}).get("rebalance")),
        ("base currency", run.config.get("currency", {}).get("base", "USD")),
        ("account tax", _account_tax(run.config.get("tax") or {}, run.config.get("currency", {}).get("base", "USD"))),
        ("dependence model", (manifest.get("dependence") or {}).get("kind")),
        ("seed", manifest.get("seed")),
        ("config sha256", manifest.get("config_sha256")),
        ("started / finished (UTC)", f"{manifest.get('started_at')} / {_finished(manifest)}"),
        ("mcalloc / python", f"{manifest.get('engine_version')} / {manifest.get('python')}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in (manifest.get("packages") or {}).items())),
    ]
    window = manifest.get("data_window")
    if window:
        items.append(("data window", f"{window['first_return']} to {window['last_return']} ({window['n_returns']:,})"))
    for record in manifest.get("data") or []:
        name = record.get("path") or record.get("source") or record.get("name", "data")
        items.append((f"data {name}", f"sha256 {str(record.get('sha256', ''))[:16]}"))
    return Table(columns=["item", "value"], rows=[[key, "" if value is None else str(value)] for key, value in items])


def _weights(run: Run) -> Table:
    """Every portfolio's weights in percent; an optimised one's with its range over batches of the optimiser's paths."""
    text = run.weights_table().map(_percent)
    ranged = weight_ranges(run.stability, text)
    return Table.of((text if ranged is None else ranged).reset_index())


def _frontier_paths_text(run: Run) -> str:
    """Which paths the frontier figure's points were solved and measured on, as its caption says it."""
    n_paths, every = frontier_paths(run)
    if every:
        return f"solved and measured on all {n_paths:,} of the optimiser's paths, as its table is."
    return (
        f"solved and measured on the first {n_paths:,} of the optimiser's paths: the optimised portfolios' stars "
        "are measured there too, so they differ a little from the optimiser's table (all of its paths)."
    )


def _drawdown_axes(run: Run) -> str:
    """What the frontier figure's drawdown panels plot: the frontiers' own measures, or (older files) the tables'."""
    if run.frontier is not None and "cdar_95_uncompounded" in run.frontier:
        return (
            "Each panel's axis is what its frontiers minimise: the drawdown panels' are uncompounded (drawdowns of "
            "summed monthly returns, linear in the weights), so they read higher than the tables' compounded ones."
        )
    return (
        "The drawdown panels show the compounded CDaR95 and 95th-percentile drawdown (this folder's frontier.csv "
        "predates the frontiers' own, uncompounded measures), so a mix can sit a little left of a frontier."
    )


def _account_tax(tax: Mapping[str, Any], currency: str) -> str:
    """The account the run taxed, with the rates that set its tax (tax.kind and its section)."""
    kind = tax.get("kind", "none")
    if kind == "isk":
        isk = tax.get("isk") or {}
        rate = max(isk.get("government_bond_rate", 0.0) + isk.get("margin", 0.0), isk.get("floor", 0.0))
        return (
            f"ISK: {isk.get('tax_rate', 0.0):.0%} of a standard income of {rate:.2%} of the capital base above "
            f"{currency} {isk.get('allowance', 0.0):,.0f}; "
            f"foreign withholding {isk.get('foreign_withholding', 0.0):.0%}"
        )
    if kind == "depot":
        depot = tax.get("depot") or {}
        sold = "sold at the horizon" if depot.get("liquidate_at_horizon") else "not sold at the horizon"
        limit = depot.get("deficit_limit")
        deficit = (
            f"a deficit credited at {depot.get('capital_gains_rate', 0.0):.0%} up to {currency} {limit:,.0f} and "
            f"{depot.get('deficit_rate_above', 0.0):.0%} above"
            if limit is not None
            else f"a deficit credited at {depot.get('capital_gains_rate', 0.0):.0%}"
        )
        return (
            f"depot: gains {depot.get('capital_gains_rate', 0.0):.0%} (average cost), "
            f"{depot.get('loss_deduction', 0.0):.0%} of a loss deductible, {deficit}, dividends "
            f"{depot.get('dividend_tax_rate', 0.0):.0%}, fund standard income "
            f"{depot.get('fund_standard_income', 0.0):.1%}; {sold}"
        )
    return "none (returns before tax)"


def _pictures(run: Run, target: Path) -> dict[str, Picture | None]:
    """Every figure of ``run``'s report, drawn and written into the folder ``target``."""
    chosen = run.config.get("output", {}).get("report_portfolios") or []
    return {
        "fan": _save(
            figures.fan_figure(run, chosen),
            "fan",
            "Wealth across paths month by month: the median, the middle half and 90% of paths. With savings the "
            "start is the first amount only (the table above has what was paid in); an account that sells at the "
            "horizon (tax.depot.liquidate_at_horizon) pays its gains tax in the last month.",
            target,
        ),
        "drawdowns": _save(
            figures.drawdown_figure(run),
            "drawdowns",
            "Each path's deepest fall from a peak, and its longest stretch below a previous peak.",
            target,
        ),
        "diversification": _save(
            figures.diversification_figure(run),
            "diversification",
            "What each mix changes against the reference on the same paths, with 95% paired-bootstrap intervals.",
            target,
        ),
        "frontier": _save(
            frontier_figure(run),
            "frontier",
            "Frontiers per risk measure and per asset set (diversification frontiers), "
            + _frontier_paths_text(run)
            + " "
            + _drawdown_axes(run),
            target,
        ),
        "weights": _save(
            figures.weights_figure(run),
            "weights",
            "Weights of every portfolio; optimised ones with the range of their weights over independent batches "
            "of the optimiser's paths (stability.csv).",
            target,
        ),
        "horizons": _save(
            figures.horizons_figure(run),
            "horizons",
            "Chance of a loss and the 5th-percentile CAGR for each holding period.",
            target,
        ),
        "correlation": _save(
            figures.correlation_figure(run),
            "correlation",
            "Correlation of the assets' simulated daily returns (return_correlation.csv), and of the dependence "
            "model's shocks (correlation.csv): with a market factor, the idiosyncratic parts' shocks, which leave "
            "out what the assets share through the market.",
            target,
        ),
    }


def _format_frame(frame: pd.DataFrame | None) -> Table | None:
    if frame is None or frame.empty:
        return None
    return Table.of(frame)


def write_report(run: Run, folder: Path | None = None) -> Path:
    """Draw ``run``'s figures and write ``report.html`` into ``folder`` (default: the run's own).

    The figures are drawn into a folder of their own beside ``figures/`` and
    take its place only once all are drawn and the page is rendered: a
    report stopped half way (Ctrl-C) leaves the earlier figures and page as
    they were, not a mix of old and new or figures without a page.
    """
    folder = folder if folder is not None else run.folder
    if (folder / "figures").exists() and not (folder / "figures").is_dir():
        raise OutputError(f"{folder / 'figures'}: cannot be made (a file of that name is in the way); move it")
    if (folder / "report.html").is_dir():
        raise OutputError(f"{folder / 'report.html'}: cannot be written (a folder of that name is in the way); move it")
    drawing = folder / ".figures.drawing"
    # two reports of one folder at once (a notebook and make, say) take turns: each clears the other's drawing
    with _turn(folder / ".report.lock"):
        shutil.rmtree(drawing, ignore_errors=True)
        try:
            return _write_page(run, folder, drawing)
        finally:
            shutil.rmtree(drawing, ignore_errors=True)
            (folder / _NEW_PAGE).unlink(missing_ok=True)


@contextmanager
def _turn(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (made if need be) while the block runs; where there is no
    ``fcntl`` (Windows), or the file cannot be made, the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms CI runs
        yield
        return
    try:
        handle = lock.open("a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_NEW_PAGE = ".report.html.new"
"""The page drawn, beside the run's, until it and its figures replace the earlier ones together."""


def _write_page(run: Run, folder: Path, drawing: Path) -> Path:
    """:func:`write_report`, its figures drawn into ``drawing`` and moved into ``figures/`` at the end."""
    pictures = _pictures(run, drawing)
    models = run.models[_present(run.models, _MODEL_COLUMNS)]
    optimization = run.optimization
    context = {
        "title": f"mcalloc: {run.manifest.get('scenario')}",
        "provenance": _provenance(run),
        "metrics": _renamed(run.metrics, _METRIC_COLUMNS),
        "money": _renamed(run.metrics, _MONEY_COLUMNS) if has_money(run.config) else None,
        "inflation": f"{float((run.config.get('portfolio') or {}).get('inflation') or 0.0):.1%}",
        "compare_in": (run.config.get("currency") or {}).get("compare_in"),
        "initial_wealth": f"{float((run.config.get('portfolio') or {}).get('initial_wealth') or 1.0):,.0f}",
        "pictures": pictures,
        "diversification": (
            _diversification_table(run.diversification)
            if run.diversification is not None and not run.diversification.empty
            else None
        ),
        "reference": (
            run.diversification["reference"].iloc[0]
            if run.diversification is not None and not run.diversification.empty
            else None
        ),
        "optimization": _percent_columns(
            None if optimization is None or optimization.empty else optimization[_present(optimization, _OPTIMIZATION)]
        ),
        "frontier_points": ((run.config.get("optimize") or {}).get("frontier") or {}).get("points"),
        "weights": _weights(run),
        "horizons": _percent_columns(run.horizons),
        "models": Table.of(models),
        "dependence": _format_frame(run.dependence),
        "calibration": _format_frame(run.calibration),
        "warnings": list(run.manifest.get("warnings") or []),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    html = _environment().get_template("report.html.j2").render(**context)
    target = folder / "report.html"
    page = folder / _NEW_PAGE
    _write_atomic(page, html.encode("utf-8"))  # after a SIGTERM the earlier report stays
    figures_folder = folder / "figures"
    earlier = folder / ".figures.old"
    shutil.rmtree(earlier, ignore_errors=True)
    # the figures and the page change together: Ctrl-C or SIGTERM wait until both are in place
    done: list[tuple[Path, Path]] = []  # the moves made, undone in reverse if a later one fails
    with signals_held(signal.SIGINT, signal.SIGTERM):
        moves = [(figures_folder, earlier)] if drawing.exists() and figures_folder.exists() else []
        moves += [(drawing, figures_folder)] if drawing.exists() else []
        for source, destination in [*moves, (page, target)]:
            try:
                os.replace(source, destination)
            except OSError as error:
                for moved_from, moved_to in reversed(done):
                    with suppress(OSError):
                        os.replace(moved_to, moved_from)
                where = target if source == page else figures_folder
                reason = error.strerror or type(error).__name__
                raise OutputError(f"{where}: cannot be written ({reason}); {_WRITABLE}") from None
            done.append((source, destination))
    shutil.rmtree(earlier, ignore_errors=True)
    return target


def build_report(run_dir: str | Path) -> Path:
    """Rebuild ``report.html`` and ``figures/`` of a finished run or backtest, or ``batch.html`` of a batch."""
    folder = Path(run_dir)
    if (folder / "index.parquet").is_file() and not (folder / "manifest.json").is_file():
        return build_batch_report(folder)
    manifest = read_manifest(folder)  # refused in one line, as load would, when missing or unreadable
    if (folder / "validation.csv").is_file() or manifest.get("kind") == "backtest":
        from mcalloc.report.validation import write_backtest_report

        status = manifest.get("status")
        if status == "running":
            raise RunFolderError(f"{folder}: {unfinished(manifest).replace('the run', 'the backtest')}")
        if status != "complete":
            error = manifest.get("error", "no error recorded")
            raise RunFolderError(f"{folder}: the backtest is {status}, not complete: {error}; run it again")
        return write_backtest_report(folder)
    # the report shows no single path: the per-path table (the largest file) stays unread
    return write_report(load(folder, with_paths=False))


def build_batch_report(folder: Path) -> Path:
    """``batch.html`` in a batch folder: the swept parameter against each portfolio's key metrics, and the index."""
    from mcalloc.api import load_batch

    index = load_batch(folder)
    fixed = {"run", "status", "key", "error", "folder"}
    parameters = [str(c) for c in index.columns if str(c) not in fixed and ":" not in str(c)]
    if not parameters:
        parameters = ["run"]
    picture = _save(
        figures.batch_figure(index, parameters),
        "batch",
        f"Key metrics of each portfolio against {parameters[0] if parameters else 'the runs'}; "
        "one line per portfolio and per setting of the other swept keys.",
        folder / "figures",
    )
    shown = index[[c for c in index.columns if str(c) != "folder"]]

    def shown_as(column: str) -> Callable[[Any], str]:
        """Wealth as money, a benefit (a difference of fractions) in percentage points, the rest in percent."""
        if is_money(column):
            return _money
        return _points if column.startswith("benefit_") else _percent

    formats = {str(c): shown_as(str(c)) for c in shown.columns if ":" in str(c)}
    context = {
        "title": f"mcalloc batch: {folder.name}",
        "runs": [],
        "comparison": Table.of(shown, formats),
        "units": (
            "A benefit_ column is the portfolio's statistic minus the reference portfolio's, in percentage points "
            "(the figure draws it in percent); rates are in percent, money in each run's base currency "
            "(currency.base)."
        ),
        "pictures": [picture] if picture is not None else [],
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    html = _environment().get_template("compare.html.j2").render(**context)
    target = folder / "batch.html"
    _write_atomic(target, html.encode("utf-8"))
    return target


def build_comparison_report(runs: Sequence[Run], table: pd.DataFrame, out: Path) -> Path:
    """A folder with ``comparison.csv``, ``compare.html`` and its figures, for runs compared side by side.

    The folder is built under a temporary name and moved into place whole.
    """
    working = working_folder(out, "comparison.csv", "comparison folder")
    try:
        table.to_csv(working / "comparison.csv", index=False, float_format="%.10g")
        labels = run_labels(runs)
        pictures = [
            _save(
                figures.comparison_figure(table),
                "comparison",
                "Median CAGR and 95th-percentile maximum drawdown of each portfolio in each run.",
                working / "figures",
            ),
            _save(
                figures.comparison_fan_figure(runs, labels),
                "fans",
                "Median wealth (lines) and the 5-95% range (shaded) of each run's reference portfolio, "
                "in its own currency (log scale).",
                working / "figures",
            ),
        ]
        metric_formats: dict[str, Callable[[Any], str]] = {
            column: (_money if is_money(column) else _percent) for column in compared_metrics(runs)
        }
        context = {
            "title": "mcalloc: " + " vs ".join(labels),
            "runs": [
                {
                    "label": label,
                    "folder": str(run.folder),
                    "scenario": run.manifest.get("scenario"),
                    "seed": run.manifest.get("seed"),
                    "n_paths": run.manifest.get("n_paths"),
                    "version": run.manifest.get("engine_version"),
                    "config_sha256": str(run.manifest.get("config_sha256") or "")[:12],
                }
                for label, run in zip(labels, runs, strict=True)
            ],
            "comparison": Table.of(table, metric_formats),
            "units": "Rates are in percent, money in each row's currency.",
            "pictures": [p for p in pictures if p is not None],
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        html = _environment().get_template("compare.html.j2").render(**context)
        (working / "compare.html").write_text(html, encoding="utf-8")
        release_claim(working)
        move_into_place(working, out)
    except BaseException:
        shutil.rmtree(working, ignore_errors=True)
        raise
    return out / "compare.html"
