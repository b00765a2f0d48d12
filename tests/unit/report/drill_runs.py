"""Real drills run on the simulator for the report tests: a passing one and a failing one."""

from __future__ import annotations

from pathlib import Path

import yaml

from stackdrill.drill.judge import judge
from stackdrill.drill.load import load_drill
from stackdrill.drill.model import Drill
from stackdrill.drill.runner import execute
from stackdrill.report import Report

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def run(drill: Drill) -> Report:
    return judge(execute(drill, backend="sim"))


def passing() -> tuple[Report, Drill]:
    """nova-host-failure: cmp1 dies, three guests come back elsewhere, nothing lost."""
    drill = load_drill(DRILLS / "nova-host-failure.yaml")
    return run(drill), drill


def failing(tmp: Path) -> tuple[Report, Drill]:
    """protocol-a-failover held to protocol C's promise (no acked write lost): DRBD
    protocol A loses the writes still on the wire when the primary dies, so the
    acked_writes check fails on a real run."""
    raw = yaml.safe_load((DRILLS / "protocol-a-failover.yaml").read_text())
    raw["topology"] = str((DRILLS / raw["topology"]).resolve())
    raw["name"] = "protocol-a-failover-strict"
    raw["expect"] = [{"check": "acked_writes", "max_lost": 0} if e["check"] == "acked_writes"
                     else e for e in raw["expect"]]
    path = tmp / "protocol-a-strict.yaml"
    path.write_text(yaml.safe_dump(raw))
    drill = load_drill(path)
    return run(drill), drill
