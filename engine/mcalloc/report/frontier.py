"""The frontier figure: mean return against each risk measure along every asset set's frontier.

Its portfolios are numbered and their labels placed from the laid-out
panels, so that they never overprint; that placement is most of this
module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from mcalloc.config.optimize_schema import FRONTIER_PATHS
from mcalloc.report.figures import (
    _FRONTIER_MEASURES,
    _LOG_MEASURES,
    _OLDER_FRONTIER_MEASURES,
    _figure,
    legend_below,
)

if TYPE_CHECKING:
    from mcalloc.api import Run

__all__ = ["frontier_figure", "frontier_paths"]


def frontier_paths(run: Run) -> tuple[int, bool]:
    """How many paths the frontiers were solved on, and whether that was all of the optimiser's.

    The first ``FRONTIER_PATHS`` of ``n_fit_paths`` (``optimization.csv``);
    a folder without that column is taken to have had more.
    """
    optimization = run.optimization
    if optimization is None or optimization.empty or "n_fit_paths" not in optimization.columns:
        return FRONTIER_PATHS, False
    fitted = int(optimization["n_fit_paths"].max())
    return min(FRONTIER_PATHS, fitted), fitted <= FRONTIER_PATHS


def frontier_figure(run: Run) -> Figure | None:
    """Mean return against each risk measure along every asset set's frontier, portfolios marked.

    Frontiers that coincide (adding an asset the efficient mixes never hold)
    are drawn widest first, so each stays visible under the next; a frontier
    whose mixes are all one mix is drawn as a point and its legend says
    which mix. The portfolios are numbered, the legend names them, and
    numbers whose points would overprint share one label.
    """
    frontier = run.frontier
    if frontier is None or frontier.empty:
        return None
    curves = frontier[frontier["kind"] == "frontier"]
    measures = [m for m in _FRONTIER_MEASURES if m in set(curves["measure"])]
    if not measures:
        return None
    marked = frontier[frontier["kind"] != "frontier"].drop_duplicates("portfolio")
    figure, axes = _figure(3.6 * -(-len(measures) // 2), 2, -(-len(measures) // 2))
    sets = list(dict.fromkeys(curves["frontier"]))
    widths = np.linspace(4.5, 1.5, len(sets)) if len(sets) > 1 else np.array([1.5])
    weight_columns = [c for c in curves.columns if c.startswith("w_")]
    # one mix for every measure, or not: the legend speaks for all panels
    singles = {assets: _single_mix(curves.loc[curves["frontier"] == assets, weight_columns]) for assets in sets}
    unused = {
        assets: _unused_assets(curves, str(assets), [str(other) for other in sets[:index]])
        for index, assets in enumerate(sets)
    }
    first_lines: dict[str, Artist] = {}
    for panel, measure in zip(axes, measures, strict=False):
        column, label = _axis(measure, frontier)
        for index, assets in enumerate(sets):
            part = curves[(curves["measure"] == measure) & (curves["frontier"] == assets)].sort_values(column)
            if part.empty:
                continue
            single = singles[assets]
            # a set of one asset is one mix by definition: only a larger set's collapse is news
            name = str(assets) if single is None or "+" not in str(assets) else f"{assets}: one mix, {single}"
            if single is None and unused[assets] is not None:
                name = f"{assets}: {unused[assets]}"
            if single is None:
                (line,) = panel.plot(
                    part[column], part["mean_return"], "-", color=f"C{index}", linewidth=widths[index],
                    solid_capstyle="round", label=name,
                )  # fmt: skip
            else:
                (line,) = panel.plot(
                    part[column].mean(), part["mean_return"].mean(), "o", color=f"C{index}",
                    markersize=2.0 * widths[index] + 3.0, markerfacecolor="none", markeredgewidth=1.5, label=name,
                )  # fmt: skip
            first_lines.setdefault(str(assets), line)
        _plot_portfolios(panel, marked, column)
        panel.set_xlabel(label)
        panel.set_ylabel("mean return (annual)")
        if measure not in _LOG_MEASURES:
            panel.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        panel.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))  # as many decimals as the ticks need
        panel.grid(True, alpha=0.3)
    for panel in axes[len(measures) :]:
        panel.set_visible(False)
    handles = [first_lines[str(assets)] for assets in sets if str(assets) in first_lines]
    for number, (_, row) in enumerate(marked.iterrows(), start=1):
        benchmark = row["kind"] == "benchmark"
        (proxy,) = axes[0].plot(
            [], [], "^" if benchmark else "*", color="k", markersize=5 if benchmark else 7,
            label=f"{number} {row['portfolio']}",
        )  # fmt: skip
        handles.append(proxy)
    legend_below(figure, handles, [str(handle.get_label()) for handle in handles], fontsize=7)
    n_paths, every = frontier_paths(run)
    paths = f"all {n_paths:,}" if every else f"{n_paths:,}"
    figure.suptitle(f"frontiers on {paths} of the optimiser's paths (triangles: benchmarks, stars: optimised)")
    # the labels are placed where the laid-out panels put the points (the legend takes its room first)
    figure.draw_without_rendering()
    for panel, measure in zip(axes, measures, strict=False):
        _label_portfolios(panel, marked, _axis(measure, frontier)[0])
    return figure


def _axis(measure: str, frontier: pd.DataFrame) -> tuple[str, str]:
    """The column and label of a measure's risk axis: the quantity its frontier minimises, if the file has it."""
    column, label = _FRONTIER_MEASURES[measure]
    if column not in frontier and measure in _OLDER_FRONTIER_MEASURES:
        return _OLDER_FRONTIER_MEASURES[measure]
    return column, label


