"""Benchmark: random drills per second at 1 and 2 workers, and where a second worker's
time goes, in one run.

A control and two ways of running the same seeds, each at 1 and then 2 workers:

* control — a pure-CPU Python loop in 1 and in 2 processes at once: what the machine
  gives a second process when the drills' code plays no part;
* processes — fresh Python processes running `stackdrill.fuzz.run_seed` (seed i on worker
  i mod 2), started together: the machine's own scaling, with each process's start-up
  (imports) and its drills' CPU time measured apart;
* pytest — `pytest scenarios/test_random_drills.py -n 0` and `-n 2` (pytest-xdist), the
  command CI runs, with the CPU time of the whole process tree.

drills/s = seeds / wall time from launch to the last process's exit; the ratio is 2
workers over 1. Verdicts must be equal seed for seed in every run. The 1-minute load
average before and after is recorded: on a shared machine a second worker only gains
what the other tenants leave of the second core. So is whether Python may write
bytecode (PYTHONDONTWRITEBYTECODE): pytest rewrites the asserts of every module of a
package that provides a pytest plugin, all of stackdrill included, and caches the result
only where bytecode is written; without that cache each pytest process (each xdist
worker) spends ~1 s of CPU rewriting stackdrill again.

Run: python bench/random_drills.py [--seeds 0:100] [--no-pytest]
     (writes bench/results/random_drills.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "random_drills.json"
REPORT = ROOT / "reports" / "random-drills.json"  # what the pytest module writes


@dataclass(frozen=True)
class Run:
    """One configuration's measurement."""

    how: str
    workers: int
    seeds: int
    wall_s: float
    cpu_s: float  # user + system of every process of the run
    startup_cpu_s: float | None  # per process, imports before the first drill (processes)
    drill_cpu_s: float | None  # all processes' drills together (processes)
    verdicts: str  # sha256 of [[seed, failed checks], ...] (equal runs, equal verdicts)

    @property
    def drills_per_s(self) -> float:
        return self.seeds / self.wall_s


def worker(seeds: list[int]) -> None:
    """Run `seeds` in this process and print one JSON line: CPU of the imports and of the
    drills, and each seed's failed checks."""
    import logging

    t0 = time.process_time()
    from stackdrill.fuzz import run_seed

    logging.basicConfig(level=logging.CRITICAL)
    startup = time.process_time() - t0
    verdicts = {seed: list(run_seed(seed).failed) for seed in seeds}
    print(json.dumps({"startup_cpu_s": startup,
                      "drill_cpu_s": time.process_time() - t0 - startup,
                      "verdicts": verdicts}))


CONTROL = "sum(i * i for i in range(40_000_000))"  # ~2 s of pure CPU, no memory to share


def run_control(workers: int) -> Run:
    """The same pure-CPU loop in `workers` processes at once: what a second process costs
    the first on this machine when nothing but the core is shared."""
    cpu0, start = children_cpu(), time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", CONTROL]) for _ in range(workers)]
    for proc in procs:
        proc.wait()
    return Run("control", workers, workers, round(time.perf_counter() - start, 2),
               round(children_cpu() - cpu0, 2), None, None, "")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def verdict_sha(verdicts: dict[int, list[str]]) -> str:
    import hashlib

    text = json.dumps([[s, verdicts[s]] for s in sorted(verdicts)])
    return hashlib.sha256(text.encode()).hexdigest()


def run_processes(seeds: list[int], workers: int) -> Run:
    """`workers` fresh processes started together, seed i on worker i mod `workers`."""
    cpu0, start = children_cpu(), time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker",
                               ",".join(map(str, seeds[w::workers]))],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for w in range(workers)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit(f"bench/random_drills.py: error: a worker failed: "
                         f"{[p.returncode for p in procs]}")
    verdicts = {int(s): v for out in outs for s, v in out["verdicts"].items()}
    return Run("processes", workers, len(seeds), round(wall, 2),
               round(children_cpu() - cpu0, 2),
               round(max(o["startup_cpu_s"] for o in outs), 2),
               round(sum(o["drill_cpu_s"] for o in outs), 2), verdict_sha(verdicts))


