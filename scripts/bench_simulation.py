"""Simulation throughput as ratios against raw RNG, arch's fast path and two workers, measured in the same run.

    python scripts/bench_simulation.py [--config configs/default.yaml] [--n-paths 32000] [--years 10]
                                       [--repeat 3] [--full]

Prints a table, then one JSON line (the last line of stdout). ``--full`` adds
the pipeline at 1,000,000 paths (minutes): its peak memory and wall time.
Absolute speeds vary by machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcalloc.hugepages import advise_numpy

# numpy's huge-page advice as the command line sets it, before numpy is imported: the timed
# children and the full run then measure what `mcalloc run` does (see mcalloc.hugepages)
advise_numpy()

from mcalloc.simulation.benchmark import BenchmarkSettings, run_benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    defaults = BenchmarkSettings(config=ROOT / "configs" / "default.yaml")
    parser = argparse.ArgumentParser(description="simulation throughput against raw RNG, arch and two workers")
    parser.add_argument("--config", type=Path, default=defaults.config)
    parser.add_argument("--n-paths", type=int, default=defaults.n_paths, help="paths per timed run")
    parser.add_argument("--years", type=int, default=defaults.horizon_years)
    parser.add_argument("--repeat", type=int, default=defaults.repeat)
    parser.add_argument("--arch-simulations", type=int, default=defaults.arch_simulations)
    parser.add_argument("--arch-horizon", type=int, default=defaults.arch_horizon, help="days per arch path")
    parser.add_argument("--full", action="store_true", help="also run the pipeline at --full-paths paths (slow)")
    parser.add_argument("--full-paths", type=int, default=defaults.full_paths)
    args = parser.parse_args()
    settings = BenchmarkSettings(
        config=args.config.resolve(),
        n_paths=args.n_paths,
        horizon_years=args.years,
        repeat=args.repeat,
        arch_simulations=args.arch_simulations,
        arch_horizon=args.arch_horizon,
        full=args.full,
        full_paths=args.full_paths,
    )
    report = run_benchmark(settings, progress=lambda message: print(message, file=sys.stderr, flush=True))
    print("\n".join(report.table()))
    print(json.dumps(report.record()))


if __name__ == "__main__":
    main()
