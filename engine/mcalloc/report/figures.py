"""The report's figures, drawn with matplotlib from a run's saved tables.

Each function takes a :class:`mcalloc.api.Run` (or the tables it needs) and
returns a :class:`matplotlib.figure.Figure`, or ``None`` when the run has
nothing to draw. Figures are built without pyplot, so no window, no global
state and no display are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

if TYPE_CHECKING:
    from mcalloc.api import Run

__all__ = [
    "batch_figure",
    "comparison_fan_figure",
    "comparison_figure",
    "correlation_figure",
    "distinct_portfolios",
    "diversification_figure",
    "drawdown_figure",
    "fan_figure",
    "horizons_figure",
    "legend_below",
    "weights_figure",
]

_WIDTH = 9.0
_MAX_FAN_PANELS = 6

_FRONTIER_MEASURES = {
    "volatility": ("volatility", "volatility (annual)"),
    "cvar": ("horizon_cvar_95", "CVaR95 of horizon log loss (0.69 = halved)"),
    "cdar": ("cdar_95_uncompounded", "CDaR95 of month-end drawdowns, uncompounded"),
    "maxdd": ("maxdd_cvar_95_uncompounded", "CVaR95 of the largest drawdown, uncompounded"),
}
_OLDER_FRONTIER_MEASURES = {
    "cdar": ("cdar_95", "CDaR95 (month-end drawdown), compounded"),
    "maxdd": ("maxdd_p95", "maximum drawdown, 95th percentile, compounded"),
}
"""The drawdown panels' axes for a frontier.csv written before it held the frontiers' own measures (schema 1.5)."""
_LOG_MEASURES = {"cvar"}
"""Frontier measures that are log losses, not fractions of wealth: drawn as numbers, not percentages."""

_DIVERSIFICATION_STATISTICS = {
    "cagr_median": "median CAGR",
    "vol_ann": "volatility",
    "maxdd_p95": "maxDD p95",
    "cvar_95_annual": "CVaR95 (annual)",
}


def _figure(height: float, columns: int = 1, rows: int = 1) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(_WIDTH, height), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    return figure, axes


def _legend_below(figure: Figure, panel: Axes, columns: int = 3) -> None:
    """One legend for the figure, under its panels, so it never hides data."""
    handles, labels = panel.get_legend_handles_labels()
    legend_below(figure, handles, labels, columns=columns)


def legend_below(
    figure: Figure, handles: Sequence[Artist], labels: Sequence[str], columns: int = 3, fontsize: float = 8
) -> None:
    """A legend of ``handles`` under the figure's panels, in as many of ``columns`` as fit its width."""
    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]  # matplotlib: untyped
    # as many columns as fit the picture's width: long names (a shared mix's, or the schema's 40 characters) take fewer
    for ncols in range(max(1, min(columns, len(labels))), 0, -1):
        legend = figure.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=fontsize)
        for text in legend.get_texts():
            text.set_parse_math(False)  # names are the user's ("cost_$5_vs_$10"): text, never mathematics
        if ncols == 1 or legend.get_window_extent(renderer).width <= figure.bbox.width:
            break
        legend.remove()


_LINE_STYLES = ("-", "--", ":", "-.")


