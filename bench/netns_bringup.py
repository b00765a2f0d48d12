"""Benchmark: netns lab bring-up and teardown for 3, 20 and 50 hosts with the overlay,
each against a floor the bench builds itself with iproute2 in batch mode.

The floor makes the same kernel objects as the lab (namespaces, the switch bridge, a veth
pair per host with its address, a VXLAN device and overlay bridge per host, every host's
FDB entries for its peers) with one `ip -batch` for the namespaces and veths and one
`ip -batch`/`bridge -batch` per namespace, and removes them with one `ip -batch` of
`netns del`. The lab's ratio to it is what stackdrill adds: pyroute2's encoding, the
heartbeats, the slot registry, the check that no process survives. Paired: floor and lab
run back to back in each rep, which of them first alternating from rep to rep, so load on
this shared machine hits both alike, and each build starts after a pause of SETTLE_S: the
kernel frees deleted namespaces in the background, and the next build to create one waits
for that (it doubled the 3-host lab's time after a floor run). Each stands UP_S before its teardown:
right after a bring-up the kernel still works through the just-raised interfaces
(deferred link events, IPv6 duplicate address detection), and removing namespaces then
waits behind that work; the lab raises all of them within milliseconds, the floor's
process-per-namespace build spreads them out, so a teardown timed at once measured when
the bring-up ended rather than the teardown (a lab stands for its drill's duration
anyway). Besides wall time it records CPU time (the lab: this process; the floor: its
`ip`/`bridge` processes and the forks that start them) and the load average, since wall
time on a busy machine is mostly waiting.

Goals: issue 6, <= 50 ms per host and nothing left behind; issue 17, bring-up <= 1.2x and
teardown <= 2x the floor. Needs root.
Run: sudo python bench/netns_bringup.py [--reps 5] [--sizes 3,20,50]
Writes bench/results/netns_bringup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
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
SETTLE_S = 1.0
UP_S = 1.0  # how long each lab (and floor) stands before its teardown is timed


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


def _ip_batch(argv: list[str], lines: list[str]) -> None:
    subprocess.run([*argv, "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                   check=True, capture_output=True)


def floor_build(hosts: int, tag: str) -> list[str]:
    """The lab's kernel objects made by iproute2 in batch mode; returns the namespaces."""
    sw, hns = f"fl{tag}-sw", [f"fl{tag}-h{i}" for i in range(hosts)]
    addrs = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(hosts)]
    root = [f"netns add {ns}" for ns in [sw, *hns]]
    root += [f"link add u{i} netns {ns} type veth peer name n{i} netns {sw}"
             for i, ns in enumerate(hns)]
    _ip_batch(["ip"], root)
    switch = ["link set lo up", "link add b0 type bridge stp_state 0 forward_delay 0",
              "link set b0 up"]
    switch += [f"link set n{i} master b0 up" for i in range(hosts)]
    _ip_batch(["ip", "-n", sw], switch)
    for i, ns in enumerate(hns):
        _ip_batch(["ip", "-n", ns], [
            "link set lo up", f"addr add {addrs[i]}/16 dev u{i}", f"link set u{i} up",
            f"link add vx0 type vxlan id 100 local {addrs[i]} dstport 4789 dev u{i} "
            "nolearning",
            "link add ov0 type bridge stp_state 0", "link set vx0 master ov0 up",
            f"addr add 10.100.255.{254 - i % 250}/16 dev ov0", "link set ov0 up"])
        _ip_batch(["bridge", "-n", ns], [
            f"fdb append 00:00:00:00:00:00 dev vx0 dst {a}" for a in addrs if a != addrs[i]])
    return [*hns, sw]


def floor_teardown(namespaces: list[str]) -> None:
    _ip_batch(["ip"], [f"netns del {ns}" for ns in namespaces])


class Timer:
    """Wall and CPU seconds of a block: this process's CPU and that of the children it
    waited for (the floor's `ip` and `bridge` processes)."""

    def __enter__(self) -> Timer:
        self._wall = time.perf_counter()
        self._cpu = _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu() - self._cpu


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_floor(hosts: int, tag: str) -> tuple[Timer, Timer]:
    time.sleep(SETTLE_S)
    with Timer() as up:
        spaces = floor_build(hosts, tag)
    time.sleep(UP_S)
    with Timer() as down:
        floor_teardown(spaces)
    return up, down


