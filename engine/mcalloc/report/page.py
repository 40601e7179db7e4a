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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.text import Text

from mcalloc.api import Run, RunFolderError, load, read_manifest, unfinished
from mcalloc.errors import OutputError, check_stop, signals_held
from mcalloc.report import figures
from mcalloc.report.answer import findings, uncertainty_note
from mcalloc.report.compare import compared_metrics, has_money, is_money, run_labels
from mcalloc.report.frontier import frontier_figure
from mcalloc.report.tables import (
    METRIC_HEADINGS,
    MODEL_COLUMNS_SHOWN,
    MONEY_HEADINGS,
    OPTIMIZATION_COLUMNS_SHOWN,
    Table,
    calibration_step,
    calibration_tables,
    diversification_cells,
    drawdown_axes,
    format_frame,
    frontier_paths_text,
    money,
    percent,
    percent_columns,
    points,
    present_columns,
    provenance,
    renamed_table,
    weights_table,
)
from mcalloc.results.writer import move_into_place, release_claim, working_folder

__all__ = [
    "Table",
    "build_batch_report",
    "build_comparison_report",
    "build_report",
    "publish_page",
    "write_report",
]

_DPI = 110


@dataclass(frozen=True)
class Picture:
    """A figure as the page shows it: where its files are, a caption, and its PNG as a data URI."""

    name: str
    caption: str
    data_uri: str


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


