"""instance_crash on the simulator: the guest's process dies where it runs, its workload
writes no more, the compute driver lists it not running; its host, its heartbeats and the
other guests are untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.api import GuestStopped, PowerState
from stackdrill.backends.sim import SimBackend
from stackdrill.errors import LabStateError
from stackdrill.faults import InstanceCrash
from stackdrill.topology import load_topology

PAIR = Path(__file__).resolve().parents[4] / "lab" / "topologies" / "drbd-pair.yaml"


def test_the_killed_guest_stops_writing_and_nothing_else_changes() -> None:
    lab = SimBackend().create(load_topology(PAIR), lab_name="crash", seed=1)
    lab.clock.sleep(20)
    lab.inject(InstanceCrash(instance="inst-a"))
    killed_at = lab.clock.now()
    lab.clock.sleep(30)
    guests = lab.drivers.compute.guests("cmp1")
    lab.clock.wait([guests], timeout=5)
    assert {g.name: g.running for g in guests.result()} == {"inst-a": False, "inst-b": True}
    assert dict(lab.observe().running) == {"inst-a": [], "inst-b": ["cmp1"]}
    writes = lab.history()
    assert all(op.invoked <= killed_at for op in writes if op.instance == "inst-a")
    assert any(op.invoked > killed_at + 20 for op in writes if op.instance == "inst-b")
    assert lab.drivers.power.state("cmp1") is PowerState.ON
    beat = lab.drivers.compute.health("cmp1").last_heartbeat
    assert beat is not None and lab.clock.now() - beat < 15
    stops = [t.event for t in lab.events() if isinstance(t.event, GuestStopped)]
    assert [(s.host, s.instance, s.why) for s in stops] == [("cmp1", "inst-a", "killed")]


def test_killing_an_instance_that_runs_nowhere_is_an_error() -> None:
    lab = SimBackend().create(load_topology(PAIR), lab_name="crash2", seed=1)
    lab.inject(InstanceCrash(instance="inst-a"))
    with pytest.raises(LabStateError, match="inst-a runs on no host"):
        lab.inject(InstanceCrash(instance="inst-a"))