def run_pytest(seeds: list[int], workers: int) -> Run:
    """The CI command on the same seeds (no commit window), serially or on xdist."""
    env = {**os.environ, "STACKDRILL_RANDOM_SEED_BASE": str(seeds[0]),
           "STACKDRILL_RANDOM_DRILLS": str(len(seeds)), "STACKDRILL_RANDOM_WINDOW": "0"}
    cmd = [sys.executable, "-m", "pytest", "scenarios/test_random_drills.py", "-q",
           "-p", "no:cacheprovider", "-p", "no:randomly", "-n", str(workers if workers > 1 else 0)]
    cpu0, start = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a seed failed, still a measurement
        raise SystemExit(f"bench/random_drills.py: error: pytest exited {done.returncode}:\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    summary = json.loads(REPORT.read_text())
    return Run("pytest", workers, len(seeds), round(wall, 2), round(children_cpu() - cpu0, 2),
               None, None, summary["verdicts_sha256"])


def pair(runs: list[Run], how: str) -> dict[str, Any]:
    one, two = (next(r for r in runs if r.how == how and r.workers == w) for w in (1, 2))
    return {"how": how, "drills_per_s_1": round(one.drills_per_s, 2),
            "drills_per_s_2": round(two.drills_per_s, 2),
            "ratio": round(two.drills_per_s / one.drills_per_s, 2),
            "cpu_ratio": round(two.cpu_s / one.cpu_s, 2),
            "verdicts_equal": one.verdicts == two.verdicts == runs[2].verdicts}


def parse_seeds(text: str) -> list[int] | None:
    """START:STOP as a list of seeds; None when it is not a non-empty range."""
    start, _, stop = text.partition(":")
    if not (start.isdigit() and stop.isdigit()) or int(start) >= int(stop):
        return None
    return list(range(int(start), int(stop)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:100", help="START:STOP (default 0:100)")
    parser.add_argument("--no-pytest", action="store_true", help="processes only")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker([int(s) for s in args.worker.split(",")])
        return 0
    seeds = parse_seeds(args.seeds)
    if seeds is None:
        print(f"bench/random_drills.py: error: --seeds {args.seeds!r}: want START:STOP with "
              "START < STOP", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    runs = [run_control(1), run_control(2), run_processes(seeds, 1), run_processes(seeds, 2)]
    if not args.no_pytest:
        runs += [run_pytest(seeds, 1), run_pytest(seeds, 2)]  # 1: `-n 0`, no xdist
    pairs = [pair(runs, "control"), pair(runs, "processes")] + (
        [] if args.no_pytest else [pair(runs, "pytest")])
    result = {"benchmark": "random_drills", "python": platform.python_version(),
              "cores": os.cpu_count(), "seeds": [seeds[0], seeds[-1]],
              "bytecode_cache": not sys.flags.dont_write_bytecode,
              "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
              "runs": [{**asdict(r), "drills_per_s": round(r.drills_per_s, 2)} for r in runs],
              "pairs": pairs}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        extra = (f", start-up {r.startup_cpu_s} s CPU per process, drills {r.drill_cpu_s} s CPU"
                 if r.drill_cpu_s is not None else "")
        print(f"{r.how:9s} x{r.workers}: {r.drills_per_s:5.2f} drills/s ({r.wall_s} s wall, "
              f"{r.cpu_s} s CPU{extra})")
    for p in pairs:
        print(f"{p['how']:9s}: 2 workers / 1 = x{p['ratio']:.2f} throughput, "
              f"x{p['cpu_ratio']:.2f} CPU" + ("" if p["how"] == "control" else
                                              f"; verdicts equal: {p['verdicts_equal']}"))
    print(f"load average {result['load_average_1min']}; bytecode cache "
          f"{'on' if result['bytecode_cache'] else 'off (PYTHONDONTWRITEBYTECODE)'}; "
          f"written to {args.out}")
    return 0 if all(p["verdicts_equal"] for p in pairs[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
