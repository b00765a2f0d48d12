"""Measure random drills per second on the simulator (one process, wall clock).

    python bench/random_drills.py [--count 100] [--base 0] [--json out.json]

Prints drills/s and the per-topology mean; CI's 500 drills divide over xdist workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections import defaultdict
from pathlib import Path

from stackdrill.fuzz import run_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--base", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    per_topology: dict[str, list[float]] = defaultdict(list)
    failed = 0
    started = time.perf_counter()
    for seed in range(args.base, args.base + args.count):
        t0 = time.perf_counter()
        outcome = run_seed(seed)
        per_topology[outcome.drill.topology.name].append(time.perf_counter() - t0)
        failed += not outcome.ok
    wall = time.perf_counter() - started
    result = {
        "count": args.count, "seeds": [args.base, args.base + args.count - 1],
        "wall_s": round(wall, 2), "drills_per_second": round(args.count / wall, 2),
        "failed": failed,
        "mean_s_by_topology": {t: round(statistics.mean(v), 3)
                               for t, v in sorted(per_topology.items())},
        "projected_500_s_on_2_workers": round(500 / (args.count / wall) / 2, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
