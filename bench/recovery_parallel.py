"""Benchmark: recovery time of a multi-host loss on the large topology as a function of
`--parallel`, beside the Masakari-like baseline (60 s service_down_time, 180 s wait after
disabling the compute service, 3 evacuation threads). Prints one JSON document.

    PYTHONPATH=src python3 bench/recovery_parallel.py [--hosts 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from stackdrill.backends.sim import SimBackend
from stackdrill.faults.catalogue import HostCrash
from stackdrill.recovery import InstanceState, RecoveryConfig, RecoveryEngine
from stackdrill.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
CRASH_AT = 60.0


def one(topology_path: Path, victims: list[str], cfg: RecoveryConfig, seed: int) -> dict[str, Any]:
    topo = load_topology(topology_path)
    lab = SimBackend().create(topo, lab_name="bench", seed=seed)
    for host in victims:
        fault = HostCrash(host=host, power_back=False)
        lab.call_at(CRASH_AT, lambda f=fault: lab.inject(f), f"crash {host}")
    with tempfile.TemporaryDirectory() as tmp:
        engine = RecoveryEngine(topo, lab.drivers, lab.clock, f"sqlite:///{tmp}/inv.sqlite", cfg)
        engine.seed_inventory()
        wall = time.perf_counter()
        result = engine.run(until=CRASH_AT + 3600)
        wall = time.perf_counter() - wall
    moved = [o for o in result.instances if o.host_before in victims]
    rtos = [o.verified_at - CRASH_AT for o in moved if o.verified_at is not None]
    return {
        "profile": cfg.profile.value, "parallel": cfg.parallel, "instances": len(moved),
        "recovered": sum(o.state is InstanceState.RECOVERED for o in moved),
        "total_rto_s": round(max(rtos), 3) if rtos else None,
        "mean_rto_s": round(statistics.fmean(rtos), 3) if rtos else None,
        "engine_wall_s": round(wall, 3),
        "engine_wall_ms_per_instance": round(1000 * wall / max(1, len(moved)), 3),
        "journal_steps": len(result.journal),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", default=str(ROOT / "lab/topologies/large.yaml"))
    parser.add_argument("--hosts", type=int, default=5, help="compute hosts to crash at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    topo = load_topology(args.topology)
    by_host: dict[str, int] = {}
    for inst in topo.instances:
        by_host[inst.host] = by_host.get(inst.host, 0) + 1
    victims = sorted(by_host, key=lambda h: (-by_host[h], h))[: args.hosts]
    runs = [one(Path(args.topology), victims, RecoveryConfig(parallel=n), args.seed)
            for n in (1, 4, 16)]
    runs.append(one(Path(args.topology), victims, RecoveryConfig.masakari(), args.seed))
    best = min((r["total_rto_s"] for r in runs if r["profile"] == "stackdrill"
                and r["total_rto_s"] is not None), default=None)
    base = runs[-1]["total_rto_s"]
    print(json.dumps({"topology": topo.name, "crashed": victims, "crash_at_s": CRASH_AT,
                      "runs": runs,
                      "speedup_vs_masakari": round(base / best, 2) if base and best else None},
                     indent=2))


if __name__ == "__main__":
    main()
