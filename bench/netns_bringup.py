"""Benchmark: netns lab bring-up and teardown time for 3, 20 and 50 hosts with the overlay.

Goal (issue 6): <= 50 ms per host and nothing left behind. Needs root.
Run: sudo python bench/netns_bringup.py [--reps 3] [--sizes 3,20,50]
Writes bench/results/netns_bringup.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.cleanup import state_dir
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.backends.netns.names import read_slots
from stackdrill.topology import Topology, parse_topology

RESULTS = Path(__file__).parent / "results"


def topology(hosts: int) -> Topology:
    names = [f"h{i}" for i in range(hosts)]
    return parse_topology({
        "name": f"bringup{hosts}",
        "hosts": [{"name": "h0", "roles": ["controller"]}]
                 + [{"name": n, "roles": ["compute"]} for n in names[1:]],
        "networks": [{"name": "mgmt", "purposes": ["management", "tunnel"],
                      "cidr": "10.0.0.0/16",
                      "addresses": {n: f"10.0.{i // 250}.{i % 250 + 1}"
                                    for i, n in enumerate(names)}}],
        "overlays": [{"name": "ov", "vni": 100, "network": "mgmt", "cidr": "10.100.0.0/16"}],
    }, f"bringup{hosts}")


def leftovers(lab_id: str) -> list[str]:
    left = [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]
    left += [f"slot {r.lab_id}" for r in read_slots() if r.lab_id == lab_id]
    from stackdrill.backends.netns.names import LabNames

    if state_dir(LabNames(lab_id)).exists():
        left.append("state dir")
    return left


def measure(hosts: int, reps: int) -> dict[str, Any]:
    topo = topology(hosts)
    up, down, left = [], [], []
    for rep in range(reps):
        t0 = time.perf_counter()
        lab = NetnsLab(topo, f"bringup{hosts}-{rep}")
        t1 = time.perf_counter()
        lab_id = lab.names.lab_id
        lab.destroy()
        t2 = time.perf_counter()
        up.append(t1 - t0)
        down.append(t2 - t1)
        left += leftovers(lab_id)
    return {
        "hosts": hosts, "reps": reps,
        "bringup_s": up, "teardown_s": down,
        "bringup_median_s": statistics.median(up),
        "bringup_ms_per_host": 1000 * statistics.median(up) / hosts,
        "teardown_median_s": statistics.median(down),
        "leftovers": left,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="3,20,50")
    ap.add_argument("--out", type=Path, default=RESULTS / "netns_bringup.json")
    args = ap.parse_args(argv)
    rows = [measure(int(n), args.reps) for n in args.sizes.split(",")]
    result = {"benchmark": "netns_bringup", "machine": platform.platform(),
              "cpus": __import__("os").cpu_count(), "goal_ms_per_host": 50, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'hosts':>5} {'bring-up s':>10} {'ms/host':>8} {'teardown s':>10}  leftovers")
    for r in rows:
        print(f"{r['hosts']:>5} {r['bringup_median_s']:>10.3f} {r['bringup_ms_per_host']:>8.1f} "
              f"{r['teardown_median_s']:>10.3f}  {len(r['leftovers'])}")
    return 1 if any(r["leftovers"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
