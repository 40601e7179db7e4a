"""The tables of the run's page: its saved tables and manifest formatted, _cell by _cell, for the template."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mcalloc.api import Run, weight_ranges
from mcalloc.report.frontier import frontier_paths

__all__ = [
    "METRIC_HEADINGS",
    "MODEL_COLUMNS_SHOWN",
    "MONEY_HEADINGS",
    "OPTIMIZATION_COLUMNS_SHOWN",
    "Table",
    "account_tax_text",
    "calibration_step",
    "calibration_tables",
    "count_text",
    "diversification_cells",
    "drawdown_axes",
    "format_frame",
    "frontier_paths_text",
    "money",
    "percent",
    "percent_columns",
    "points",
    "present_columns",
    "provenance",
    "renamed_table",
    "weights_table",
]


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


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def percent(value: Any) -> str:
    return "" if pd.isna(value) else f"{_unsigned_zero(float(value), 3):.1%}"


def points(value: Any) -> str:
    return "" if pd.isna(value) else f"{_unsigned_zero(100 * float(value), 2):+.2f}"


def years(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):.2f}"


def _unsigned_zero(value: float, decimals: int) -> float:
    """``value``, or 0.0 where it rounds to zero at ``decimals``: a tiny negative printed as ``-0.00``."""
    return 0.0 if round(value, decimals) == 0.0 else value


def money(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):,.0f}"


METRIC_HEADINGS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "portfolio": ("portfolio", str),
    "currency": ("currency", str),
    "cagr_median": ("CAGR p50", percent),
    "cagr_p05": ("CAGR p05", percent),
    "cagr_p95": ("CAGR p95", percent),
    "vol_ann": ("volatility", percent),
    "maxdd_median": ("maxDD p50", percent),
    "maxdd_p95": ("maxDD p95", percent),
    "cvar_95_annual": ("CVaR95 (annual)", percent),
    "prob_loss": ("P(loss)", percent),
    "underwater_years_median": ("under water p50 (years)", years),
    "terminal_wealth_p50": ("wealth p50", money),
}


MONEY_HEADINGS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "portfolio": ("portfolio", str),
    "currency": ("currency", str),
    "invested_mean": ("paid in, net (mean)", money),
    "mwr_median": ("money-weighted return p50", percent),
    "prob_shortfall": ("P(end below paid in)", percent),
    "prob_depleted": ("P(ran dry)", percent),
    "taxes_mean": ("taxes (mean)", money),
    "terminal_wealth_real_p50": ("real wealth p50", money),
}
"""The investor's own money, shown when the scenario has cash flows or taxes."""


MODEL_COLUMNS_SHOWN = [
    "asset", "label", "role", "kind", "dist", "omega", "alpha", "gamma", "beta", "nu", "skew", "persistence",
    "vol_ann_unconditional", "vol_ann_total", "mean_se_ann", "loading_lag0", "loglikelihood", "ljung_box_sq_p",
]  # fmt: skip


OPTIMIZATION_COLUMNS_SHOWN = [
    "portfolio", "objective", "objective_value", "objective_new_paths", "objective_new_paths_se", "grid_gap",
    "horizon_cvar_95_fit", "horizon_cvar_95_new_paths", "maxdd_p95_fit", "maxdd_p95_new_paths", "status", "solver",
]  # fmt: skip


_FRACTIONS = (
    "maxdd_p95_fit", "maxdd_p95_new_paths", "prob_loss", "prob_below_reference", "cagr_median", "cagr_p05",
)  # fmt: skip
"""Columns of the optimisation and holding-period tables that are fractions of wealth or probabilities:
shown in percent, as the other tables and the figures show them (log losses and objectives stay numbers)."""


def percent_columns(frame: pd.DataFrame | None) -> Table | None:
    """:func:`format_frame` with :data:`_FRACTIONS` shown in percent."""
    if frame is None or frame.empty:
        return None
    return Table.of(frame, {column: percent for column in _FRACTIONS if column in frame})


def present_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column in frame]


def renamed_table(frame: pd.DataFrame, columns: dict[str, tuple[str, Callable[[Any], str]]]) -> Table:
    present = [column for column in columns if column in frame]
    part = frame[present]
    table = Table.of(part, {column: columns[column][1] for column in present})
    return Table(columns=[columns[column][0] for column in present], rows=table.rows)


def _signed(value: Any) -> str:
    return "" if pd.isna(value) else f"{_unsigned_zero(float(value), 3):+.3f}"


_RATIOS = ("diversification_ratio", "effective_bets")
"""Statistics of diversification.csv that are ratios or counts: shown as they are, not as percentage points."""


def _difference_format(statistic: str) -> Callable[[Any], str]:
    """How a diversification.csv statistic's difference is shown: a probability, a ratio, or percentage points."""
    if statistic == "prob_wealthier":
        return percent
    return _signed if statistic in _RATIOS else points


