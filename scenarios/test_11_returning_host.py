"""Scenario 11: the failed host powers on again, during and after the recovery."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, from_host


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.parametrize("name", [
    "returning-host",
    # the whole nova-drbd lab on guests (6 of them, 16 min with its comparison): nightly.
    # returning-host is not: where web1 ends depends on whether the guest boots before the
    # evacuation (27 s on guests, the topology's boot_s 45 s on the simulator)
    pytest.param("returning-host-late", marks=pytest.mark.vm_peer),
    pytest.param("vm-returning-host", marks=pytest.mark.vm)])
def test_the_returning_host_runs_none_of_its_evacuated_instances(run_drill, name):
    """cmp1 comes back (at 110 s while recovery runs, or at 400 s after it ended): its
    stale guests are destroyed before it rejoins, nothing runs twice, and no volume ever
    had two writers (fencing_order: no start elsewhere before the old copy was gone)."""
    report = run_drill(drill(name))
    assert_passed(report)
    assert report.state_after["power"]["cmp1"] == "on", "cmp1 never came back"
    evacuated = [i for i in from_host(report, "cmp1") if i.state == "recovered"]
    assert evacuated, "nothing was evacuated from cmp1"
    running = report.state_after["running"]  # instance -> hosts, as virsh list shows it
    for inst in evacuated:
        assert "cmp1" not in running[inst.name], f"{inst.name} runs on cmp1 again"
        assert len(running[inst.name]) == 1, f"{inst.name} runs on {running[inst.name]}"
    assert check(report, "fencing_order").ok
    assert_sim_agrees(report, run_drill)
