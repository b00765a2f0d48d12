"""`python -m stackdrill.fuzz --seed N [--shrink]`: replay one random drill and explain it.

Prints the generated drill (topology, schedule, declared damage), runs it on the
simulator, prints every invariant's verdict and, with --shrink on a failure,
the smallest schedule that still fails the same way. Exit 1 when it failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from stackdrill.errors import until_stdout_closes
from stackdrill.fuzz.drive import run_drill, run_seed, schedule_lines
from stackdrill.fuzz.shrink import shrink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackdrill.fuzz", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, help="the random drill's seed")
    what.add_argument("--sweep", metavar="FIRST:END", help="run seeds FIRST..END-1 and print "
                      "the failing ones as JSON (to refresh the known-bug lists)")
    parser.add_argument("--shrink", action="store_true", help="shrink a failing schedule")
    parser.add_argument("-v", "--verbose", action="store_true", help="engine log to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL)
    if args.sweep:
        first, end = (int(x) for x in args.sweep.split(":"))
        failing = {}
        for seed in range(first, end):
            swept = run_seed(seed)
            if not swept.ok:
                failing[seed] = {"topology": swept.drill.topology.name, "failed": swept.failed,
                                 "detail": {c.name: c.detail for c in swept.checks if not c.ok}}
        print(json.dumps(failing, indent=1))
        return 1 if failing else 0
    outcome = run_seed(args.seed)
    print(outcome.summary())
    if outcome.ok:
        return 0
    if args.shrink:
        small = shrink_outcome(args.seed, outcome.failed)
        print("shrunk schedule (still fails " + ", ".join(outcome.failed) + "):")
        print("\n".join(f"  {line}" for line in small))
    return 1


def shrink_outcome(seed: int, failed: list[str], max_runs: int = 40) -> list[str]:
    """The 1-minimal schedule that fails the same checks as seed `seed`, as lines."""
    from stackdrill.fuzz.schedule import generate

    def same(drill: object) -> bool:
        from stackdrill.drill.model import Drill

        assert isinstance(drill, Drill)
        return run_drill(seed, drill).failed == failed

    small = shrink(generate(seed).drill, same, max_runs=max_runs)
    return schedule_lines(small.spec.schedule)


if __name__ == "__main__":
    sys.exit(until_stdout_closes(main))
