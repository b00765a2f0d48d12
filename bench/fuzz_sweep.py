"""Benchmark: random-drill seeds per second on 1 worker, 2 workers, and (simulated) N.

Measured, with real drills on the simulator and every result committed to a SQLite
results store as `stackdrill fuzz` does:
  - 1 worker: the in-process sweep (`stackdrill fuzz --sweep A:B`);
  - 1 and 2 workers: a Dask LocalCluster of worker processes (`-j 1`/`-j 2`), its start-up
    timed apart; the verdicts must equal the in-process ones seed for seed.
Simulated, N = 4 .. 64 workers (this machine has 2 cores): the real Dask scheduler, client
window and results store, with each drill replaced by a sleep of the per-seed compute time
measured above (the workers are threads of one process, which is fine for a sleep). This
measures what the fleet's plumbing costs at N, not N machines' CPUs; the ideal at N is
N / per-seed time, and the efficiency is the simulated rate over that ideal.

Run: python bench/fuzz_sweep.py [--seeds 200] [--base 0] [--sizes 4,16,64]
     (writes bench/results/fuzz_sweep.json)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from stackdrill.fuzz.results import ResultStore
from stackdrill.fuzz.sweep import InProcess, OnDask, Runner, SeedResult, Verdict, dask_client
from stackdrill.fuzz.version import code_version

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "fuzz_sweep.json"
SIM_TASKS_PER_WORKER = 12


def stand_in(seed: int, _log_level: int | None, seconds: float) -> SeedResult:
    """A drill's cost without the drill: sleep the measured per-seed time."""
    time.sleep(seconds)
    return SeedResult(seed, Verdict.PASS, "stand-in", (), version=code_version().key,
                      duration_s=seconds, worker=f"sim:{os.getpid()}")


def sweep(runner: Runner, seeds: list[int], url: str) -> tuple[float, list[SeedResult]]:
    """Wall seconds to run and store every seed (one commit each), and the results."""
    store = ResultStore(url, code_version().key)
    started = time.perf_counter()
    results = []
    for result in runner.run(seeds):
        store.add(result)
        results.append(result)
    return time.perf_counter() - started, sorted(results, key=lambda r: r.seed)


def measured(seeds: list[int], scratch: Path) -> tuple[list[dict[str, Any]], float]:
    """Real drills: in-process, then LocalClusters of 1 and 2 processes."""
    rows = []
    wall, here = sweep(InProcess(logging.CRITICAL), seeds, f"sqlite:///{scratch}/in.sqlite")
    per_seed = statistics.mean(r.duration_s for r in here)
    rows.append({"workers": 1, "how": "in-process", "measured": True, "wall_s": round(wall, 2),
                 "seeds_per_s": round(len(seeds) / wall, 2)})
    for jobs in (1, 2):
        started = time.perf_counter()
        with dask_client(jobs=jobs) as client:
            startup = time.perf_counter() - started
            wall, there = sweep(OnDask(client, logging.CRITICAL), seeds,
                                f"sqlite:///{scratch}/dask{jobs}.sqlite")
        assert all(a.same_verdict(b) for a, b in zip(here, there, strict=True)), jobs
        rows.append({"workers": jobs, "how": "Dask LocalCluster, worker processes",
                     "measured": True, "wall_s": round(wall, 2),
                     "cluster_startup_s": round(startup, 2),
                     "seeds_per_s": round(len(seeds) / wall, 2), "verdicts_equal": True})
    return rows, per_seed


def simulated(sizes: list[int], per_seed: float, scratch: Path) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        seeds = list(range(n * SIM_TASKS_PER_WORKER))
        with dask_client(jobs=n, processes=False) as client:
            runner = OnDask(client, task=partial(stand_in, seconds=per_seed))
            wall, _ = sweep(runner, seeds, f"sqlite:///{scratch}/sim{n}.sqlite")
        rate = len(seeds) / wall
        rows.append({"workers": n, "how": "Dask LocalCluster, simulated drills (sleep)",
                     "measured": False, "wall_s": round(wall, 2),
                     "seeds_per_s": round(rate, 2), "ideal_seeds_per_s": round(n / per_seed, 2),
                     "efficiency": round(rate * per_seed / n, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--base", type=int, default=0)
    parser.add_argument("--sizes", default="4,16,64")
    parser.add_argument("--json", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    seeds = list(range(args.base, args.base + args.seeds))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stackdrill-bench-fuzz-") as scratch:
        rows, per_seed = measured(seeds, Path(scratch))
        rows += simulated([int(n) for n in args.sizes.split(",")], per_seed, Path(scratch))
    result = {
        "benchmark": "fuzz_sweep", "python": platform.python_version(),
        "cores": os.cpu_count(), "seeds": [seeds[0], seeds[-1]],
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "per_seed_s_measured": round(per_seed, 3),
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
