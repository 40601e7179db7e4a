"""Which generator holds up on the data? The calibration report for several dependence models side by side.

    python scripts/compare_dependence.py [--config configs/examples/fit_etfs.yaml] [--n-paths 1000] [--csv FILE]

Each model is the scenario with overrides (see MODELS); each row counts the
data's window statistics outside the simulated 5..95 band (about one in ten
is expected by chance), gives the joint test's p-value (``joint_p``: how often
a right model leaves as many outside, the statistics' dependence included)
and Kupiec's p-value of the in-sample 1-day 99% VaR per series.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from mcalloc.config import load_scenario
from mcalloc.models.validation import calibration_summary
from mcalloc.pipeline import build_model, calibration_report

ROOT = Path(__file__).resolve().parents[1]

COPULA = ["model.factor=null", "model.marginals.variance_targeting=false"]
MODELS: dict[str, list[str]] = {
    "gaussian copula, GJR-t (before)": [*COPULA, "model.marginals.dist=t", "model.dependence.kind=gaussian"],
    "t copula, GJR-skewed-t": [*COPULA, "model.marginals.dist=skewt", "model.dependence.kind=t"],
    "DCC copula, GJR-skewed-t": [*COPULA, "model.marginals.dist=skewt", "model.dependence.kind=dcc"],
    "FHS, GJR quasi-ML": [*COPULA, "model.marginals.dist=normal", "model.dependence.kind=fhs"],
    "factor + t copula, GJR-skewed-t": ["model.marginals.dist=skewt", "model.dependence.kind=t"],
    "factor + FHS, GJR quasi-ML, targeted (default)": [],
    "factor + FHS, GJR quasi-ML, tied targeting": ["model.marginals.variance_targeting=likelihood"],
    "factor + FHS, GJR quasi-ML, not targeted": ["model.marginals.variance_targeting=false"],
    "iid normal returns": [*COPULA, "model.dependence.kind=iid_normal"],
    "iid t returns": [*COPULA, "model.dependence.kind=iid_t"],
    "bootstrap of returns (21-day blocks)": [
        *COPULA,
        "model.dependence.kind=bootstrap_returns",
        "model.dependence.block_length=21",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description="calibration report of several dependence models on one data set")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "examples" / "fit_etfs.yaml")
    parser.add_argument("--n-paths", type=int, default=1000)
    parser.add_argument("--csv", type=Path, help="write the full calibration tables (one block per model) here")
    args = parser.parse_args()
    summaries, tables = {}, []
    for label, overrides in MODELS.items():
        scenario = load_scenario(args.config, [*overrides, f"output.calibration.n_paths={args.n_paths}"])
        model, data = build_model(scenario)
        assert data is not None
        table = calibration_report(scenario, model, data)
        summaries[label] = calibration_summary(table)
        tables.append(table.assign(model=label))
        print(f"done: {label}", flush=True)
    frame = pd.DataFrame(summaries).T
    columns = ["outside", "n_window_stats", "joint_p"] + [
        c for c in frame.columns if c.startswith(("outside:", "kupiec_p:"))
    ]
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(frame[columns].round(3).to_string())
    if args.csv is not None:
        pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
