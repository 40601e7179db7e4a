"""Simulation throughput as ratios against raw RNG and arch's simulator, measured in the same run.

    python scripts/bench_simulation.py [--config configs/default.yaml] [--n-paths 4000] [--years 10] [--repeat 3]

Absolute nanoseconds vary by machine; compare the ratios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.config import load_scenario
from engine.pipeline import build_model
from engine.simulation.benchmark import measure_throughput

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="simulation throughput against raw RNG and arch")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--n-paths", type=int, default=4000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--arch-paths", type=int, default=10, help="paths simulated with arch (it is slow)")
    args = parser.parse_args()
    scenario = load_scenario(args.config, [f"simulation.horizon_years={args.years}"])
    model, _ = build_model(scenario)
    result = measure_throughput(scenario, model, args.n_paths, args.repeat, args.arch_paths)
    sim = scenario.simulation
    print(f"{args.n_paths} paths x {sim.n_steps} days x {len(scenario.assets)} assets; medians of {args.repeat}")
    print("\n".join(result.report()))


if __name__ == "__main__":
    main()