def run_lab(topo: Topology, name: str, left: list[str]) -> tuple[Timer, Timer]:
    time.sleep(SETTLE_S)
    with Timer() as up:
        lab = NetnsLab(topo, name)
    lab_id = lab.names.lab_id
    time.sleep(UP_S)
    with Timer() as down:
        lab.destroy()
    left += leftovers(lab_id)
    return up, down


def measure(hosts: int, reps: int) -> dict[str, Any]:
    topo = topology(hosts)
    lab: list[tuple[Timer, Timer]] = []
    floor: list[tuple[Timer, Timer]] = []
    left: list[str] = []
    load = [os.getloadavg()[0]]
    for rep in range(reps):
        if rep % 2:
            lab.append(run_lab(topo, f"bringup{hosts}-{rep}", left))
            floor.append(run_floor(hosts, f"{hosts}x{rep}"))
        else:
            floor.append(run_floor(hosts, f"{hosts}x{rep}"))
            lab.append(run_lab(topo, f"bringup{hosts}-{rep}", left))
    load.append(os.getloadavg()[0])
    up, down = [u.wall for u, _ in lab], [d.wall for _, d in lab]
    floor_up, floor_down = [u.wall for u, _ in floor], [d.wall for _, d in floor]
    return {
        "hosts": hosts, "reps": reps, "load_avg_1min": load,
        "bringup_s": up, "teardown_s": down,
        "bringup_median_s": statistics.median(up),
        "bringup_ms_per_host": 1000 * statistics.median(up) / hosts,
        "teardown_median_s": statistics.median(down),
        "floor_bringup_s": floor_up, "floor_teardown_s": floor_down,
        "bringup_ratio": _paired_ratio(up, floor_up),
        "teardown_ratio": _paired_ratio(down, floor_down),
        "bringup_cpu_s": [u.cpu for u, _ in lab], "teardown_cpu_s": [d.cpu for _, d in lab],
        "floor_bringup_cpu_s": [u.cpu for u, _ in floor],
        "floor_teardown_cpu_s": [d.cpu for _, d in floor],
        "bringup_cpu_ratio": _paired_ratio([u.cpu for u, _ in lab], [u.cpu for u, _ in floor]),
        "teardown_cpu_ratio": _paired_ratio([d.cpu for _, d in lab],
                                            [d.cpu for _, d in floor]),
        "leftovers": left,
    }


def _paired_ratio(lab: list[float], floor: list[float]) -> float:
    """The median of the per-rep ratios (each rep's lab and floor ran back to back)."""
    return statistics.median(a / b for a, b in zip(lab, floor, strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="3,20,50")
    ap.add_argument("--out", type=Path, default=RESULTS / "netns_bringup.json")
    args = ap.parse_args(argv)
    rows = [measure(int(n), args.reps) for n in args.sizes.split(",")]
    result = {"benchmark": "netns_bringup", "machine": platform.platform(),
              "cpus": os.cpu_count(), "goal_ms_per_host": 50, "settle_s": SETTLE_S,
              "up_s": UP_S, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'hosts':>5} {'bring-up s':>10} {'ms/host':>8} {'x floor':>8} {'cpu x':>6} "
          f"{'teardown s':>10} {'x floor':>8} {'cpu x':>6} {'load':>9}  leftovers")
    for r in rows:
        load = "-".join(f"{x:.1f}" for x in r["load_avg_1min"])
        print(f"{r['hosts']:>5} {r['bringup_median_s']:>10.3f} {r['bringup_ms_per_host']:>8.1f} "
              f"{r['bringup_ratio']:>8.2f} {r['bringup_cpu_ratio']:>6.2f} "
              f"{r['teardown_median_s']:>10.4f} {r['teardown_ratio']:>8.2f} "
              f"{r['teardown_cpu_ratio']:>6.2f} {load:>9}  {len(r['leftovers'])}")
    return 1 if any(r["leftovers"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
