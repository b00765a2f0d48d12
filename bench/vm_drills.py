"""Benchmark: the `vm` drills on real guests (libvirt, qemu TCG here): guest boot, each
provisioning stage, each drill's wall time, and whether sim and libvirt agree.

Goal (issue 7): the VM drills, image build included, in under 20 minutes of CI.
Needs root, libvirt, qemu and the guest image (python lab/images/build.py).
Run: sudo python bench/vm_drills.py [--drills vm-host-failure,split-brain]
Writes bench/results/vm_drills.json (with --drills, the other drills keep their rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.report.differential import compare

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VM_DRILLS = ("vm-host-failure", "vm-returning-host", "vm-disk-failure", "split-brain",
             "clvm-concurrent", "vm-overlay", "vm-tunnel-endpoint-down")


def measure(name: str) -> dict[str, Any]:
    drill = load_drill(ROOT / "lab" / "drills" / f"{name}.yaml")
    started = time.monotonic()
    run = execute(drill, backend="libvirt", lab_name=f"bench-{name}")
    report = judge(run)
    wall = time.monotonic() - started
    sim = judge(execute(drill, backend="sim"))
    stages = run.final.observation.bringup_s
    return {
        "drill": name, "verdict": report.verdict, "wall_s": round(wall, 1),
        "drill_s": drill.spec.duration_s,
        "boot_s": {k.removeprefix("boot "): round(s, 1) for k, s in stages.items()
                   if k.startswith("boot ")},
        "provision_s": {k: round(v, 1) for k, v in stages.items() if not k.startswith("boot ")},
        "rto_s": {i.name: i.rto_s for i in report.instances if i.rto_s is not None},
        "agrees_with_sim": compare(sim, report).agrees,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", default=",".join(VM_DRILLS))
    args = parser.parse_args()
    rows = [measure(name) for name in args.drills.split(",")]
    for row in rows:
        print(json.dumps(row))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "vm_drills.json"
    # --drills re-measures some: the other drills keep their last measured rows
    kept = json.loads(out.read_text())["drills"] if out.exists() else []
    by_name = {r["drill"]: r for r in kept} | {r["drill"]: r for r in rows}
    order = [*VM_DRILLS, *sorted(set(by_name) - set(VM_DRILLS))]
    out.write_text(json.dumps({"machine": platform.node(), "cpus": os.cpu_count(),
                               "drills": [by_name[n] for n in order if n in by_name]},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["verdict"] == "pass" and r["agrees_with_sim"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