def _line(index: int) -> dict[str, str]:
    """The ``index``-th portfolio's colour and line style: past matplotlib's ten colours the styles change."""
    return {"color": f"C{index % 10}", "linestyle": _LINE_STYLES[(index // 10) % len(_LINE_STYLES)]}


def _money(value: float, _: object = None) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def distinct_portfolios(run: Run, chosen: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(portfolio, label) of each distinct mix in run order; a mix shared by several is labelled with all names.

    With ``chosen``, those portfolios (in that order) instead.
    """
    if chosen:
        return [(name, name) for name in chosen]
    weights = run.weights_table()
    groups: dict[tuple[float, ...], list[str]] = {}
    for name, row in weights.iterrows():
        key = tuple(np.round(row.to_numpy(dtype=float), 6))
        groups.setdefault(key, []).append(str(name))
    return [(names[0], " = ".join(names)) for names in groups.values()]


def _base_currency(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the run's own (first) currency when a table has several."""
    if "currency" not in table or table.empty:
        return table
    own: pd.DataFrame = table[table["currency"] == table["currency"].iloc[0]]
    return own


def correlation_figure(run: Run) -> Figure:
    """Heatmaps of the assets' simulated daily return correlation and of the dependence model's shocks.

    With a market factor the shocks are the idiosyncratic parts', which
    correlate little: the returns' panel is what the assets do together.
    Runs written before ``return_correlation.csv`` show the shocks alone.
    """
    panels = []
    returns = run.return_correlation
    if returns is not None and not returns.empty:
        currency = str(returns["currency"].iloc[0])
        base = returns[returns["currency"] == currency].drop(columns="currency").set_index("asset")
        panels.append((base, f"simulated daily returns ({currency}, after fees)"))
    panels.append(
        (run.correlation.set_index("asset"), "the model's shocks" if panels else "correlation of the model's shocks")
    )
    size = max(len(matrix) for matrix, _ in panels)
    figure, axes = _figure(1.4 + 0.9 * size, len(panels))
    figure.set_figwidth(min(_WIDTH, (2.5 + 1.3 * size) * len(panels)))
    for panel, (matrix, title) in zip(axes, panels, strict=True):
        values = matrix.to_numpy(dtype=float)
        image = panel.imshow(values, vmin=-1.0, vmax=1.0, cmap="RdBu_r")
        panel.set_xticks(range(len(matrix)), matrix.columns, rotation=30, ha="right")
        panel.set_yticks(range(len(matrix)), matrix.index)
        for row in range(len(matrix)):
            for column in range(len(matrix)):
                value = values[row, column]
                text = "-" if not np.isfinite(value) else f"{value:.2f}"
                panel.text(column, row, text, ha="center", va="center", color="white" if abs(value) > 0.6 else "k")
        panel.set_title(title, fontsize=10)
    figure.colorbar(image, ax=list(axes), shrink=0.8)
    return figure


def fan_figure(run: Run, chosen: Sequence[str] = ()) -> Figure | None:
    """Wealth percentiles by month (5-95, 25-75 and the median), one panel per distinct portfolio."""
    if run.fan is None or run.fan.empty:
        return None
    fan = _base_currency(run.fan)
    every = distinct_portfolios(run, chosen)
    portfolios = every[:_MAX_FAN_PANELS]
    columns = 2 if len(portfolios) > 1 else 1
    rows = -(-len(portfolios) // columns)
    figure, axes = _figure(2.6 * rows + 0.4, columns, rows)
    # a log axis shows positive, finite wealth; 0 or inf (beyond fan.csv's range) is left out
    shown = fan[fan["portfolio"].isin([name for name, _ in portfolios])]
    bands = [str(column) for column in shown.columns if str(column).startswith("wealth_p")]
    shown = shown.assign(**{band: shown[band].where(np.isfinite(shown[band]) & (shown[band] > 0)) for band in bands})
    top, bottom = float(np.nanmax(shown[bands].to_numpy())), float(np.nanmin(shown[bands].to_numpy()))
    paid_in = _paid_in(run)
    for panel, (name, label) in zip(axes, portfolios, strict=False):
        part = shown[shown["portfolio"] == name]
        years = part["month"].to_numpy() / 12.0
        panel.fill_between(years, part["wealth_p05"], part["wealth_p95"], color="C0", alpha=0.18, label="5-95%")
        panel.fill_between(years, part["wealth_p25"], part["wealth_p75"], color="C0", alpha=0.35, label="25-75%")
        panel.plot(years, part["wealth_p50"], color="C0", linewidth=1.8, label="median")
        panel.axhline(float(part["wealth_p50"].iloc[0]), color="0.4", linewidth=0.8, linestyle=":")
        if paid_in is not None:
            months = part["month"].to_numpy(dtype=int)
            panel.plot(years, paid_in[months], color="0.15", linewidth=1.0, linestyle="--", label="paid in")
        panel.set_yscale("log")
        panel.set_ylim(bottom * 0.9, top * 1.1)
        panel.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        panel.yaxis.set_major_formatter(FuncFormatter(_money))
        panel.yaxis.set_minor_formatter(NullFormatter())
        panel.set_title(label, fontsize=9)
        panel.set_xlabel("years")
        panel.grid(True, alpha=0.3)
    for panel in axes[len(portfolios) :]:
        panel.set_visible(False)
    axes[0].legend(loc="upper left", fontsize=8)
    currency = fan["currency"].iloc[0]
    left_out = (
        f"; the first {len(portfolios)} of {len(every)} mixes, fan.csv has all" if len(every) > len(portfolios) else ""
    )
    paid = "; dashed: the money paid in" if paid_in is not None else ""
    # the explanation on a line of its own: on one line with the title it outgrew a one-panel figure
    figure.suptitle(f"wealth across paths, {currency}\n(log scale; dotted: the start{paid}{left_out})", fontsize=11)
    return figure


def _paid_in(run: Run) -> np.ndarray | None:
    """The money paid in by each month end (the initial wealth plus contributions), if the plan contributes.

    Shape (n_months + 1,), in the base currency, rebuilt from the run's
    resolved scenario, as the books scheduled it.
    """
    from mcalloc.config.sections import FlowConfig
    from mcalloc.portfolio.flows import CashFlowSchedule

    portfolio = run.config.get("portfolio") or {}
    flows = [FlowConfig.model_validate(flow) for flow in portfolio.get("flows") or []]
    if not any(flow.kind == "contribution" for flow in flows):
        return None
    initial = float(portfolio["initial_wealth"])
    schedule = CashFlowSchedule.from_config(flows, int(run.config["simulation"]["horizon_years"]), initial)
    return initial * schedule.paid_in()


def drawdown_figure(run: Run) -> Figure | None:
    """Distribution of each path's maximum drawdown and of its longest time under water."""
    if run.drawdowns is None or run.drawdowns.empty:
        return None
    table = _base_currency(run.drawdowns)
    portfolios = distinct_portfolios(run)
    measures = list(dict.fromkeys(table["measure"]))
    figure, axes = _figure(3.4, len(measures))
    titles = {
        "max_drawdown": ("maximum drawdown on a path", "fall from the peak"),
        "longest_underwater_years": ("longest time under water on a path", "years below the previous peak"),
    }
    for panel, measure in zip(axes, measures, strict=True):
        part = table[table["measure"] == measure]
        for index, (name, label) in enumerate(portfolios):
            rows = part[part["portfolio"] == name]
            edges = np.append(rows["lower"].to_numpy(), rows["upper"].iloc[-1])
            panel.stairs(rows["share"].to_numpy(), edges, label=label, linewidth=1.4, **_line(index))
        title, xlabel = titles.get(measure, (measure, measure))
        in_currency = f" ({table['currency'].iloc[0]})" if "currency" in table else ""
        panel.set_title(title + in_currency, fontsize=10)
        panel.set_xlabel(xlabel)
        panel.set_ylabel("share of paths")
        panel.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        if measure == "max_drawdown":
            panel.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            shares = part.groupby("lower")["share"].sum()
            reached = shares[shares > 0].index
            panel.set_xlim(0.0, min(1.0, float(reached.max()) + 0.04) if len(reached) else 1.0)
        panel.grid(True, alpha=0.3)
    _legend_below(figure, axes[0])
    return figure


def _interval_axes(panel: Axes, table: pd.DataFrame, statistic: str, label: str) -> None:
    part = table[table["statistic"] == statistic]
    positions = np.arange(len(part))[::-1]
    percent = statistic != "prob_wealthier"
    scale = 100.0 if percent else 1.0
    difference = part["difference"].to_numpy() * scale
    low = part["ci_low"].to_numpy() * scale
    high = part["ci_high"].to_numpy() * scale
    panel.errorbar(difference, positions, xerr=[difference - low, high - difference], fmt="o", color="C0", capsize=3)
    panel.axvline(0.0, color="0.3", linewidth=0.8)
    panel.set_yticks(positions, part["portfolio"])
    panel.set_title(label, fontsize=9)
    panel.set_xlabel("percentage points" if percent else "")
    panel.grid(True, axis="x", alpha=0.3)


def diversification_figure(run: Run) -> Figure | None:
    """Each portfolio minus the reference on the same paths, with 95% intervals."""
    table = run.diversification
    if table is None or table.empty:
        return None
    table = _base_currency(table)
    statistics = [s for s in _DIVERSIFICATION_STATISTICS if s in set(table["statistic"])]
    n_portfolios = table["portfolio"].nunique()
    rows = -(-len(statistics) // 2)
    # each row of panels needs its title and axis whatever the number of portfolios (one collapsed them to nothing)
    figure, axes = _figure(1.2 + rows * (0.9 + 0.35 * n_portfolios), 2, rows)
    for panel, statistic in zip(axes, statistics, strict=False):
        _interval_axes(panel, table, statistic, _DIVERSIFICATION_STATISTICS[statistic])
    for panel in axes[len(statistics) :]:
        panel.set_visible(False)
    figure.suptitle(
        f"minus {table['reference'].iloc[0]} on the same paths, for an investor in {table['currency'].iloc[0]}\n"
        "(95% Monte Carlo intervals; higher growth is right, lower risk is left)"
    )
    return figure


def weights_figure(run: Run) -> Figure:
    """Each portfolio's weights; optimised ones with whiskers from the lowest to the highest over batches of paths."""
    weights = run.weights_table()
    low = high = None
    if run.stability is not None and not run.stability.empty:
        low = run.stability.pivot(index="portfolio", columns="asset", values="batch_min")
        high = run.stability.pivot(index="portfolio", columns="asset", values="batch_max")
    n_portfolios, n_assets = weights.shape
    figure, (axes,) = _figure(1.0 + 0.32 * n_portfolios * n_assets / 2 + 0.5)
    height = 0.8 / n_assets
    positions = np.arange(n_portfolios)[::-1]
    for index, asset in enumerate(weights.columns):
        offset = positions + (n_assets / 2 - index - 0.5) * height
        errors = None
        if low is not None and high is not None and asset in low.columns:
            value = weights[asset].to_numpy(dtype=float)
            # no whisker (nan) for a fixed mix, and for an optimised one that no batch solved
            below = value - low[asset].reindex(weights.index).to_numpy(dtype=float)
            above = high[asset].reindex(weights.index).to_numpy(dtype=float) - value
            errors = np.clip(np.vstack([below, above]), 0.0, None)
        axes.barh(
            offset, weights[asset], height=height, color=f"C{index}", label=asset, xerr=errors,
            error_kw={"capsize": 2, "elinewidth": 0.8},
        )  # fmt: skip
    axes.set_yticks(positions, weights.index)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    # whiskers only where independent batches of the optimiser's paths gave ranges; no caption of what is not drawn
    whiskers = low is not None and bool(np.isfinite(low.to_numpy(dtype=float)).any())
    label = "weight (whiskers: lowest to highest over batches of the optimiser's paths)" if whiskers else "weight"
    axes.set_xlabel(label, wrap=True)
    _legend_below(figure, axes)
    axes.grid(True, axis="x", alpha=0.3)
    return figure


def horizons_figure(run: Run) -> Figure | None:
    """Probability of a loss, and the 5th-percentile CAGR, by holding period, per distinct portfolio."""
    horizons = run.horizons
    if horizons is None or horizons.empty:
        return None
    figure, axes = _figure(3.3, 2)
    for index, (name, label) in enumerate(distinct_portfolios(run)):
        part = horizons[horizons["portfolio"] == name]
        axes[0].plot(part["years"], part["prob_loss"], marker="o", markersize=3, label=label, **_line(index))
        axes[1].plot(part["years"], part["cagr_p05"], marker="o", markersize=3, label=label, **_line(index))
    axes[0].set_title("chance that a unit of the mix ends below its start", fontsize=10)
    axes[1].set_title("CAGR, 5th percentile", fontsize=10)
    for panel in axes:
        panel.set_xlabel("years held")
        panel.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        panel.grid(True, alpha=0.3)
    axes[1].axhline(0.0, color="0.3", linewidth=0.8)
    _legend_below(figure, axes[0])
    return figure


def comparison_figure(table: pd.DataFrame) -> Figure:
    """Median CAGR and 95th-percentile maximum drawdown of each portfolio (rows) in each run (bars).

    A run has the colour it has in :func:`comparison_fan_figure`; its second
    currency's bars are hatched. Runs of different horizons say theirs: a
    shorter one's drawdowns are smaller for that alone.
    """
    label = table["run"]
    if "simulation.horizon_years" in table:
        label = label + ", " + table["simulation.horizon_years"].astype(str) + " years"
    if table["currency"].nunique() > 1:
        label = label + " (" + table["currency"] + ")"
    data = table.assign(label=label)
    portfolios = list(dict.fromkeys(data["portfolio"]))
    series = list(dict.fromkeys(data["label"]))
    runs = list(dict.fromkeys(data["run"]))
    first = data.drop_duplicates("run").set_index("run")["label"]
    styles = {
        name: (f"C{runs.index(run)}", "" if first[run] == name else "//")
        for name, run in data.drop_duplicates("label")[["label", "run"]].itertuples(index=False)
    }
    figure, axes = _figure(1.2 + 0.25 * len(portfolios) * len(series), 2)
    height = 0.8 / len(series)
    positions = np.arange(len(portfolios))[::-1]
    for panel, (column, title) in zip(
        axes, [("cagr_median", "median CAGR"), ("maxdd_p95", "maximum drawdown, 95th percentile")], strict=True
    ):
        for index, name in enumerate(series):
            values = data[data["label"] == name].set_index("portfolio")[column].reindex(portfolios)
            offset = positions + (len(series) / 2 - index - 0.5) * height
            color, hatch = styles[name]
            panel.barh(
                offset,
                values.to_numpy(dtype=float),
                height=height,
                color=color,
                hatch=hatch,
                label=name,
                edgecolor="white" if hatch else None,
            )
        panel.set_yticks(positions, portfolios)
        panel.set_title(title, fontsize=10)
        panel.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        panel.grid(True, axis="x", alpha=0.3)
    axes[1].set_yticklabels([])
    _legend_below(figure, axes[0])
    return figure


def comparison_fan_figure(runs: Sequence[Run], labels: Sequence[str]) -> Figure | None:
    """Each run's wealth fan (median and 5-95%) for its reference portfolio, on one axis."""
    figure, (axes,) = _figure(3.6)
    drawn = 0
    for index, (run, label) in enumerate(zip(runs, labels, strict=True)):
        if run.fan is None or run.fan.empty:
            continue
        fan = _base_currency(run.fan)
        reference = (
            run.diversification["reference"].iloc[0]
            if run.diversification is not None and not run.diversification.empty
            else run.portfolios[0]
        )
        part = fan[fan["portfolio"] == reference]
        years = part["month"].to_numpy() / 12.0
        color = f"C{index}"
        axes.fill_between(years, part["wealth_p05"], part["wealth_p95"], color=color, alpha=0.12)
        axes.plot(years, part["wealth_p50"], color=color, label=f"{label}: {reference} ({fan['currency'].iloc[0]})")
        drawn += 1
    if not drawn:
        return None
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(_money))
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("years")
    axes.set_ylabel("wealth, each run's currency (log scale)")
    axes.grid(True, alpha=0.3)
    _legend_below(figure, axes, columns=2)
    return figure


_BATCH_PANELS = {
    "cagr_median": "median CAGR",
    "maxdd_p95": "maximum drawdown, 95th percentile",
    "benefit_cagr_median": "median CAGR minus the reference's",
    "benefit_maxdd_p95": "maxDD p95 minus the reference's",
}
_MAX_BATCH_LINES = 12


def _same_in_every_group(done: pd.DataFrame, parameter: str, column: str) -> bool:
    """Whether ``column`` has the same value at each value of ``parameter`` whatever the other swept keys are."""
    values = done.groupby(parameter, dropna=False)[column].nunique(dropna=False)
    return bool((values <= 1).all())


def batch_figure(index: pd.DataFrame, parameters: Sequence[str]) -> Figure | None:
    """Key metrics of every portfolio against the first swept parameter, a line per portfolio and other setting."""
    done = index[index["status"].isin(["complete", "skipped"])]
    if done.empty or not parameters:
        return None
    parameter = parameters[0]
    # what else the run varies: the other swept keys' values
    rest = [p for p in parameters[1:] if p in done]
    # a key one runs: entry sets and the others do not is empty for them: "-"
    shown = done[rest].map(lambda value: "-" if pd.isna(value) else str(value))
    others = shown.agg(", ".join, axis=1) if rest else pd.Series("all", index=done.index)
    done = done.assign(_others=others)
    # a run that swept the key to null has no place on a number line: the values are then drawn as labels
    numeric = pd.api.types.is_numeric_dtype(done[parameter]) and not done[parameter].isna().any()
    labels = done[parameter].map(lambda value: "null" if value is None or value != value else str(value))
    order = sorted(done[parameter].unique()) if numeric else list(dict.fromkeys(labels))
    panels = [p for p in _BATCH_PANELS if any(str(c).startswith(f"{p}:") for c in done.columns)]
    figure, axes = _figure(3.3 * -(-len(panels) // 2), 2, -(-len(panels) // 2))
    colours: dict[str, str] = {}  # one colour per portfolio and setting, the same in every panel
    for panel, prefix in zip(axes, panels, strict=False):
        columns = [str(c) for c in done.columns if str(c).startswith(f"{prefix}:")]
        groups = list(dict.fromkeys(done["_others"]))
        # a portfolio the other keys leave alone (the reference, when they change the mixes) is one line, not one
        # per setting drawn over each other in as many colours
        alike = {column for column in columns if len(groups) > 1 and _same_in_every_group(done, parameter, column)}
        lines = [(group, column) for group in groups for column in columns if column not in alike or group == groups[0]]
        if len(lines) > _MAX_BATCH_LINES:
            panel.text(
                0.01, 0.01, f"first {_MAX_BATCH_LINES} of {len(lines)} lines", transform=panel.transAxes, fontsize=7
            )
        for group, column in lines[:_MAX_BATCH_LINES]:
            part = done[done["_others"] == group]
            x = part[parameter] if numeric else labels[part.index].map(order.index)
            label = column.split(":", 1)[1]
            if column in alike:
                label += f" (the same at every {', '.join(rest)})"
            elif group != "all":
                label += f" ({group})"
            colour = colours.setdefault(label, f"C{len(colours) % 10}")
            # past ten lines the colours come round again: dashed, so that no two lines look alike
            style = "-o" if list(colours).index(label) < 10 else "--s"
            ordered = pd.DataFrame({"x": x, "y": part[column]}).sort_values("x")
            panel.plot(ordered["x"], ordered["y"], style, markersize=3, color=colour, label=label)
        if not numeric:
            panel.set_xticks(range(len(order)), order)
        elif pd.api.types.is_integer_dtype(done[parameter]):
            panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.set_title(_BATCH_PANELS[prefix], fontsize=10)
        panel.set_xlabel(parameter)
        if prefix.startswith("benefit_"):  # a difference of two rates: percentage points, not a percentage
            panel.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:+.2g}"))
            panel.set_ylabel("percentage points")
        else:
            panel.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))  # as many decimals as needed
        panel.grid(True, alpha=0.3)
    for panel in axes[len(panels) :]:
        panel.set_visible(False)
    handles: dict[str, Artist] = {}
    for panel in axes[: len(panels)]:
        for handle, label in zip(*panel.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    legend_below(figure, list(handles.values()), list(handles))
    return figure