_SAME_SPOT = 0.025
"""Marked points closer than this share of both axes' spans share one label."""

_LABEL_OFFSETS = ((5.0, 3.0), (5.0, -10.0), (-5.0, 3.0), (-5.0, -10.0), (5.0, 11.0), (-5.0, 11.0))
"""Where a point's label may go, in points from the point (right, below right, left, below left, higher)."""

_LABEL_FONT = 7.0


def _unused_assets(curves: pd.DataFrame, assets: str, earlier: list[str]) -> str | None:
    """Whether ``assets``' frontier is an earlier, smaller set's: the assets it adds held under a percent in
    every mix along it (the legend then says so, as the two lines lie on one another)."""
    members = assets.split("+")
    part = curves[curves["frontier"] == assets]
    for other in reversed(earlier):  # the largest earlier set first
        if not set(other.split("+")) < set(members):  # only a smaller set within this one
            continue
        added = [asset for asset in members if asset not in other.split("+")]
        columns = [f"w_{asset}" for asset in added]
        if not set(columns) <= set(part.columns):
            continue
        held = part[columns].to_numpy(dtype=float)
        if held.size and float(np.nanmax(np.abs(held))) < 0.01:
            return f"the same as {other} ({' and '.join(added)} under 1% in every mix)"
    return None


def _single_mix(weights: pd.DataFrame) -> str | None:
    """The frontier's one mix, described (``"99.7% sp500, 0.3% intl"``), if its points differ by under a point."""
    values = weights.to_numpy(dtype=float)
    if values.size == 0 or float(np.nanmax(np.ptp(values, axis=0))) >= 0.01:
        return None
    mean = np.nanmean(values, axis=0)
    parts = [
        f"{share:.1%} {column.removeprefix('w_')}" for column, share in zip(weights.columns, mean, strict=True)
        if share >= 0.0005
    ]  # fmt: skip
    return ", ".join(parts)


def _plot_portfolios(panel: Axes, marked: pd.DataFrame, column: str) -> None:
    """Each portfolio's point: triangles for benchmarks, stars for optimised mixes."""
    for _, portfolio in marked.iterrows():
        benchmark = portfolio["kind"] == "benchmark"
        panel.plot(
            portfolio[column], portfolio["mean_return"], "^" if benchmark else "*", color="k",
            markersize=5 if benchmark else 7,
        )  # fmt: skip