def _pictures(run: Run, target: Path) -> dict[str, Picture | None]:
    """Every figure of ``run``'s report, drawn and written into the folder ``target``."""
    chosen = run.config.get("output", {}).get("report_portfolios") or []
    return {
        "fan": _save(
            figures.fan_figure(run, chosen),
            "fan",
            _fan_caption(run.config),
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
            + frontier_paths_text(run)
            + " "
            + drawdown_axes(run),
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


def _fan_caption(config: dict[str, Any]) -> str:
    """The fan chart's caption: what its bands are, and what savings or a depot's sale at the horizon do to it."""
    caption = "Wealth across paths month by month: the median, the middle half and 90% of paths."
    if (config.get("portfolio") or {}).get("flows"):
        caption += (
            " With cash flows the start is the initial wealth only (the investor's money, above, has what was paid in"
            " net of withdrawals)."
        )
    tax = config.get("tax") or {}
    if tax.get("kind") == "depot" and (tax.get("depot") or {}).get("liquidate_at_horizon", True):
        caption += (
            " The depot sells at the horizon (tax.depot.liquidate_at_horizon) and pays its gains tax in the last month."
        )
    return caption


def write_report(run: Run, folder: Path | None = None) -> Path:
    """Draw ``run``'s figures and write ``report.html`` into ``folder`` (default: the run's own).

    The figures and the page change together (:func:`publish_page`).
    """
    folder = folder if folder is not None else run.folder
    return publish_page(folder, "report.html", lambda drawing: _render_page(run, drawing))


def publish_page(folder: Path, name: str, render: Callable[[Path], str]) -> Path:
    """Write the page ``name`` into ``folder`` with the figures ``render`` draws, all at once.

    ``render`` draws its figures into the folder it is given (beside
    ``figures/``) and returns the page's HTML; they take the place of
    ``figures/`` and the page only once all are drawn and the page is
    rendered: a report stopped half way (Ctrl-C) leaves the earlier figures
    and page as they were, not a mix of old and new or figures without a page.
    """
    if (folder / "figures").exists() and not (folder / "figures").is_dir():
        raise OutputError(f"{folder / 'figures'}: cannot be made (a file of that name is in the way); move it")
    if (folder / name).is_dir():
        raise OutputError(f"{folder / name}: cannot be written (a folder of that name is in the way); move it")
    drawing = folder / ".figures.drawing"
    page = folder / f".{name}.new"
    # two reports of one folder at once (a notebook and make, say) take turns: each clears the other's drawing
    with _turn(folder / ".report.lock"):
        shutil.rmtree(drawing, ignore_errors=True)
        try:
            html = render(drawing)
            _write_atomic(page, html.encode("utf-8"))  # after a SIGTERM the earlier page stays
            return _put_in_place(folder, drawing, page, folder / name)
        finally:
            shutil.rmtree(drawing, ignore_errors=True)
            page.unlink(missing_ok=True)


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


def _render_page(run: Run, drawing: Path) -> str:
    """:func:`write_report`'s page, its figures drawn into ``drawing``."""
    pictures = _pictures(run, drawing)
    models = run.models[present_columns(run.models, MODEL_COLUMNS_SHOWN)]
    optimization = run.optimization
    compared = run.diversification if run.diversification is not None and not run.diversification.empty else None
    step = calibration_step(run.config)
    outside = None
    if run.calibration is not None and not run.calibration.empty:  # the models' checks only for a fitted run
        from mcalloc.models.validation import outside_summary

        outside = outside_summary(run.calibration)
    context = {
        "title": f"mcalloc: {run.manifest.get('scenario')}",
        "provenance": provenance(run),
        "metrics": renamed_table(run.metrics, METRIC_HEADINGS),
        "money": renamed_table(run.metrics, MONEY_HEADINGS) if has_money(run.config) else None,
        "inflation": f"{float((run.config.get('portfolio') or {}).get('inflation') or 0.0):.1%}",
        "compare_in": (run.config.get("currency") or {}).get("compare_in"),
        "initial_wealth": f"{float((run.config.get('portfolio') or {}).get('initial_wealth') or 1.0):,.0f}",
        "pictures": pictures,
        "diversification": diversification_cells(compared) if compared is not None else None,
        "reference": compared["reference"].iloc[0] if compared is not None else None,
        "findings": findings(compared),
        "answer_currency": compared["currency"].iloc[0] if compared is not None else None,
        "uncertainty": uncertainty_note(run.config),
        "optimization": percent_columns(
            None
            if optimization is None or optimization.empty
            else optimization[present_columns(optimization, OPTIMIZATION_COLUMNS_SHOWN)]
        ),
        "frontier_points": ((run.config.get("optimize") or {}).get("frontier") or {}).get("points"),
        "weights": weights_table(run),
        "horizons": percent_columns(run.horizons),
        "models": Table.of(models),
        "dependence": format_frame(run.dependence),
        "calibration": calibration_tables(run.calibration, step),
        "calibration_step": step,
        "calibration_outside": outside,
        "warnings": list(run.manifest.get("warnings") or []),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return str(_environment().get_template("report.html.j2").render(**context))


def _put_in_place(folder: Path, drawing: Path, page: Path, target: Path) -> Path:
    """Move the figures drawn into ``drawing`` to ``figures/`` and the written ``page`` to ``target``, together."""
    figures_folder = folder / "figures"
    earlier = folder / ".figures.old"
    shutil.rmtree(earlier, ignore_errors=True)
    # the figures and the page change together: Ctrl-C or SIGTERM wait until both are in place
    done: list[tuple[Path, Path]] = []  # the moves made, undone in reverse if a later one fails
    with signals_held(signal.SIGINT, signal.SIGTERM):
        # an earlier page's figures go even when this one has none (a batch whose runs have all failed since)
        moves = [(figures_folder, earlier)] if figures_folder.exists() else []
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
    if not (folder / "manifest.json").is_file() and any((folder / n).is_file() for n in ("index.parquet", "index.csv")):
        return build_batch_report(folder)  # load_batch names what is wrong with a batch's index
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
    from mcalloc.api import index_lacks, load_batch

    index = load_batch(folder)
    absent = next((column for column in ("run", "status") if column not in index.columns), None)
    if absent is not None:  # an index of the first batches lacks neither, but one edited by hand may
        raise index_lacks(folder / "index.parquet", absent)
    fixed = {"run", "status", "key", "error", "folder"}
    parameters = [str(c) for c in index.columns if str(c) not in fixed and ":" not in str(c)]
    if not parameters:
        parameters = ["run"]
    shown = index[[c for c in index.columns if str(c) != "folder"]]

    def shown_as(column: str) -> Callable[[Any], str]:
        """Wealth as money, a benefit (a difference of fractions) in percentage points, the rest in percent."""
        if is_money(column):
            return money
        return points if column.startswith("benefit_") else percent

    formats = {str(c): shown_as(str(c)) for c in shown.columns if ":" in str(c)}

    def render(drawing: Path) -> str:
        picture = _save(
            figures.batch_figure(index, parameters),
            "batch",
            f"Key metrics of each portfolio against {parameters[0] if parameters else 'the runs'}; "
            "one line per portfolio and per setting of the other swept keys.",
            drawing,
        )
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
        return str(_environment().get_template("compare.html.j2").render(**context))

    return publish_page(folder, "batch.html", render)


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
            column: (money if is_money(column) else percent) for column in compared_metrics(runs)
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