def _with_interval(show: Callable[[Any], str], value: Any, low: Any, high: Any) -> str:
    """``value (low .. high)``; empty where the statistic was not computed."""
    if pd.isna(value):
        return ""
    return f"{show(value)} ({show(low)} .. {show(high)})"


def _unshared(row: pd.Series) -> str:
    """Why a CVaR share has no difference: the mix's or the reference's tail holds too small a loss to share."""
    if not str(row["statistic"]).startswith("cvar_share:") or not pd.isna(row["difference"]):
        return ""
    whose = "this mix's" if pd.isna(row["portfolio_value"]) else "the reference's"
    return f"none: {whose} tail holds too small a loss to share"


def diversification_cells(table: pd.DataFrame) -> Table:
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
                "same mix" if same else _unshared(row) or show(row["difference"]),
                # a share or ratio of the mix has no interval: the _cell is empty, not " .. "
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


def count_text(value: object) -> str:
    """A manifest's count with thousands separators; ``?`` where an old or hand-edited manifest lacks it."""
    return f"{value:,}" if isinstance(value, int) else "?"


def provenance(run: Run) -> Table:
    manifest = run.manifest
    items: list[tuple[str, Any]] = [
        ("scenario", manifest.get("scenario")),
        ("description", run.config.get("description", "")),
        ("paths x years", f"{count_text(manifest.get('n_paths'))} x {manifest.get('horizon_years')}"),
        ("rebalancing", run.config.get("portfolio", {}).get("rebalance")),
        ("base currency", run.config.get("currency", {}).get("base", "USD")),
        (
            "account tax",
            account_tax_text(run.config.get("tax") or {}, run.config.get("currency", {}).get("base", "USD")),
        ),
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


def weights_table(run: Run) -> Table:
    """Every portfolio's weights in percent; an optimised one's with its range over batches of the optimiser's paths."""
    text = run.weights_table().map(percent)
    ranged = weight_ranges(run.stability, text)
    return Table.of((text if ranged is None else ranged).reset_index())


def frontier_paths_text(run: Run) -> str:
    """Which paths the frontier figure's points were solved and measured on, as its caption says it."""
    n_paths, every = frontier_paths(run)
    if every:
        return f"solved and measured on all {n_paths:,} of the optimiser's paths, as its table is."
    return (
        f"solved and measured on the first {n_paths:,} of the optimiser's paths: the optimised portfolios' stars "
        "are measured there too, so they differ a little from the optimiser's table (all of its paths)."
    )


def drawdown_axes(run: Run) -> str:
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


def account_tax_text(tax: Mapping[str, Any], currency: str) -> str:
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


_STEPS = {"daily": "day", "weekly": "week", "monthly": "month"}


def calibration_step(config: Mapping[str, Any]) -> str:
    """One step of the fitted data (``data.frequency``): ``day``, ``week`` or ``month``."""
    return _STEPS.get(str((config.get("data") or {}).get("frequency") or "daily"), "day")


def calibration_tables(frame: pd.DataFrame | None, step: str = "day") -> dict[str, Table] | None:
    """``calibration.csv`` as the page shows it: the data's percentile per statistic and window (``*`` outside
    5..95), the in-sample VaR backtest (of one ``step``), and the joint test; ``None`` for a run without one."""
    if frame is None or frame.empty:
        return None
    from mcalloc.models.validation import JOINT_STATISTIC, percentile_grid

    grid = percentile_grid(frame)
    tables = {
        "windows": Table(
            columns=["statistic", "series", *map(str, grid.columns)],
            rows=[
                [str(statistic), str(series), *(str(cell).strip() for cell in cells)]
                for statistic, series, *cells in grid.reset_index().itertuples(index=False)
            ],
        )
    }

    def verdict(row: pd.Series, passes: str) -> str:
        return passes if float(row["p_value"]) >= 0.05 else "rejected at 5%"

    var = frame[frame["statistic"].astype(str).str.startswith("var")]
    tables["var"] = Table(
        columns=["series", f"{step}s below the VaR", "nominal", "Kupiec p", "verdict"],
        rows=[
            [
                str(row["series"]),
                f"{row['data']:.2%}",
                f"{row['sim_p50']:.0%}",
                f"{row['p_value']:.3f}",
                verdict(row, "passes"),
            ]
            for _, row in var.iterrows()
        ],
    )
    joint = frame[frame["statistic"] == JOINT_STATISTIC]
    tables["joint"] = Table(
        columns=["window", "statistics outside 5..95", "simulated windows' 5..95", "P(as many or more)", "verdict"],
        rows=[
            [
                str(row["window"]), f"{int(row['data'])}", f"{int(row['sim_p05'])}..{int(row['sim_p95'])}",
                f"{row['p_value']:.3f}", verdict(row, "consistent with the model"),
            ]
            for _, row in joint.iterrows()
        ],
    )  # fmt: skip
    return tables


def format_frame(frame: pd.DataFrame | None) -> Table | None:
    if frame is None or frame.empty:
        return None
    return Table.of(frame)
