"""Scenario 1: a compute host dies for good; its storage is a DRBD pair with protocol C."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drill, from_host


@pytest.mark.backends("sim", "libvirt")
def test_every_instance_of_the_dead_host_runs_on_a_survivor_and_no_write_is_lost(run_drill):
    """Protocol C acknowledges a write only once both disks have it, so fencing cmp1 and
    evacuating its guests must lose no acknowledged write and start each exactly once."""
    report = run_drill(drill("nova-host-failure"))
    assert_passed(report)
    moved = from_host(report, "cmp1")
    assert moved, "the topology runs nothing on cmp1: the drill would prove nothing"
    undisturbed = min(i.acked_writes for i in report.instances if i.host_before != "cmp1")
    for inst in moved:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after in ("cmp2", "cmp3"), f"{inst.name} runs on {inst.host_after}"
        # and writing again on its volume: missing only the writes of its downtime (2 s each)
        assert inst.rto_s is not None
        assert inst.acked_writes >= undisturbed - (inst.rto_s + 10) / 2, inst
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["cmp1"] == "off"