def _label_portfolios(panel: Axes, marked: pd.DataFrame, column: str) -> None:
    """Each portfolio's number beside its point, labels kept apart; call it once the figure is laid out.

    Points on (nearly) the same spot share one label. A label goes right of
    its point, or below, or left, or higher, the first that overlaps no
    label placed before it, stays in the panel and clears the markers;
    where none is free of labels it joins the label it would overprint.
    Positions come from the laid-out panel, so the labels are kept out of
    later layouts (they would move the panels they were placed in).
    """
    x = marked[column].to_numpy(dtype=float)
    y = marked["mean_return"].to_numpy(dtype=float)
    figure = panel.get_figure(root=True)
    assert figure is not None  # the panel was made by a figure
    to_points = 72.0 / figure.dpi
    frame = panel.get_window_extent()
    width_pt, height_pt = frame.width * to_points, frame.height * to_points
    finite = np.isfinite(x) & np.isfinite(y)
    where = np.full((x.size, 2), np.nan)
    where[finite] = (panel.transData.transform(np.column_stack([x[finite], y[finite]])) - [frame.x0, frame.y0]) * (
        to_points
    )
    same = _SAME_SPOT * np.array([width_pt, height_pt])
    groups: list[list[int]] = []
    labelled = ~finite
    for row in range(x.size):
        if labelled[row]:
            continue
        near = ~labelled & np.all(np.abs(where - where[row]) <= same, axis=1)
        labelled |= near
        groups.append([int(i) for i in np.flatnonzero(near)])
    # each label: its numbers, the point it is anchored to, its offset, its box in points
    placed: list[tuple[list[int], int, tuple[float, float], np.ndarray]] = []

    def extent(members: list[int], anchor: int, offset: tuple[float, float]) -> np.ndarray:
        """(left, bottom, right, top) of a label in points from the panel's lower left corner."""
        text = ",".join(str(i + 1) for i in members)
        # DejaVu Sans: digits are 0.64 of the font size wide, a comma 0.32; a line is 1.2 high with descent
        text_width = _LABEL_FONT * (0.64 * sum(c.isdigit() for c in text) + 0.32 * text.count(","))
        left = where[anchor, 0] + offset[0] - (text_width if offset[0] < 0 else 0.0)
        bottom = where[anchor, 1] + offset[1] - 0.25 * _LABEL_FONT
        return np.array([left, bottom, left + text_width, bottom + 1.2 * _LABEL_FONT])

    def overlap(first: np.ndarray, second: np.ndarray) -> bool:
        apart = first[2] <= second[0] or second[2] <= first[0] or first[3] <= second[1]
        return not (apart or second[3] <= first[1])

    def clash(candidate: np.ndarray) -> int | None:
        """The placed label ``candidate`` would overprint, if any."""
        return next((index for index, (*_, other) in enumerate(placed) if overlap(candidate, other)), None)

    # every point's marker is in the way too (the markers are about 6 points across)
    markers = [np.array([px - 3.5, py - 3.5, px + 3.5, py + 3.5]) for px, py in where[finite]]

    def on_a_marker(candidate: np.ndarray) -> bool:
        return any(overlap(candidate, marker) for marker in markers)

    for members in groups:
        anchor = members[0]
        candidates = [extent(members, anchor, offset) for offset in _LABEL_OFFSETS]
        free = [i for i, box in enumerate(candidates) if clash(box) is None]
        if free:
            # inside the panel and clear of the markers if any position is; inside it at least
            inside = [i for i in free if _within(candidates[i], width_pt, height_pt)] or free
            best = next((i for i in inside if not on_a_marker(candidates[i])), inside[0])
            placed.append((members, anchor, _LABEL_OFFSETS[best], candidates[best]))
            continue
        index = clash(candidates[0])
        assert index is not None
        joined, anchor, offset, _ = placed[index]
        joined = sorted([*joined, *members])
        placed[index] = (joined, anchor, offset, extent(joined, anchor, offset))
    for members, anchor, offset, _ in placed:
        label = panel.annotate(
            ",".join(str(i + 1) for i in members), (x[anchor], y[anchor]), fontsize=_LABEL_FONT,
            xytext=offset, textcoords="offset points", ha="right" if offset[0] < 0 else "left",
        )  # fmt: skip
        label.set_in_layout(False)


def _within(box: np.ndarray, width: float, height: float) -> bool:
    """Whether a (left, bottom, right, top) box in points lies inside a panel of that size."""
    return bool(box[0] >= 0.0 and box[1] >= 0.0 and box[2] <= width and box[3] <= height)
