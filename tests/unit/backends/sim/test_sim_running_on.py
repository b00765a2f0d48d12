"""`Hypervisors.running_on(instance)`: one instance's hosts without building the whole map
(the evidence reader asks once per volume; the map made that volumes x instances)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import simpy

from stackdrill.api import LabOptions, PowerState
from stackdrill.backends.sim import SimBackend
from stackdrill.drill import load_drill
from stackdrill.drill.player import Player
from stackdrill.topology import load_topology

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("name", [
    "nova-host-failure",  # guests stop with their host and start elsewhere
    "returning-host",     # the failed host powers on mid-recovery
    "instance-crash",     # a guest stops on a running host
])
def test_running_on_answers_as_the_whole_map_does_throughout_a_drill(name: str,
                                                                      tmp_path: Path) -> None:
    drill = load_drill(ROOT / "lab" / "drills" / f"{name}.yaml")
    lab: Any = SimBackend().create(drill.topology, lab_name=name, seed=drill.spec.seed,
                                   options=LabOptions(write_interval_s=5.0))
    moves: set[tuple[str, tuple[str, ...]]] = set()

    def checker() -> Generator[simpy.Event, Any, None]:
        while True:
            yield lab.kernel.env.timeout(drill.spec.duration_s / 60)
            whole = lab.hypervisors.running()
            for instance in [*whole, "no-such-instance"]:
                assert lab.hypervisors.running_on(instance) == whole.get(instance, [])
                moves.add((instance, tuple(whole.get(instance, []))))

    lab.kernel.env.process(checker())
    Player(lab, drill.topology, tmp_path).play(drill.spec.schedule, end=drill.spec.duration_s)
    placements = {i for i, _hosts in moves}
    assert len(moves) > len(placements), "no instance ever stopped or moved: nothing was tested"


def test_running_on_keeps_the_maps_host_order_and_skips_unpowered_hosts() -> None:
    """Several running copies are listed in host order (the state exactly_once reports);
    a guest still marked running on a host without power is not running."""
    topology = load_topology(ROOT / "lab" / "topologies" / "nova-drbd.yaml")
    lab: Any = SimBackend().create(topology, lab_name="t", seed=1, options=LabOptions())
    hv = lab.hypervisors
    for host in ("cmp3", "cmp2"):
        hv.start("web1", host, {})
    assert hv.running_on("web1") == hv.running()["web1"] == ["cmp1", "cmp2", "cmp3"]
    lab.hosts["cmp2"].power = PowerState.OFF  # before any listener hears of it
    assert hv.running_on("web1") == hv.running()["web1"] == ["cmp1", "cmp3"]
