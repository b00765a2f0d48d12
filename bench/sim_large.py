"""Benchmark: wall time and simulated events per second of a host-loss drill on the large
topology, and how the cost grows with the number of instances.

Run: python bench/sim_large.py   (writes bench/results/sim_large.json)
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.model import Drill
from stackdrill.drill.runner import execute
from stackdrill.topology import Role

ROOT = Path(__file__).resolve().parents[1]
DRILL = ROOT / "lab" / "drills" / "large-host-loss.yaml"
REPEAT = 3


def subset(drill: Drill, hosts: int) -> Drill:
    """The same drill on the first `hosts` compute hosts (10 instances each)."""
    topo = drill.topology
    computes = sorted(h.name for h in topo.hosts if h.has_role(Role.COMPUTE))
    keep_compute = set(computes[:hosts])
    instances = tuple(i for i in topo.instances if i.host in keep_compute)
    volumes = {v for i in instances for v in i.volumes}
    smaller = topo.model_copy(update={
        "instances": instances,
        "volumes": tuple(v for v in topo.volumes if v.name in volumes),
    })
    return drill.model_copy(update={"topology": smaller})


def measure(drill: Drill) -> dict[str, Any]:
    walls = []
    events = 0
    verdict = ""
    for _ in range(REPEAT):
        start = time.perf_counter()
        run = execute(drill, seed=1)
        report = judge(run)
        walls.append(time.perf_counter() - start)
        kernel = run.lab.kernel  # type: ignore[attr-defined]
        events = next(kernel.env._eid)  # SimPy's event id counter: events scheduled so far
        verdict = report.verdict
    median = statistics.median(walls)
    return {"instances": len(drill.topology.instances), "wall_s_median": round(median, 3),
            "wall_s_all": [round(w, 3) for w in walls], "events": events,
            "events_per_s": round(events / median), "verdict": verdict}


def main() -> int:
    drill = load_drill(DRILL)
    rows = [measure(subset(drill, n)) for n in (5, 10, 20)]
    result = {"benchmark": "sim_large", "drill": drill.name, "python": platform.python_version(),
              "machine": platform.machine(), "repeat": REPEAT, "rows": rows,
              "goal": "200-instance drill under 5 s wall, cost no worse than linear"}
    out = ROOT / "bench" / "results" / "sim_large.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['instances']:4d} instances: {row['wall_s_median']:6.2f} s wall, "
              f"{row['events']:8d} events, {row['events_per_s']:8d} events/s, {row['verdict']}")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
