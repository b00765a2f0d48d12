"""Benchmark: the seed's iperf table on the real kernel — underlay vs VXLAN overlay vs
OpenVPN tap (no crypto), on unshaped veth and on a tbf-shaped 10 Mbit/s underlay.

The seed (2011, cloud links of ~10 Mbit/s) reported the overlay at ~0.91 of the underlay
and OpenVPN tap at ~0.89. Goal here: overlay >= 0.95 of the underlay on 10 Mbit/s.
Needs root, iperf3, openvpn and matplotlib (pip install '.[bench]'). Traffic stays between
two lab namespaces.

Run: sudo python bench/netns_bandwidth.py [--reps 5] [--seconds 5]
Writes bench/results/netns_bandwidth.json and bench/results/netns_bandwidth.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stackdrill.backends.netns import nsops, throughput
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.faults.catalogue import RateLimit
from stackdrill.topology import Topology, parse_topology

RESULTS = Path(__file__).parent / "results"
SEED = {"overlay": 0.91, "openvpn": 0.89}
PATHS = ("underlay", "overlay", "openvpn")


def topology() -> Topology:
    return parse_topology({
        "name": "bandwidth",
        "hosts": [{"name": "a", "roles": ["compute"]}, {"name": "b", "roles": ["compute"]}],
        "networks": [{"name": "wan", "purposes": ["tunnel"], "cidr": "10.0.0.0/24",
                      "addresses": {"a": "10.0.0.1", "b": "10.0.0.2"}}],
        "overlays": [{"name": "ov", "vni": 100, "network": "wan", "cidr": "10.100.0.0/24"}],
    }, "bandwidth")


def start_openvpn(lab: NetnsLab) -> tuple[list[subprocess.Popen[bytes]], str]:
    """A point-to-point OpenVPN tap tunnel a<->b without crypto, on the lab's own /24."""
    net = lab.names.subnet(1)
    hosts = list(net.hosts())
    addr = {"a": str(hosts[0]), "b": str(hosts[1])}
    under = {"a": "10.0.0.1", "b": "10.0.0.2"}
    dev = lab.names._if("vp0")
    procs = []
    for me, peer in (("a", "b"), ("b", "a")):
        argv = ["openvpn", "--dev", dev, "--dev-type", "tap", "--proto", "udp",
                "--local", under[me], "--lport", "1194", "--remote", under[peer],
                "--rport", "1194", "--ifconfig", addr[me], str(net.netmask),
                "--cipher", "none", "--data-ciphers", "none", "--auth", "none",
                "--allow-compression", "no", "--verb", "0"]
        procs.append(nsops.spawn(lab.names.host_ns(me), argv))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ok = nsops.run(lab.names.host_ns("a"), ["ping", "-c", "1", "-W", "1", addr["b"]],
                       check=False).returncode == 0
        if ok:
            return procs, addr["b"]
    raise RuntimeError("the OpenVPN tunnel did not come up")


def iperf(lab: NetnsLab, target: str, seconds: float) -> float:
    """Mbit/s received by b from a over one TCP stream."""
    return throughput.iperf(lab.names.host_ns("a"), lab.names.host_ns("b"), target, seconds)


def run(reps: int, seconds: float) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {"unshaped": {}, "tbf10": {}}
    with NetnsLab(topology(), "bandwidth", heartbeats=False) as lab:
        procs, vpn_b = start_openvpn(lab)
        targets = {"underlay": "10.0.0.2",
                   "overlay": lab.overlay.overlays["ov"].host_ips["b"], "openvpn": vpn_b}
        try:
            for shaping in ("unshaped", "tbf10"):
                fault = RateLimit(host="a", network="wan", mbit=10)
                if shaping == "tbf10":
                    lab.inject(fault)
                for rep in range(reps):
                    for path in PATHS:  # interleaved, so drift hits every path alike
                        mbit = iperf(lab, targets[path], seconds)
                        samples[shaping].setdefault(path, []).append(mbit)
                        print(f"{shaping:9} {path:9} rep {rep + 1}: {mbit:9.2f} Mbit/s",
                              flush=True)
                if shaping == "tbf10":
                    lab.heal(fault)
        finally:
            for p in procs:
                p.kill()
                p.wait(timeout=5)
    table: dict[str, Any] = {}
    for shaping, by_path in samples.items():
        base = statistics.median(by_path["underlay"])
        table[shaping] = {
            path: {"mbit_s": vals, "median_mbit_s": statistics.median(vals),
                   "min_mbit_s": min(vals), "max_mbit_s": max(vals),
                   "stdev_mbit_s": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                   "ratio_to_underlay": statistics.median(vals) / base,
                   "ratio_min": min(vals) / base, "ratio_max": max(vals) / base}
            for path, vals in by_path.items()}
    return table


def chart(table: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.25
    for i, path in enumerate(PATHS):
        xs = [j + (i - 1) * width for j in range(2)]
        med = [table[s][path]["ratio_to_underlay"] for s in ("unshaped", "tbf10")]
        lo = [m - table[s][path]["ratio_min"] for m, s in zip(med, ("unshaped", "tbf10"),
                                                               strict=True)]
        hi = [table[s][path]["ratio_max"] - m for m, s in zip(med, ("unshaped", "tbf10"),
                                                              strict=True)]
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=path)
    for name, ratio in SEED.items():
        ax.axhline(ratio, linestyle="--", linewidth=0.8, color="grey")
        ax.text(1.45, ratio, f"seed {name} {ratio}", fontsize=7, va="bottom", ha="right")
    ax.set_xticks([0, 1], ["unshaped veth", "tbf 10 Mbit/s"])
    ax.set_ylabel("throughput / underlay (median, min-max)")
    ax.set_ylim(0, 1.1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("iperf3 TCP: overlay and OpenVPN tap vs underlay")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "netns_bandwidth.json")
    args = ap.parse_args(argv)
    table = run(args.reps, args.seconds)
    result = {"benchmark": "netns_bandwidth", "machine": platform.platform(),
              "cpus": os.cpu_count(), "reps": args.reps, "seconds": args.seconds,
              "seed_ratios": SEED, "goal": "overlay >= 0.95 of the underlay on tbf10",
              "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    chart(table, args.out.with_suffix(".png"))
    print(f"\n{'link':9} {'path':9} {'median Mbit/s':>14} {'ratio':>6} {'range':>13}")
    for shaping, rows in table.items():
        for path, r in rows.items():
            print(f"{shaping:9} {path:9} {r['median_mbit_s']:>14.2f} "
                  f"{r['ratio_to_underlay']:>6.3f} {r['ratio_min']:.3f}-{r['ratio_max']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
